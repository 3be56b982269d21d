"""What every GPU cross-check record must show, for tests/test_gpu_ref.py (the reference
architecture, tests/data/gpu_crosscheck.json) and tests/test_gpu_fused.py (the fused ones,
tests/data/gpu_crosscheck_fused.json): both records hold entries of one shape, so their
checks are written once here. Also the nvcc build check both CUDA sources get.
"""

from __future__ import annotations

import glob
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from if4mac.gpu_ref import generator

__all__ = ["ROOT", "assert_clean_sweeps", "assert_source_unchanged", "assert_sources_listed",
           "find_nvcc", "compile_cuda"]

ROOT = Path(__file__).resolve().parent.parent


def assert_clean_sweeps(entry: dict, exhaustive_order: str, stream_cases: list[dict],
                        case_keys: tuple[str, ...]) -> None:
    """A full run with no mismatch: every exhaustive case (in ``exhaustive_order``), at least
    10**8 random segments, and the stream cases ``stream_cases`` (compared on ``case_keys``),
    each with its GPU digest equal to golden's."""
    ex = entry["exhaustive"]
    assert ex["count"] == 1 << 24 and ex["mismatches"] == 0
    assert ex["order"] == exhaustive_order
    assert ex["sha256"] == ex["golden_sha256"]
    rnd = entry["random"]
    assert rnd["generator"] == generator.GENERATOR
    assert rnd["segments"] >= 10**8 and rnd["mismatches"] == 0
    assert rnd["stream_kernel_first_chunk_mismatches"] == 0
    assert rnd["sha256"] == rnd["golden_sha256"]
    assert rnd["lane_products"] == 16 * rnd["beats"] and rnd["beats"] > 4 * rnd["segments"]
    st = entry["stream"]
    assert st["segments"] > 0 and st["mismatches"] == 0
    # The cases are the defined ones, each clean, each with its GPU and golden digests equal.
    strip = [{k: c[k] for k in case_keys if k in c} for c in st["cases"]]
    assert strip == stream_cases
    for case in st["cases"]:
        assert case["mismatches"] == 0 and case["sha256"] == case["golden_sha256"], case
    assert st["segments"] == sum(c["segments"] for c in st["cases"])


def assert_source_unchanged(path: str, runs: dict[str, dict], record: str, record_file: str):
    """``path`` is byte for byte the file each run in ``runs`` (label -> the entry's "run")
    checked; ``record`` names the record in the message, ``record_file`` the file to commit."""
    now = hashlib.sha256((ROOT / path).read_bytes()).hexdigest()
    for label, run in runs.items():
        recorded = run["sources_sha256"].get(path)
        assert recorded == now, (
            f"{path} differs from the file the {record} checked ({label}: sha256 now "
            f"{now[:16]}, recorded {str(recorded)[:16]}): rerun `if4mac gpu-check` on a GPU "
            f"and commit {record_file}")


def assert_sources_listed(runs: dict[str, dict], sources: tuple[str, ...], what: str) -> None:
    """Each run names exactly ``sources`` (``what``: how the message calls the list)."""
    for label, run in runs.items():
        assert sorted(run["sources_sha256"]) == sorted(sources), (
            f"{label}: {what} is out of date")


def find_nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/local/cuda*/bin/nvcc"))
    return candidates[-1] if candidates else None


def compile_cuda(source: Path, out_dir: Path) -> Path:
    """Build ``source`` with nvcc as the GPU run compiles it (no FMA contraction, C++17, every
    warning an error) and return the object file; skips where there is no nvcc."""
    nvcc = find_nvcc()
    if nvcc is None:
        pytest.skip(f"nvcc not found (PATH, /usr/local/cuda*/bin): cannot build "
                    f"{source.relative_to(ROOT)} here")
    obj = out_dir / source.with_suffix(".o").name
    proc = subprocess.run([nvcc, "--fmad=false", "-std=c++17", "-arch=sm_90", "-Werror",
                           "all-warnings", "-c", str(source), "-o", str(obj)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return obj
