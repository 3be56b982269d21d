"""The CUDA reference on a GPU: gpu_ref/mac.cu compiled by NVRTC through CuPy.

Everything here but :func:`beat_flags` (a host-side packing) needs CuPy and an NVIDIA GPU;
:func:`gpu_available` says whether both are there without raising, and every other function
raises :class:`GpuUnavailable` (one line) if not. CuPy is imported lazily, so this module
imports on machines without it.

The functions mirror the golden model's: :func:`exhaustive_lanes` is
``golden.scaled_products`` over every single-beat input, :func:`run` is ``golden.run`` (the
kernel reads the raw rows and finds the segments itself), and :func:`random_segments`
computes the results of the generator in :mod:`.generator`.
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
           "beat_flags", "stream_beats", "run", "kernel_ms", "UNIT_CODES", "BEAT_EN",
           "BEAT_FIRST", "BEAT_RESET"]

#: The CUDA source, a real file beside this module.
SOURCE = Path(__file__).with_name("mac.cu")
#: No FMA contraction anywhere; C++17 for mac.cu's hex float literals.
NVRTC_OPTIONS = ("--fmad=false", "--std=c++17")
#: Single-beat cases of one unit: 16 a codes x 16 w codes x 256 a_sf x 256 w_sf.
EXHAUSTIVE_CASES = 1 << 24
#: The ``unit`` argument of every kernel (UNIT_NVFP4 / UNIT_IF4 in mac.cu).
UNIT_CODES = {"nvfp4": 0, "if4": 1}
#: Bits of the per-row flags byte of :func:`stream_beats` (BEAT_* in mac.cu).
BEAT_EN, BEAT_FIRST, BEAT_RESET = 1, 2, 4
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


def beat_flags(stream: Stream) -> np.ndarray:
    """The stream's en/first/reset inputs packed into one byte per row (``BEAT_*`` bits).

    Only a packing: which beats open, close or belong to a segment is decided by the kernel.
    """
    flags = np.where(np.asarray(stream.en, dtype=bool), BEAT_EN, 0).astype(np.uint8)
    flags |= np.where(np.asarray(stream.first, dtype=bool), BEAT_FIRST, 0).astype(np.uint8)
    if stream.reset is not None:
        flags |= np.where(np.asarray(stream.reset, dtype=bool), BEAT_RESET, 0).astype(np.uint8)
    return flags


def stream_beats(unit: str, a, w, a_sf, w_sf, flags):
    """Run the raw beat-stream kernel; returns CuPy ``(bits, start, closers)``.

    ``a``/``w``: (rows, 16) uint8 codes; ``a_sf``/``w_sf``: (rows,) uint8; ``flags``: (rows,)
    uint8 of :func:`beat_flags` bits. ``closers`` lists the rows with en=1 and first=1, the
    candidate closing beats; where row ``closers[t]`` closes a segment with a result,
    ``start[t]`` is the row of its opening beat and ``bits[t]`` the result, elsewhere
    ``start[t]`` is -1 (the kernel decides). Inputs may be numpy or CuPy arrays.
    """
    unit = check_unit(unit)
    cupy = require_gpu()
    a = cupy.ascontiguousarray(cupy.asarray(a, dtype=cupy.uint8))
    w = cupy.ascontiguousarray(cupy.asarray(w, dtype=cupy.uint8))
    if a.ndim != 2 or a.shape[1] != DEFAULT_BLOCK_SIZE or w.shape != a.shape:
        raise ValueError(f"a and w must both have shape (rows, {DEFAULT_BLOCK_SIZE}); got "
                         f"{a.shape} and {w.shape}")
    rows = a.shape[0]
    arrays = {}
    for name, value in (("a_sf", a_sf), ("w_sf", w_sf), ("flags", flags)):
        arrays[name] = cupy.ascontiguousarray(cupy.asarray(value, dtype=cupy.uint8))
        if arrays[name].shape != (rows,):
            raise ValueError(f"{name} must have shape ({rows},), got {arrays[name].shape}")
    en_first = BEAT_EN | BEAT_FIRST
    closers = cupy.flatnonzero((arrays["flags"] & en_first) == en_first).astype(cupy.int64)
    count = closers.shape[0]
    bits = cupy.zeros(count, dtype=cupy.uint32)
    start = cupy.full(count, -1, dtype=cupy.int64)
    _launch("stream_beats", count,
            (np.int32(UNIT_CODES[unit]), a, w, arrays["a_sf"], arrays["w_sf"], arrays["flags"],
             closers, np.int64(count), bits, start))
    return bits, start, closers


def run(stream: Stream) -> Results:
    """``golden.run(stream)`` computed on the GPU: every completed segment's result, in order.

    The kernel reads the stream's rows as they are, bubbles and reset pulses included, and
    finds the segments itself. Block size must be 16 (the kernels keep 16 lane registers).
    Codes are not validated beyond 0..15: like the hardware, an INT4 block's 0x8 is -8.
    """
    if stream.block_size != DEFAULT_BLOCK_SIZE:
        raise ValueError(f"the CUDA reference supports block size {DEFAULT_BLOCK_SIZE}, "
                         f"got {stream.block_size}")
    a = np.asarray(stream.a)
    w = np.asarray(stream.w)
    enabled = np.asarray(stream.en, dtype=bool)
    if enabled.any() and max(a[enabled].max(), w[enabled].max()) >= 16:
        raise ValueError("element codes must be in 0..15")
    bits, start, closers = stream_beats(stream.unit, a, w, stream.a_sf, stream.w_sf,
                                        beat_flags(stream))
    start, closers = start.get(), closers.get()
    emitted = start >= 0
    return Results(bits.get()[emitted], start[emitted], closers[emitted])


def kernel_ms(fn, repeats: int = 5) -> float:
    """Median device time of ``fn()`` in milliseconds: CUDA events around each of ``repeats``
    calls, after one untimed warm-up call."""
    cupy = require_gpu()
    fn()
    cupy.cuda.Device().synchronize()
    times = []
    for _ in range(repeats):
        begin, end = cupy.cuda.Event(), cupy.cuda.Event()
        begin.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(begin, end))
    return float(np.median(times))
