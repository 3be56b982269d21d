"""The golden quantizers: real tensors to MAC stimulus (NVFP4, NVINT4 and IF4).

Bit-exact with the IF4 authors' PyTorch reference quantizer (NVFP4 and NVINT4 with the static
rule, IF4 with the MSE rule) as it runs on a CPU, apart from the one deliberate difference
listed below (on a GPU, torch sums IF4's errors in another order: see below). Every step is
one binary32 operation (numpy float32), in this order; nothing goes through float64.

Blocks are 16 consecutive elements along the last axis. With ``M`` the largest element
magnitude (6 for ``nvfp4`` and ``if4``, 7 for ``nvint4``):

1. ``amax = max|x|`` over the whole tensor (inputs are converted to binary32 first, exactly
   for float16 and bfloat16, by rounding to nearest for float64).
2. ``encode = f32(M*448) / amax``; per block ``s = e4m3(block_amax / M * encode)``, rounded to
   nearest-even onto the E4M3 grid (ml_dtypes' ``float8_e4m3fn``, subnormals included);
   ``decode = 1 / encode``.
3. ``x_s = x * (1 / (decode * s))`` where ``s != 0``, else +0.
4. Elements:

   * E2M1 (``nvfp4``, and IF4's FP candidate): ``|x_s|`` to the nearest of
     0, .5, 1, 1.5, 2, 3, 4, 6, ties to the even code (0.25 -> 0, 0.75 -> 1, 2.5 -> 2,
     5 -> 4), saturating at 6. The sign bit is set when ``x_s < 0``, so a negative value that
     rounds to zero is code 0x8 (-0), while a -0.0 input gives code 0x0, as in the reference
     (whose ``sign(-0.0)`` is +0).
   * INT4 (``nvint4``): ``round_half_even(clamp(x_s, -7, 7))``, two's-complement nibble.
   * IF4: the INT candidate is ``round_half_even(clamp(x_s * f32(1.16666666), -7, 7))``.
     Both candidates are dequantized in the input's units,
     ``d_fp = ((q_fp * s) * amax) / f32(2688)`` and
     ``d_int = (((q_int * s) * amax) * f32(0.8571428571)) / f32(2688)``, and their block
     errors ``e = sum (d - x)^2`` are compared; the block is INT4 only where
     ``e_int < e_fp`` (a tie keeps FP4), marked by bit 7 of its scale byte.

Decisions and differences, each deliberate:

* **Saturation.** When a block's scale is an E4M3 subnormal that rounded down a long way
  (1 or 2 times 2^-9 for up to 2.5 times 2^-9), ``|x_s|`` can reach 7. The reference then
  rounds it to 8 or more and emits a code outside E2M1 (its bit pattern collides with the
  sign bit); here E2M1 saturates at 6. This is the one place where the codes differ from the
  reference's; it takes a block whose amax is below about 1e-5 of the tensor's amax.
* **Summation order of the IF4 block error.** ``p_i = t_i + t_(i+8)`` for i = 0..7, then
  ``((p_0 + p_1) + p_2) + ... + p_7``, every add in binary32 (:func:`block_error_sum`). This
  is the order of torch's CPU ``sum`` over a contiguous axis of 16 floats (one 8-float vector
  of partial sums, then its lanes in order); with it, this module matched the recipe run as
  torch 2.11 ops on x86 (AVX-512, AVX2 and DEFAULT kernels) bit for bit, in all 852k blocks
  of each format of a mixed test set, apart from the saturation blocks above. torch on CUDA
  sums in yet another order, and there the IF4 choice differed in 35 of those 852k blocks,
  each a near-tie of the two errors; NVFP4 and NVINT4 matched CUDA exactly.
* **Scale overflow.** ml_dtypes' ``float8_e4m3fn`` rounds (448, 464] to 448 and turns
  anything above 464 into NaN, exactly as torch's conversion does. No scale can get there:
  ``block_amax <= amax`` bounds ``block_amax / M * encode`` by ``448 * (1 + 3 * 2^-24)``.
* **Tiny and huge tensors.** The all-zero tensor (``amax = 0``) gives all codes 0, all scales
  0 and ``amax = 0``, without any division. A nonzero ``amax`` so small that ``encode`` or
  ``1 / (decode * s)`` overflows binary32 (only possible for ``amax`` below about 4e-33) is
  rejected with a ``ValueError``, since the reference's arithmetic turns into inf/NaN there.
  Scaling a tensor by a power of two scales ``amax`` and nothing else, as long as IF4's
  squared errors (which are in the input's units) stay normal binary32 numbers. For values
  beyond about 1e19 they overflow to inf and tie; below about 1e-20 they underflow to
  subnormals and zero and mostly tie. A tie keeps FP4, so IF4 then degrades to NVFP4, as
  the reference does.
* **Largest tensor.** The reference quantizes any finite tensor: its quantization steps stay
  finite for every binary32 ``amax`` (so do this module's, bit for bit). Only the recipe's
  dequantization, ``((code * s) * amax) / f32(M*448)`` in binary32, overflows: the block
  holding ``amax`` has ``code * s = M * 448``, so ``f32(M*448) * amax`` is infinite above
  about 1.27e35 for nvfp4 and IF4 and 1.09e35 for nvint4 (:func:`max_amax`), although the
  values themselves (at most ``amax``) are finite. :func:`dequantize` therefore refuses such a
  tensor with a ``ValueError`` instead of returning infinities, and
  ``dequantize(q, float64=True)`` gives the values in float64 (for error statistics).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import ml_dtypes
import numpy as np

from .formats import (
    DEFAULT_BLOCK_SIZE, E2M1_MAGNITUDES, E2M1_VALUES, ELEMENT_SIGN_BIT, INT4_VALUES,
    INT_EXPANSION, SCALE_INT_FLAG, UNITS, decode_scale, scale_is_int,
)
from .mac import Stream

__all__ = [
    "FORMATS", "BLOCK_SIZE", "E4M3_MAX", "INT_CANDIDATE_GAIN", "Quantized", "element_max",
    "quantize", "dequantize", "error_stats", "stimulus_from_quantized", "dot_product_scale",
    "round_scale_e4m3", "e2m1_codes", "int4_codes", "block_error_sum", "max_amax",
]

#: The quantizer's output formats; ``nvint4`` has no MAC unit (see :data:`formats.UNITS`).
FORMATS = ("nvfp4", "nvint4", "if4")

#: Elements per block, along the last axis: the formats' block.
BLOCK_SIZE = DEFAULT_BLOCK_SIZE
#: Largest finite E4M3 value: the block scale a tensor's largest block gets.
E4M3_MAX = 448

#: Largest element magnitude M of each format: the static rule maps a block's amax to it.
_ELEMENT_MAX = {"nvfp4": 6, "nvint4": 7, "if4": 6}

#: The reference's reciprocal of IF4's INT expansion, f32(1.16666666); the same binary32 as
#: f32(7/6), which the tests check.
INT_CANDIDATE_GAIN = np.float32(1.16666666)

#: Rounding boundaries between neighbouring E2M1 magnitudes (exact in binary32).
_E2M1_MIDPOINTS = (np.array(E2M1_MAGNITUDES[:-1], np.float32)
                   + np.array(E2M1_MAGNITUDES[1:], np.float32)) / np.float32(2)
#: The largest E2M1 magnitude code (6.0); everything above 5 saturates to it.
_E2M1_TOP_CODE = len(E2M1_MAGNITUDES) - 1
_E2M1_SIGN = 1 << ELEMENT_SIGN_BIT
_INT4_LIMIT = np.float32(7)
_F32_ONE = np.float32(1)
_F32_ZERO = np.float32(0)

_INPUT_DTYPES = (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float32),
                 np.dtype(np.float64))


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return fmt


def element_max(fmt: str) -> int:
    """The element magnitude M that a block's amax maps to: 6 (nvfp4, if4) or 7 (nvint4)."""
    return _ELEMENT_MAX[_check_format(fmt)]


def _tensor_divisor(fmt: str) -> np.float32:
    """f32(M * 448): 2688 or 3136, exact."""
    return np.float32(element_max(fmt) * E4M3_MAX)


@dataclass(frozen=True, eq=False)      # array fields: == and hash would be ambiguous
class Quantized:
    """A quantized tensor.

    ``codes`` has the input's shape, one 4-bit element code per uint8 (E2M1 for nvfp4, INT4
    for nvint4, either for IF4 as the block's scale says). ``scales`` has the input's shape
    with the last axis divided by 16: E4M3 bits in [6:0] (sign bit always 0) and, for IF4
    only, bit 7 set on INT4 blocks. ``amax`` is the tensor's max |x| in binary32. The real
    value of an element is ``code value * scale * amax / (M * 448)``, times 6/7 in an IF4
    INT4 block (:func:`dequantize`).
    """

    format: str
    codes: np.ndarray
    scales: np.ndarray
    amax: np.float32

    def __post_init__(self):
        _check_format(self.format)
        codes = np.asarray(self.codes)
        scales = np.asarray(self.scales)
        if codes.dtype != np.uint8 or scales.dtype != np.uint8:
            raise ValueError(f"codes and scales must be uint8; got {codes.dtype} and "
                             f"{scales.dtype}")
        if codes.ndim == 0 or codes.shape[-1] == 0 or codes.shape[-1] % BLOCK_SIZE:
            raise ValueError(f"codes must have a last axis that is a positive multiple of "
                             f"{BLOCK_SIZE}; got shape {codes.shape}")
        expected = codes.shape[:-1] + (codes.shape[-1] // BLOCK_SIZE,)
        if scales.shape != expected:
            raise ValueError(f"scales must have shape {expected} for codes of shape "
                             f"{codes.shape}; got {scales.shape}")
        if codes.size and codes.max() >= 16:
            raise ValueError(f"element codes must be 4-bit (0..15); found {int(codes.max())}")
        if self.format != "if4" and scale_is_int(scales).any():
            raise ValueError(f"{self.format} scales cannot carry the INT4 flag (bit 7)")
        amax = np.float32(self.amax)
        if not (np.isfinite(amax) and amax >= 0):
            raise ValueError(f"amax must be finite and >= 0; got {self.amax!r}")
        object.__setattr__(self, "codes", codes)
        object.__setattr__(self, "scales", scales)
        object.__setattr__(self, "amax", amax)

    @property
    def int_fraction(self) -> float:
        """Fraction of blocks whose scale byte carries the INT4 flag: IF4's INT4 blocks (0
        for nvfp4 and nvint4, whose scales never carry it)."""
        if self.scales.size == 0:
            return 0.0
        return float(np.mean(scale_is_int(self.scales)))


@functools.lru_cache(maxsize=None)
def max_amax(fmt: str) -> np.float32:
    """The largest binary32 ``amax`` whose ``fmt`` tensor :func:`dequantize` can give in
    binary32: the largest ``a`` for which ``f32(M*448) * a``, the recipe's intermediate for
    the tensor's largest element, is finite."""
    divisor = _tensor_divisor(fmt)
    a = np.float32(np.finfo(np.float32).max / np.float64(divisor))
    with np.errstate(over="ignore"):
        while not np.isfinite(divisor * a):
            a = np.nextafter(a, np.float32(0))
        while np.isfinite(divisor * np.nextafter(a, np.float32(np.inf))):
            a = np.nextafter(a, np.float32(np.inf))
    return a


def _as_float32(x) -> np.ndarray:
    """The input as binary32, checked: floating dtype, last axis a multiple of 16, finite."""
    arr = np.asarray(x)
    if arr.dtype.newbyteorder("=") not in _INPUT_DTYPES:       # any byte order is fine
        raise ValueError(f"x has dtype {arr.dtype}; expected float16, bfloat16, float32 or "
                         f"float64")
    if arr.ndim == 0 or arr.size == 0:
        raise ValueError(f"x must be a non-empty array with at least one axis; got shape "
                         f"{arr.shape}")
    if arr.shape[-1] % BLOCK_SIZE:
        raise ValueError(f"the last axis of x ({arr.shape[-1]}) is not a multiple of the "
                         f"block size {BLOCK_SIZE}")
    with np.errstate(over="ignore"):        # float64 beyond binary32's range: caught below
        x32 = arr.astype(np.float32)
    finite = np.isfinite(x32)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(f"x holds {int((~finite).sum())} NaN/inf value(s) (in binary32), "
                         f"the first at index {where}")
    return x32


def round_scale_e4m3(values) -> np.ndarray:
    """E4M3 bits (uint8, sign bit 0) of non-negative binary32 values, rounded to nearest-even.

    Subnormals (multiples of 2^-9 below 2^-6) included; (448, 464] rounds to 448; above 464
    gives 0x7F (NaN in float8_e4m3fn), as in torch. The quantizer never gets there.
    """
    v = np.asarray(values, dtype=np.float32)
    return v.astype(ml_dtypes.float8_e4m3fn).view(np.uint8)


def e2m1_codes(x_s) -> np.ndarray:
    """E2M1 codes (uint8) of scaled values: nearest magnitude, ties to even, saturating at 6.

    Sign bit set for ``x_s < 0`` only: -0.0 gives code 0, a negative value that rounds to zero
    gives 0x8.
    """
    x_s = np.asarray(x_s, dtype=np.float32)
    mag = np.abs(x_s)
    # The count of boundaries strictly below |x_s| is the magnitude code, except on a boundary.
    code = np.searchsorted(_E2M1_MIDPOINTS, mag, side="left")
    on_boundary = mag == _E2M1_MIDPOINTS[np.minimum(code, _E2M1_TOP_CODE - 1)]
    # On a boundary the count names the lower neighbour; round half to the even code.
    code = np.where(on_boundary & (code % 2 == 1), code + 1, code)
    return (code.astype(np.uint8) | np.where(x_s < 0, _E2M1_SIGN, 0).astype(np.uint8))


def _int4_values(v: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(v, -_INT4_LIMIT, _INT4_LIMIT))     # rint: round half to even


def int4_codes(v) -> np.ndarray:
    """INT4 codes (uint8 nibbles) of ``round_half_even(clamp(v, -7, 7))``; never 0x8."""
    q = _int4_values(np.asarray(v, dtype=np.float32))
    return (q.astype(np.int8) & 0xF).astype(np.uint8)


#: Lanes of the partial sums in the IF4 error: torch's CPU sum kernel keeps one 8-float
#: vector of partial sums, so element i lands in lane i % 8.
_ERROR_SUM_LANES = 8


def block_error_sum(terms) -> np.ndarray:
    """Sum over the last axis (16) in the IF4 error's order, every add rounded to binary32.

    ``p_i = t_i + t_(i+8)`` for i = 0..7, then ``((p_0 + p_1) + p_2) + ... + p_7``: the order
    of torch's CPU ``sum`` over a contiguous axis of 16 floats (see the module docstring).
    """
    terms = np.asarray(terms, dtype=np.float32)
    if terms.ndim == 0 or terms.shape[-1] != BLOCK_SIZE:
        raise ValueError(f"block_error_sum needs a last axis of {BLOCK_SIZE}; got shape "
                         f"{terms.shape}")
    lanes = terms[..., :_ERROR_SUM_LANES] + terms[..., _ERROR_SUM_LANES:]
    acc = lanes[..., 0].copy()
    for i in range(1, _ERROR_SUM_LANES):
        acc += lanes[..., i]
    return acc


def _block_sse(d: np.ndarray, x: np.ndarray) -> np.ndarray:
    diff = d - x
    return block_error_sum(diff * diff)


def quantize(x, fmt: str) -> Quantized:
    """Quantize ``x`` (float16, bfloat16, float32 or float64; last axis a multiple of 16).

    ``fmt`` is one of :data:`FORMATS`. Raises ``ValueError`` for an unknown format, a bad
    shape or dtype, NaN/inf values, or a nonzero amax too small for binary32 scaling.
    See the module docstring for the exact arithmetic.
    """
    _check_format(fmt)
    x32 = _as_float32(x)
    blocks = x32.reshape(x32.shape[:-1] + (-1, BLOCK_SIZE))
    amax = np.max(np.abs(x32))
    if amax == 0:
        return Quantized(fmt, np.zeros(x32.shape, np.uint8),
                         np.zeros(blocks.shape[:-1], np.uint8), np.float32(0))

    m = np.float32(element_max(fmt))
    with np.errstate(over="ignore", divide="ignore", under="ignore"):
        encode = _tensor_divisor(fmt) / amax
        if not np.isfinite(encode):
            raise ValueError(f"amax {float(amax)!r} is too small: f32({int(element_max(fmt))}"
                             f"*448)/amax overflows binary32")
        block_amax = np.max(np.abs(blocks), axis=-1)
        scale_bits = round_scale_e4m3(block_amax / m * encode)
        s = decode_scale(scale_bits)
        decode = _F32_ONE / encode
        nonzero = s != 0
        inv = np.zeros_like(s)
        np.divide(_F32_ONE, decode * s, out=inv, where=nonzero)
    if not np.isfinite(inv).all():
        raise ValueError(f"amax {float(amax)!r} is too small: 1/(decode*scale) overflows "
                         f"binary32")
    x_s = np.where(nonzero[..., None], blocks * inv[..., None], _F32_ZERO)

    if fmt == "nvfp4":
        codes = e2m1_codes(x_s)
    elif fmt == "nvint4":
        codes = int4_codes(x_s)
    else:
        codes, int_blocks = _choose_if4(blocks, x_s, s, amax)
        scale_bits = scale_bits | np.where(int_blocks, SCALE_INT_FLAG, 0).astype(np.uint8)
    return Quantized(fmt, codes.reshape(x32.shape), scale_bits, amax)


def _choose_if4(blocks, x_s, s, amax):
    """IF4's MSE rule: per block, INT4 codes where they strictly beat E2M1 in squared error."""
    fp = e2m1_codes(x_s)
    it = int4_codes(x_s * INT_CANDIDATE_GAIN)
    divisor = _tensor_divisor("if4")
    sb = s[..., None]
    with np.errstate(over="ignore"):           # values beyond ~1e19: inf errors tie, FP kept
        d_fp = ((E2M1_VALUES[fp] * sb) * amax) / divisor
        d_int = (((INT4_VALUES[it] * sb) * amax) * INT_EXPANSION) / divisor
        int_blocks = _block_sse(d_int, blocks) < _block_sse(d_fp, blocks)
    return np.where(int_blocks[..., None], it, fp), int_blocks


def dequantize(q: Quantized, *, float64: bool = False) -> np.ndarray:
    """The values ``q`` stands for, binary32, shape of ``q.codes``.

    ``((value * s) * amax) / f32(M*448)``, with ``* f32(6/7)`` before the division in IF4 INT4
    blocks: the same operations, in the same order, as the IF4 error of :func:`quantize`.
    Above :func:`max_amax` that order overflows binary32 and a ``ValueError`` says so;
    ``float64=True`` does the same operations in float64 (not the recipe's rounding; for
    error statistics), which never overflows.
    """
    if not isinstance(q, Quantized):
        raise ValueError(f"dequantize needs a Quantized; got {type(q).__name__}")
    if not float64 and q.amax > max_amax(q.format):
        raise ValueError(f"amax {np.format_float_scientific(q.amax)} is above "
                         f"{np.format_float_scientific(max_amax(q.format))}: the recipe's "
                         f"binary32 dequantization (code * scale * amax / "
                         f"{int(_tensor_divisor(q.format))}) overflows; use float64=True "
                         f"(see docs/errors.md)")
    codes = q.codes.reshape(q.codes.shape[:-1] + (-1, BLOCK_SIZE))
    s = decode_scale(q.scales)[..., None]
    divisor = _tensor_divisor(q.format)
    if q.format == "nvint4":
        values = INT4_VALUES[codes]
    elif q.format == "nvfp4":
        values = E2M1_VALUES[codes]
    else:
        is_int = scale_is_int(q.scales)[..., None]
        values = np.where(is_int, INT4_VALUES[codes], E2M1_VALUES[codes])
    if float64:
        values, s = values.astype(np.float64), s.astype(np.float64)
    with np.errstate(over="ignore"):
        scaled = (values * s) * (np.float64(q.amax) if float64 else q.amax)
        if q.format == "if4":
            scaled = np.where(is_int, scaled * INT_EXPANSION, scaled)
        out = scaled / divisor
    return out.reshape(q.codes.shape)


def error_stats(x, xq) -> dict:
    """Summary of a quantization's error: ``mse``, ``snr_db`` and ``max_abs_error`` (float64).

    ``snr_db = 10 log10(sum x^2 / sum (x - xq)^2)``: inf for an exact reconstruction.
    """
    x64 = np.asarray(x).astype(np.float64)
    xq64 = np.asarray(xq).astype(np.float64)
    if x64.shape != xq64.shape:
        raise ValueError(f"x and xq differ in shape: {x64.shape} vs {xq64.shape}")
    if x64.size == 0:
        raise ValueError("x and xq are empty")
    if not (np.isfinite(x64).all() and np.isfinite(xq64).all()):
        raise ValueError("x and xq must be finite")
    err = x64 - xq64
    noise = float(np.sum(err * err))
    signal = float(np.sum(x64 * x64))
    if noise == 0:
        snr = float("inf")
    elif signal == 0:
        snr = float("-inf")
    else:
        snr = 10 * np.log10(signal / noise)
    return {"mse": noise / err.size, "snr_db": float(snr),
            "max_abs_error": float(np.max(np.abs(err)))}


def dot_product_scale(a: Quantized, w: Quantized) -> float:
    """``(amax_a / (M_a*448)) * (amax_w / (M_w*448))`` in float64: MAC result times this is
    the dot product of the dequantized operands (up to the MAC's binary32 rounding)."""
    for name, q in (("a", a), ("w", w)):
        if not isinstance(q, Quantized):
            raise ValueError(f"{name} must be a Quantized; got {type(q).__name__}")
    return (float(a.amax) / (element_max(a.format) * E4M3_MAX)) * \
           (float(w.amax) / (element_max(w.format) * E4M3_MAX))


def stimulus_from_quantized(a: Quantized, w: Quantized, unit: str) -> Stream:
    """The beat stream that computes ``a @ w.T`` on the MAC, one segment per output.

    ``a`` (activations) has shape (M, K) and ``w`` (weights) (N, K), K a multiple of 16, both
    quantized in ``unit``'s format ("nvfp4" or "if4"). Outputs (m, n) go in row-major order;
    each is a segment of K/16 beats, beat j carrying ``a.codes[m, 16j:16j+16]`` with
    ``a.scales[m, j]`` and the same slice of ``w`` row n, ``first=1`` on its first beat. One
    extra beat with ``first=1``, all-zero codes and scales 0 closes the last segment; it opens
    a segment of its own that is never closed and so yields no result. So
    ``run(stream)`` gives M*N results, in row-major order.

    Memory and length are O(M*N*K): meant for test-sized operands.
    """
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}: expected one of {', '.join(UNITS)} "
                         f"(nvint4 has no MAC unit)")
    for name, q in (("a", a), ("w", w)):
        if not isinstance(q, Quantized):
            raise ValueError(f"{name} must be a Quantized; got {type(q).__name__}")
        if q.format != unit:
            raise ValueError(f"unit {unit!r} needs both operands quantized as {unit!r}; "
                             f"{name} is {q.format!r}")
        if q.codes.ndim != 2:
            raise ValueError(f"{name} must be 2-D (rows, K); got shape {q.codes.shape}")
    (m_rows, k), (n_rows, k_w) = a.codes.shape, w.codes.shape
    if k != k_w:
        raise ValueError(f"a and w must share K; got a {a.codes.shape} and w {w.codes.shape}")
    beats_per_output = k // BLOCK_SIZE
    a_blocks = a.codes.reshape(m_rows, 1, beats_per_output, BLOCK_SIZE)
    w_blocks = w.codes.reshape(1, n_rows, beats_per_output, BLOCK_SIZE)
    grid = (m_rows, n_rows, beats_per_output)
    closing = np.zeros((1, BLOCK_SIZE), np.uint8)
    a_codes = np.concatenate([np.broadcast_to(a_blocks, grid + (BLOCK_SIZE,))
                              .reshape(-1, BLOCK_SIZE), closing])
    w_codes = np.concatenate([np.broadcast_to(w_blocks, grid + (BLOCK_SIZE,))
                              .reshape(-1, BLOCK_SIZE), closing])
    a_sf = np.append(np.broadcast_to(a.scales[:, None, :], grid).reshape(-1), np.uint8(0))
    w_sf = np.append(np.broadcast_to(w.scales[None, :, :], grid).reshape(-1), np.uint8(0))
    beats = len(a_codes)
    first = np.zeros(beats, dtype=bool)
    first[::beats_per_output] = True        # every segment's first beat, and the closing one
    first[-1] = True
    return Stream(unit=unit, en=np.ones(beats, dtype=bool), first=first, a=a_codes, w=w_codes,
                  a_sf=a_sf.astype(np.uint8), w_sf=w_sf.astype(np.uint8))
