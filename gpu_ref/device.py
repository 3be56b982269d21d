"""The CUDA reference on a GPU: gpu_ref/mac.cu compiled by NVRTC through CuPy.

Everything here needs CuPy and an NVIDIA GPU; :func:`gpu_available` says whether both are there
without raising, and every other function raises :class:`GpuUnavailable` (one line) if not.
CuPy is imported lazily, so this module imports on machines without it.

The functions mirror the golden model's: :func:`exhaustive_lanes` is
``golden.scaled_products`` over every single-beat input, :func:`run` is ``golden.run``, and
:func:`random_segments` computes the results of the generator in :mod:`.generator`.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import numpy as np

from if4mac.golden import Results, Stream, check_unit
from if4mac.golden.mac import DEFAULT_BLOCK_SIZE

__all__ = ["SOURCE", "NVRTC_OPTIONS", "EXHAUSTIVE_CASES", "GpuUnavailable", "gpu_available",
           "no_gpu_message", "NO_GPU_MESSAGE",
           "require_gpu", "module", "device_info", "exhaustive_lanes", "random_segments",
           "stream_segments", "compact", "run", "UNIT_CODES"]

#: The CUDA source, a real file beside this module.
SOURCE = Path(__file__).with_name("mac.cu")
#: No FMA contraction anywhere; C++17 for mac.cu's hex float literals.
NVRTC_OPTIONS = ("--fmad=false", "--std=c++17")
#: Single-beat cases of one unit: 16 a codes x 16 w codes x 256 a_sf x 256 w_sf.
EXHAUSTIVE_CASES = 1 << 24
#: The ``unit`` argument of every kernel (UNIT_NVFP4 / UNIT_IF4 in mac.cu).
UNIT_CODES = {"nvfp4": 0, "if4": 1}
#: Threads per block: any multiple of the warp size works; 256 keeps many blocks per SM.
THREADS = 256


def no_gpu_message(job: str = "gpu-check") -> str:
    return f"no CUDA GPU found: {job} needs CuPy and an NVIDIA GPU"


NO_GPU_MESSAGE = no_gpu_message()


class GpuUnavailable(RuntimeError):
    """CuPy or a CUDA GPU is missing; the message is one line."""


def _cupy():
    try:
        import cupy
    except ImportError:
        raise GpuUnavailable(NO_GPU_MESSAGE) from None
    return cupy


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    try:
        cupy = _cupy()
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:      # CuPy raises its own error types when no driver or device is present
        return False


def require_gpu():
    """CuPy, once a CUDA device is known to be there; else :class:`GpuUnavailable`."""
    if not gpu_available():
        raise GpuUnavailable(NO_GPU_MESSAGE)
    return _cupy()


@functools.cache
def module():
    """The compiled :class:`cupy.RawModule` of mac.cu (compiled once per process)."""
    cupy = require_gpu()
    return cupy.RawModule(code=SOURCE.read_text(), options=NVRTC_OPTIONS)


def device_info() -> dict:
    """Provenance of the GPU and software stack, for the cross-check record."""
    cupy = require_gpu()
    runtime = cupy.cuda.runtime
    props = runtime.getDeviceProperties(cupy.cuda.Device().id)

    def version(v: int) -> str:
        return f"{v // 1000}.{v % 1000 // 10}"

    driver = _driver_version()
    name = props["name"]
    return {
        "name": name.decode() if isinstance(name, bytes) else str(name),
        "compute_capability": f"{props['major']}.{props['minor']}",
        "multiprocessors": int(props["multiProcessorCount"]),
        "driver_version": driver,
        "cuda_driver_api": version(runtime.driverGetVersion()),
        "cuda_runtime": version(runtime.runtimeGetVersion()),
        "nvrtc": ".".join(map(str, cupy.cuda.nvrtc.getVersion())),
        "cupy": cupy.__version__,
    }


def _driver_version() -> str | None:
    """The kernel driver's version string (CuPy reports only the CUDA API level it supports)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        return out.splitlines()[0].strip() or None
    except (OSError, subprocess.SubprocessError, IndexError):
        pass
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return None
    match = re.search(r"Kernel Module\s+(?:for \S+\s+)?([0-9][0-9.]+)", text)
    return match.group(1) if match else None


def _launch(kernel: str, n: int, args) -> None:
    if n == 0:
        return
    blocks = (n + THREADS - 1) // THREADS
    module().get_function(kernel)((blocks,), (THREADS,), args)


def exhaustive_lanes(unit: str, *, out=None):
    """All 2**24 single-beat lane results of ``unit`` as a CuPy uint32 array, canonical order.

    Index ``((a_sf * 256 + w_sf) * 16 + a) * 16 + w`` holds the bits of ``rne32(p * sf)``.
    """
    unit = check_unit(unit)
    cupy = require_gpu()
    if out is None:
        out = cupy.empty(EXHAUSTIVE_CASES, dtype=cupy.uint32)
    _launch("exhaustive_lanes", EXHAUSTIVE_CASES, (np.int32(UNIT_CODES[unit]), out))
    return out


def random_segments(unit: str, seed: int, start: int, count: int, *, out=None):
    """Results (CuPy uint32) of generator segments ``start .. start + count - 1``."""
    from .generator import _check_range, _check_seed

    unit = check_unit(unit)
    _check_range(start, count)
    cupy = require_gpu()
    if out is None:
        out = cupy.empty(count, dtype=cupy.uint32)
    _launch("random_segments", count, (np.int32(UNIT_CODES[unit]), np.uint64(_check_seed(seed)),
                                       np.int64(start), np.int64(count), out))
    return out


def stream_segments(unit: str, a, w, a_sf, w_sf, start, implicit=None):
    """Segment results (CuPy uint32) from compacted beats, one row per beat.

    ``a``/``w``: (beats, 16) uint8 codes; ``a_sf``/``w_sf``: (beats,) uint8; ``start``:
    (segments + 1,) int64 row offsets; ``implicit``: (segments,) bool, segments whose first beat
    adds onto +0 lane registers instead of loading them. Inputs may be numpy or CuPy arrays.
    """
    unit = check_unit(unit)
    cupy = require_gpu()
    a = cupy.ascontiguousarray(cupy.asarray(a, dtype=cupy.uint8))
    w = cupy.ascontiguousarray(cupy.asarray(w, dtype=cupy.uint8))
    if a.ndim != 2 or a.shape[1] != DEFAULT_BLOCK_SIZE or w.shape != a.shape:
        raise ValueError(f"a and w must both have shape (beats, {DEFAULT_BLOCK_SIZE}); got "
                         f"{a.shape} and {w.shape}")
    beats = a.shape[0]
    a_sf = cupy.ascontiguousarray(cupy.asarray(a_sf, dtype=cupy.uint8))
    w_sf = cupy.ascontiguousarray(cupy.asarray(w_sf, dtype=cupy.uint8))
    if a_sf.shape != (beats,) or w_sf.shape != (beats,):
        raise ValueError(f"a_sf and w_sf must have shape ({beats},)")
    start = cupy.ascontiguousarray(cupy.asarray(start, dtype=cupy.int64))
    segments = start.shape[0] - 1
    if start.ndim != 1 or segments < 0:
        raise ValueError("start must be a 1-D array of segments + 1 row offsets")
    if implicit is None:
        implicit = cupy.zeros(segments, dtype=cupy.uint8)
    implicit = cupy.ascontiguousarray(cupy.asarray(implicit).astype(cupy.uint8))
    if implicit.shape != (segments,):
        raise ValueError(f"implicit must have shape ({segments},)")
    out = cupy.empty(segments, dtype=cupy.uint32)
    if beats == 0:
        a = cupy.zeros((1, DEFAULT_BLOCK_SIZE), dtype=cupy.uint8)   # a valid pointer for uint4
        w = a
    _launch("stream_segments", segments,
            (np.int32(UNIT_CODES[unit]), a, w, a_sf, w_sf, start, implicit, np.int64(segments),
             out))
    return out


def compact(stream: Stream):
    """The stream reduced to the beats of segments that emit a result, with their bounds.

    Returns ``(rows, start, implicit, start_beat, close_beat)``: ``rows`` indexes the stream's
    beats to keep, ``start`` the segment offsets into ``rows`` (length segments + 1),
    ``implicit`` segments opened without ``first=1``, and the stream positions of each
    segment's first and closing beat. Follows golden's rules for bubbles, resets and the
    segment still open at the end (which emits nothing).
    """
    en = np.asarray(stream.en, dtype=bool)
    enabled = np.flatnonzero(en)
    n = len(enabled)
    first = np.asarray(stream.first, dtype=bool)[enabled]
    reset_here = np.zeros(n, dtype=bool)
    if stream.reset is not None:
        # A reset pulse lands on the next enabled beat at or after it.
        landing = np.searchsorted(enabled, np.flatnonzero(np.asarray(stream.reset, dtype=bool)))
        reset_here[landing[landing < n]] = True
    opens = first | reset_here
    if n:
        opens[0] = True                # power-up: the first enabled beat opens a segment
    starts = np.flatnonzero(opens)
    closers = starts[1:]
    emits = first[closers] & ~reset_here[closers]
    seg = np.flatnonzero(emits)
    seg_begin, seg_end = starts[seg], starts[seg + 1]
    lengths = seg_end - seg_begin
    rows = enabled[np.repeat(seg_begin, lengths) + (np.arange(lengths.sum()) -
                                                     np.repeat(np.cumsum(lengths) - lengths,
                                                               lengths))]
    start = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    implicit = ~first[seg_begin]
    return rows, start, implicit, enabled[seg_begin], enabled[seg_end]


def run(stream: Stream) -> Results:
    """``golden.run(stream)`` computed on the GPU: every completed segment's result, in order.

    Block size must be 16 (the kernels keep 16 lane registers). Codes are not validated: like
    the hardware, an INT4 block's 0x8 is computed as -8.
    """
    if stream.block_size != DEFAULT_BLOCK_SIZE:
        raise ValueError(f"the CUDA reference supports block size {DEFAULT_BLOCK_SIZE}, "
                         f"got {stream.block_size}")
    rows, start, implicit, start_beat, close_beat = compact(stream)
    a = np.asarray(stream.a)
    w = np.asarray(stream.w)
    if rows.size and (max(a.max(initial=0), w.max(initial=0)) >= 16):
        raise ValueError("element codes must be in 0..15")
    bits = stream_segments(stream.unit, a[rows], w[rows], np.asarray(stream.a_sf)[rows],
                           np.asarray(stream.w_sf)[rows], start, implicit)
    return Results(bits.get(), start_beat.astype(np.int64), close_beat.astype(np.int64))
