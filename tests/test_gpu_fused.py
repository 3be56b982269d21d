"""gpu_ref/fused.cu (the fused architectures' CUDA reference) still compiles where nvcc exists.

No GPU in CI: the kernels are only built here, with the flags gpu_ref uses (--fmad=false,
every warning an error); the GPU cross-check against golden.run(arch=...) is a device run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.test_gpu_ref import _find_nvcc

SOURCE = Path(__file__).resolve().parent.parent / "gpu_ref" / "fused.cu"


def test_fused_cuda_source_compiles_with_nvcc(tmp_path):
    nvcc = _find_nvcc()
    if nvcc is None:
        pytest.skip("nvcc not found (PATH, /usr/local/cuda*/bin): cannot build gpu_ref/fused.cu")
    proc = subprocess.run([nvcc, "--fmad=false", "-std=c++17", "-arch=sm_90", "-Werror",
                           "all-warnings", "-c", str(SOURCE), "-o", str(tmp_path / "fused.o")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # The kernels a cross-check will launch are there, unmangled.
    symbols = subprocess.run(["nm", str(tmp_path / "fused.o")], capture_output=True, text=True)
    if symbols.returncode == 0:
        for kernel in ("fused_stream_segments", "fused_random_segments"):
            assert kernel in symbols.stdout
