"""The CUDA reference on a GPU: gpu_ref/mac.cu compiled by NVRTC through CuPy.

Everything here but :func:`beat_flags` (a host-side packing) needs CuPy and an NVIDIA GPU;
:func:`gpu_available` says whether both are there without raising, and every other function
raises :class:`GpuUnavailable` (one line) if not. CuPy is imported lazily, so this module
imports on machines without it.

The functions mirror the golden model's: :func:`exhaustive_lanes` is
``golden.scaled_products`` over every single-beat input, :func:`run` is ``golden.run`` (the
kernel reads the raw rows and finds the segments itself), and :func:`random_segments`
computes the results of the generator in :mod:`.generator`. With ``arch="fused-fp32"`` or
``"fused-exact"``, :func:`run`, :func:`stream_beats` and :func:`random_segments` compute the
fused architectures instead (gpu_ref/fused.cu, ``golden.fused.run_arch``), and
:func:`fused_exhaustive` their single-beat segments.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

import numpy as np

from if4mac.golden import Results, Stream, check_unit
from if4mac.golden.fused import check_arch, exact_acc_width, exact_max_segment
from if4mac.golden.formats import DEFAULT_BLOCK_SIZE, ELEMENT_CODES

__all__ = ["SOURCE", "NVRTC_OPTIONS", "EXHAUSTIVE_CASES", "GpuUnavailable", "gpu_available",
           "no_gpu_message", "NO_GPU_MESSAGE",
           "require_gpu", "module", "device_info", "exhaustive_lanes", "random_segments",
           "beat_flags", "stream_beats", "run", "kernel_ms", "UNIT_CODES", "BEAT_EN",
           "BEAT_FIRST", "BEAT_RESET", "FUSED_SOURCE", "COMMON_SOURCE", "FUSED_NVRTC_OPTIONS",
           "ARCH_CODES", "fused_module",
           "max_segment", "fused_exhaustive"]

#: The CUDA source, a real file beside this module.
SOURCE = Path(__file__).with_name("mac.cu")
#: The fused architectures' kernels.
FUSED_SOURCE = Path(__file__).with_name("fused.cu")
#: What both sources #include (decoders, stream rules, generator), found beside them.
COMMON_SOURCE = Path(__file__).with_name("mac_common.cuh")
_INCLUDE = (f"--include-path={COMMON_SOURCE.parent}",)
#: No FMA contraction anywhere; C++17 for mac.cu's hex float literals.
NVRTC_OPTIONS = ("--fmad=false", "--std=c++17")
#: fused.cu's: fused-exact's 128-bit accumulator needs NVRTC's opt-in to device __int128.
FUSED_NVRTC_OPTIONS = NVRTC_OPTIONS + ("--device-int128",)
#: Single-beat cases of one unit: 16 a codes x 16 w codes x 256 a_sf x 256 w_sf.
EXHAUSTIVE_CASES = 1 << 24
#: The ``unit`` argument of every kernel (UNIT_NVFP4 / UNIT_IF4 in mac.cu).
UNIT_CODES = {"nvfp4": 0, "if4": 1}
#: The ``arch`` argument of fused.cu's kernels (ARCH_FUSED_* there).
ARCH_CODES = {"fused-fp32": 1, "fused-exact": 2}
#: fused-fp32 has no segment limit: its kernels get a count no segment reaches.
_NO_LIMIT = (1 << 62)
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
    return cupy.RawModule(code=SOURCE.read_text(), options=NVRTC_OPTIONS + _INCLUDE)


@functools.cache
def fused_module():
    """The compiled :class:`cupy.RawModule` of fused.cu."""
    cupy = require_gpu()
    return cupy.RawModule(code=FUSED_SOURCE.read_text(), options=FUSED_NVRTC_OPTIONS + _INCLUDE)


def max_segment(arch: str, unit: str, acc_width: int | None = None) -> int:
    """The longest segment the kernels sum before the quiet NaN: fused-exact's L_max for
    ``acc_width`` (golden's rule, ``golden.fused.exact_max_segment``; None: the default
    width), no limit for fused-fp32. ``acc_width`` is fused-exact's option only."""
    if check_arch(arch) == "reference":
        raise ValueError("max_segment applies to the fused architectures only")
    if arch != "fused-exact":
        if acc_width is not None:
            raise ValueError(f"acc_width applies only to arch 'fused-exact', not {arch!r}")
        return _NO_LIMIT
    width = exact_acc_width(unit, DEFAULT_BLOCK_SIZE, acc_width)
    return exact_max_segment(unit, DEFAULT_BLOCK_SIZE, width)


def _fused_arch(arch: str) -> str:
    if check_arch(arch) == "reference":
        raise ValueError("this kernel computes the fused architectures, not 'reference'")
    return arch


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


def _launch(kernel: str, n: int, args, *, fused: bool = False) -> None:
    if n == 0:
        return
    blocks = (n + THREADS - 1) // THREADS
    (fused_module() if fused else module()).get_function(kernel)((blocks,), (THREADS,), args)


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


def fused_exhaustive(arch: str, unit: str, *, acc_width: int | None = None, out=None):
    """All 2**24 single-beat segments of a fused ``arch`` (CuPy uint32, canonical order).

    Index ``((a_sf * 256 + w_sf) * 16 + a) * 16 + w`` holds the result of the one-beat segment
    whose 16 lanes all carry codes ``(a, w)`` with scales ``(a_sf, w_sf)``.
    """
    arch, unit = _fused_arch(arch), check_unit(unit)
    limit = max_segment(arch, unit, acc_width)
    cupy = require_gpu()
    if out is None:
        out = cupy.empty(EXHAUSTIVE_CASES, dtype=cupy.uint32)
    _launch("fused_exhaustive", EXHAUSTIVE_CASES,
            (np.int32(ARCH_CODES[arch]), np.int32(UNIT_CODES[unit]), np.int64(limit), out),
            fused=True)
    return out


def random_segments(unit: str, seed: int, start: int, count: int, *, arch: str = "reference",
                    acc_width: int | None = None, out=None):
    """Results (CuPy uint32) of generator segments ``start .. start + count - 1`` under
    ``arch`` (``acc_width``: fused-exact's accumulator width, None for the default)."""
    from .generator import _check_range, _check_seed

    unit = check_unit(unit)
    _check_range(start, count)
    seed = np.uint64(_check_seed(seed))
    cupy = require_gpu()
    if check_arch(arch) != "reference":
        limit = max_segment(arch, unit, acc_width)
    elif acc_width is not None:
        raise ValueError("acc_width applies only to arch 'fused-exact', not 'reference'")
    if out is None:
        out = cupy.empty(count, dtype=cupy.uint32)
    if arch == "reference":
        _launch("random_segments", count, (np.int32(UNIT_CODES[unit]), seed,
                                           np.int64(start), np.int64(count), out))
    else:
        _launch("fused_random_segments", count,
                (np.int32(ARCH_CODES[arch]), np.int32(UNIT_CODES[unit]), seed, np.int64(start),
                 np.int64(count), np.int64(limit), out), fused=True)
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


def stream_beats(unit: str, a, w, a_sf, w_sf, flags, *, arch: str = "reference",
                 acc_width: int | None = None):
    """Run the raw beat-stream kernel of ``arch``; returns CuPy ``(bits, start, closers)``.

    ``a``/``w``: (rows, 16) uint8 codes; ``a_sf``/``w_sf``: (rows,) uint8; ``flags``: (rows,)
    uint8 of :func:`beat_flags` bits. ``closers`` lists the rows with en=1 and first=1, the
    candidate closing beats; where row ``closers[t]`` closes a segment with a result,
    ``start[t]`` is the row of its opening beat and ``bits[t]`` the result, elsewhere
    ``start[t]`` is -1 (the kernel decides). Inputs may be numpy or CuPy arrays.
    ``acc_width``: fused-exact's accumulator width (None: the default).
    """
    unit = check_unit(unit)
    limit = max_segment(arch, unit, acc_width) if check_arch(arch) != "reference" else None
    if limit is None and acc_width is not None:
        raise ValueError("acc_width applies only to arch 'fused-exact', not 'reference'")
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
    common = (a, w, arrays["a_sf"], arrays["w_sf"], arrays["flags"], closers, np.int64(count))
    if limit is None:
        _launch("stream_beats", count, (np.int32(UNIT_CODES[unit]),) + common + (bits, start))
    else:
        _launch("fused_stream_beats", count,
                (np.int32(ARCH_CODES[arch]), np.int32(UNIT_CODES[unit])) + common
                + (np.int64(limit), bits, start), fused=True)
    return bits, start, closers


def run(stream: Stream, *, arch: str = "reference", acc_width: int | None = None) -> Results:
    """``golden.fused.run_arch(stream, arch=arch)`` computed on the GPU (``golden.run`` for the
    default ``"reference"``): every completed segment's result, in order. ``acc_width`` is
    fused-exact's option, as golden's; its overflow record (``overflow_beat``) is golden's
    alone: the kernel gives an overflowed segment's result, the quiet NaN.

    The kernel reads the stream's rows as they are, bubbles and reset pulses included, and
    finds the segments itself. Block size must be the formats' 16 (the kernels keep one
    register per lane: LANES in mac_common.cuh).
    Codes are not validated beyond 0..15: like the hardware, an INT4 block's 0x8 is -8.
    """
    if stream.block_size != DEFAULT_BLOCK_SIZE:
        raise ValueError(f"the CUDA reference supports block size {DEFAULT_BLOCK_SIZE}, "
                         f"got {stream.block_size}")
    a = np.asarray(stream.a)
    w = np.asarray(stream.w)
    enabled = np.asarray(stream.en, dtype=bool)
    if enabled.any() and max(a[enabled].max(), w[enabled].max()) >= ELEMENT_CODES:
        raise ValueError(f"element codes must be in 0..{ELEMENT_CODES - 1}")
    bits, start, closers = stream_beats(stream.unit, a, w, stream.a_sf, stream.w_sf,
                                        beat_flags(stream), arch=arch, acc_width=acc_width)
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
