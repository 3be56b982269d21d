"""The fused block dot-product architectures, bit-exact and vectorized over segments.

Both sum a beat's B lane products exactly as one integer and round late (docs/spec.md,
section "Fused architectures"). The shared front end decodes each element to a signed
integer ``q``: an E2M1 element as twice its value (so 0.5 becomes 1), an INT4 element as its
integer value (0x8 is -8, what the hardware computes). A beat's lanes share one kind, so

    S = sum_i q_a,i * q_w,i   is exact, and the beat's element dot product is S * 2^-k,

with ``k`` = 2 (FP.FP), 1 (FP.INT, either order) or 0 (INT.INT); NVFP4 is always FP.FP.

* ``"fused-fp32"``: ``m_b = rne32(S * 2^-k * sf_b)`` with ``sf_b`` exactly the reference's
  scale product (IF4's rounded f32(6/7) and f32(36/49) factors included); the segment sums
  ``acc = first ? m_b : rne32(acc + m_b)`` and its result is ``acc``.
* ``"fused-exact"``: the result is ``rne32`` of the exact segment sum of
  ``S * 2^-k * dec(a_sf) * dec(w_sf) * f`` with ``f`` = 1, 6/7 or 36/49 exactly. Here every
  beat is an integer ``N_b = S * sig_a * sig_w * c`` at a power of two ``2^(e_a + e_w - k)``
  (``c`` = 49, 42, 36 for IF4, so the segment sum is 49 times the exact one; 1 for NVFP4), and
  the sum is kept in two int64 halves: beats at weights below 2^-4 add into ``lo`` (units of
  2^-20), the others into ``hi`` (units of 2^-4). Rounding divides by ``c`` once, with
  integers only. A segment longer than the accumulator allows gives the quiet NaN and is
  listed in ``FusedResults.overflow_beat`` (the hardware's sticky ``overflow``).

Stream semantics (first/en/bubbles/reset, a result when the next first=1 arrives) are the
reference's, from :mod:`.mac`, with each architecture's own latency (:func:`fused_latency`):
a reset at most that many rows after a close discards its result in flight
(``Results.discarded_beat``), as the RTL's ``rst_n`` clears every register. fused-exact's
``converter="serial"`` option (IF4) models the hardware's shared /49: a segment closing
within :data:`SERIAL_CONVERTER_BUSY` cycles of the last accepted one loses its result
(``Results.overrun_beat``), as the reference's shared tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from if4mac.errors import ParameterTypeError

from .formats import (
    E2M1_VALUES, E4M3_VALUES, INT4_VALUES, check_unit, float32_bits, scale_is_int,
)
from .mac import (
    REDUCTIONS, Results, Stream, _accumulate, _no_beats, emitting_segments, in_flight_fate,
    run, rows_to_next_reset, scale_product_table, validate,
)

__all__ = [
    "ARCHS", "check_arch", "FUSED_OPTIONS", "CONVERTERS", "SERIAL_CONVERTER_BUSY",
    "check_converter",
    "MAX_ACC_WIDTH", "exact_divisor", "FusedResults", "QNAN_BITS", "DEFAULT_SEGMENT_BEATS",
    "ELEMENT_Q", "element_q_table", "q_bound", "dot_bound", "KIND_SHIFT", "KIND_WEIGHT",
    "EXACT_LSB_EXP", "scale_int_parts", "exact_beat_bound", "exact_acc_width",
    "exact_max_segment", "block_dots", "run_arch", "run_fused", "exact_to_binary32",
    "ACCUMULATOR_EDGE", "fused_latency",
]

#: The MAC architectures: the authors' per-lane design and the two fused block dot products.
ARCHS = ("reference", "fused-fp32", "fused-exact")

#: What an overflowed fused-exact segment returns: binary32's canonical quiet NaN.
QNAN_BITS = 0x7FC00000

#: The default fused-exact accumulator is the narrowest that takes this many beats per
#: segment (K = 65536 elements at B = 16).
DEFAULT_SEGMENT_BEATS = 4096

#: Widest fused-exact accumulator: 2^(128 - 1 + EXACT_LSB_EXP) stays far inside binary32's
#: range, and 2^107 lane-sums are more than any stream holds.
MAX_ACC_WIDTH = 128

#: Binary point of S by kind (number of INT4 operands, 0..2): q is twice an E2M1 value.
KIND_SHIFT = (2, 1, 0)
#: fused-exact's integer weight per kind for IF4: 49 * (1, 6/7, 36/49), exact.
KIND_WEIGHT = (49, 42, 36)
#: Weight of the exact accumulator's least significant bit: 2^-20, the smallest element
#: product (0.5 * 0.5 = 1 * 2^-2) times the smallest scale product (2^-9 * 2^-9).
EXACT_LSB_EXP = -20
#: ``lo`` takes the beats whose weight is below 2^(EXACT_LSB_EXP + _SPLIT), ``hi`` the rest.
_SPLIT = 16


#: The keyword options :func:`run_arch` passes on to :func:`run_fused`.
FUSED_OPTIONS = ("acc_width", "converter")

#: fused-exact's final conversion options: a pipelined /49 (a result every cycle) or a serial
#: one that divides the 32-bit window 4 quotient bits per cycle.
CONVERTERS = ("pipelined", "serial")
#: Cycles the serial converter is busy after accepting a segment (32 bits / 4 per cycle):
#: two closing beats must be at least this plus one cycles apart.
SERIAL_CONVERTER_BUSY = 8

#: Edges from the one that samples a beat to the one at which it reaches the segment
#: register (input, S and product/term registers come first): fused-exact's ``overflow``
#: rises there for the beat too many, and the serial converter accepts or refuses a closing
#: beat there (raising ``overrun``). The hardware's ACC_STAGE (hdl/fused.py).
ACCUMULATOR_EDGE = 3
#: fused-exact's conversion edges after the accumulator's (its first register loads from the
#: closing segment's sum at that same edge): the rounding (NVFP4), plus the pipelined /49
#: in two stages (IF4); the serial /49 takes its busy cycles plus the rounding.
_EXACT_CONVERT_EDGES = {"nvfp4": 1, "if4": 3}


def fused_latency(arch: str, unit: str, converter: str | None = None) -> int:
    """Edges from a closing beat's sampling edge to the edge that raises ``done``: 3
    (fused-fp32: the segment register is the output's source), 4 / 6 (fused-exact NVFP4 /
    IF4) or 12 (IF4's serial converter). The RTL derives its own (``latency`` of the tops);
    tests check that they agree. A reset at most this many rows after a close discards that
    result (:class:`.mac.Stream`)."""
    check_unit(unit)
    if check_arch(arch) == "fused-fp32":
        return ACCUMULATOR_EDGE
    if arch != "fused-exact":
        raise ValueError(f"fused_latency is for the fused architectures, not {arch!r}")
    if check_converter(unit, converter) == "serial":
        return ACCUMULATOR_EDGE + SERIAL_CONVERTER_BUSY + 1
    return ACCUMULATOR_EDGE + _EXACT_CONVERT_EDGES[unit]


def check_converter(unit: str, converter: str | None) -> str:
    """The converter (None: "pipelined"); a one-line ``ValueError`` for a bad one."""
    if converter is None:
        return "pipelined"
    if converter not in CONVERTERS:
        raise ValueError(f"unknown converter {converter!r}: expected one of "
                         f"{', '.join(CONVERTERS)}")
    if converter == "serial" and check_unit(unit) != "if4":
        raise ValueError("the serial converter shares IF4's /49; NVFP4 has no division")
    return converter


def check_arch(arch: str) -> str:
    """Return ``arch`` if it names an architecture, else raise a one-line ``ValueError``."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}: expected one of {', '.join(ARCHS)}")
    return arch


@dataclass(frozen=True)
class FusedResults(Results):
    """:class:`Results` plus, for fused-exact, the overflow record.

    ``overflow_beat``: for every segment (closed or not) with more enabled beats than the
    accumulator takes, the stream row of its first beat too many -- the beat at which the
    hardware raises its sticky ``overflow``. A closed one's result is :data:`QNAN_BITS`.
    """

    overflow_beat: np.ndarray = field(default_factory=_no_beats)

    @property
    def overflow(self) -> bool:
        return len(self.overflow_beat) > 0


# -- the integer front end --------------------------------------------------------------------

def _build_q() -> np.ndarray:
    """q per (is_int, code): twice the E2M1 value, or the INT4 value."""
    q = np.stack([2 * E2M1_VALUES, INT4_VALUES]).astype(np.int64)
    assert np.array_equal(q.astype(np.float32), np.stack([2 * E2M1_VALUES, INT4_VALUES]))
    q.setflags(write=False)
    return q


#: ``ELEMENT_Q[is_int, code]``: the element's integer in the fused front end.
ELEMENT_Q = _build_q()


def element_q_table(unit: str) -> np.ndarray:
    """``[a_int, w_int, a, w]`` -> q_a * q_w (int16); NVFP4 reads every block as E2M1."""
    use_int = check_unit(unit) == "if4"
    table = np.empty((2, 2, 16, 16), dtype=np.int16)
    for a_int in (0, 1):
        for w_int in (0, 1):
            table[a_int, w_int] = np.multiply.outer(ELEMENT_Q[int(use_int and a_int)],
                                                    ELEMENT_Q[int(use_int and w_int)])
    table.setflags(write=False)
    return table


#: Per unit, the product table of each (a_int, w_int) kind, flat over ``a << 4 | w``.
_QQ_BY_KIND = {unit: element_q_table(unit).reshape(4, 256) for unit in ("nvfp4", "if4")}


def q_bound(is_int: bool) -> int:
    """Largest |q|: 12 (E2M1 6.0 doubled) or 8 (INT4 0x8 decoded as -8)."""
    return int(np.abs(ELEMENT_Q[int(is_int)]).max())


def dot_bound(block_size: int, n_int: int) -> int:
    """Largest |S| of a beat of kind ``n_int``: B * 144, B * 96 or B * 64."""
    return block_size * q_bound(n_int >= 1) * q_bound(n_int >= 2)


def _kinds(unit: str) -> tuple[int, ...]:
    return (0, 1, 2) if unit == "if4" else (0,)


def _scale_int_tables():
    """E4M3 as ``sig * 2^exp`` with integer sig (0..15, hidden bit explicit) and exp -9..5."""
    codes = np.arange(128)
    exp, man = codes >> 3, codes & 7
    man = np.where((exp == 15) & (man == 7), 6, man)       # the 448 rule
    sig = np.where(exp == 0, man, 8 + man).astype(np.int64)
    e = (np.maximum(exp, 1) - 10).astype(np.int64)
    assert np.array_equal(sig * np.exp2(e.astype(np.float64)), E4M3_VALUES.astype(np.float64))
    sig.setflags(write=False)
    e.setflags(write=False)
    return sig, e


_SCALE_SIG, _SCALE_EXP = _scale_int_tables()


def scale_int_parts(scale_bytes):
    """``(sig, exp)`` int64 arrays with dec(scale) = sig * 2^exp (bit 7 ignored)."""
    index = np.asarray(scale_bytes, dtype=np.uint8) & 0x7F
    return _SCALE_SIG[index], _SCALE_EXP[index]


#: Largest decoded scale product, 448 * 448, as an integer at weight 2^(2 * 5).
_SCALE_PRODUCT_MAX = 196
_SCALE_EXP_MAX = int(_SCALE_EXP[0x7E]) * 2
assert _SCALE_PRODUCT_MAX * 2.0 ** _SCALE_EXP_MAX == float(E4M3_VALUES[0x7E]) ** 2


def _exact_weight(unit: str, n_int: int) -> int:
    return KIND_WEIGHT[n_int] if unit == "if4" else 1


def exact_divisor(unit: str) -> int:
    """What the exact accumulator's integer is divided by at the end: 49 (IF4) or 1."""
    return KIND_WEIGHT[0] if check_unit(unit) == "if4" else 1


def exact_beat_bound(unit: str, block_size: int) -> int:
    """Largest |term| one beat adds to the exact accumulator, in units of 2^EXACT_LSB_EXP.

    Max over kinds of ``|S|max * c * 448^2 * 2^(-k - EXACT_LSB_EXP)``; for IF4 INT.INT wins
    (64 * 36 > 144 * 49 / 4 and > 96 * 42 / 2).
    """
    check_unit(unit)
    return max(dot_bound(block_size, n) * _exact_weight(unit, n) * _SCALE_PRODUCT_MAX
               << (_SCALE_EXP_MAX - KIND_SHIFT[n] - EXACT_LSB_EXP)
               for n in _kinds(unit))


def exact_max_segment(unit: str, block_size: int, acc_width: int) -> int:
    """The longest segment (enabled beats) a two's complement ``acc_width``-bit accumulator
    holds for every input: ``floor((2^(W-1) - 1) / exact_beat_bound)``."""
    return ((1 << (acc_width - 1)) - 1) // exact_beat_bound(unit, block_size)


def exact_acc_width(unit: str, block_size: int, acc_width: int | None = None) -> int:
    """Validate ``acc_width`` (it must hold one beat), or give the default: the narrowest
    width that takes :data:`DEFAULT_SEGMENT_BEATS` beats."""
    check_unit(unit)
    if acc_width is None:
        need = DEFAULT_SEGMENT_BEATS * exact_beat_bound(unit, block_size)
        return need.bit_length() + 1
    if isinstance(acc_width, bool) or not isinstance(acc_width, (int, np.integer)):
        raise ParameterTypeError(f"acc_width must be an integer, got {acc_width!r}")
    least = exact_beat_bound(unit, block_size).bit_length() + 1
    if acc_width > MAX_ACC_WIDTH:
        raise ValueError(f"acc_width {acc_width} is above {MAX_ACC_WIDTH}")
    if acc_width < least:
        raise ValueError(f"acc_width {acc_width} cannot hold one beat: {unit} at block size "
                         f"{block_size} needs at least {least} bits")
    return int(acc_width)


def block_dots(unit: str, a, w, a_sf, w_sf) -> np.ndarray:
    """S per beat (int32): the exact integer dot product of the q's over the last axis.

    One 256-entry product table per kind, indexed by the uint8 ``a << 4 | w``: a beat's lanes
    share its kind, so the rows are grouped by kind rather than widening every lane's index.
    """
    tables = _QQ_BY_KIND[check_unit(unit)]
    pairs = (np.asarray(a, dtype=np.uint8) << 4) | np.asarray(w, dtype=np.uint8)
    if unit != "if4":
        return np.add.reduce(tables[0][pairs], axis=-1, dtype=np.int32)
    kind = (scale_is_int(a_sf).astype(np.uint8) << 1) | scale_is_int(w_sf)
    out = np.empty(pairs.shape[:-1], dtype=np.int32)
    for k, table in enumerate(tables):
        rows = np.flatnonzero(kind == k)
        out[rows] = np.add.reduce(table[pairs[rows]], axis=-1, dtype=np.int32)
    return out


def _n_int(unit: str, a_sf, w_sf) -> np.ndarray:
    if unit != "if4":
        return np.zeros(np.shape(a_sf), dtype=np.int64)
    return scale_is_int(a_sf).astype(np.int64) + scale_is_int(w_sf)


# -- fused-fp32 -------------------------------------------------------------------------------

_KIND_SCALE_F32 = np.array([2.0 ** -k for k in KIND_SHIFT], dtype=np.float32)


def fused_fp32_products(unit: str, a, w, a_sf, w_sf) -> np.ndarray:
    """``m_b = rne32((S * 2^-k) * sf_b)`` per beat (binary32)."""
    s = block_dots(unit, a, w, a_sf, w_sf)
    # |S| < 2^24 for any B below 116508, so both conversions and the power of two are exact.
    x = s.astype(np.float32) * _KIND_SCALE_F32[_n_int(unit, a_sf, w_sf)]
    sf = scale_product_table(unit)[np.asarray(a_sf, dtype=np.uint8),
                                   np.asarray(w_sf, dtype=np.uint8)]
    return x * sf


# -- fused-exact ------------------------------------------------------------------------------

def _bit_length(x: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 values, with integer operations only."""
    x = x.copy()
    n = np.zeros(x.shape, dtype=np.int64)
    for step in (32, 16, 8, 4, 2, 1):
        big = (x >> step) != 0
        n += np.where(big, step, 0)
        x = np.where(big, x >> step, x)
    return n + (x != 0)


def exact_to_binary32(hi: np.ndarray, lo: np.ndarray, divisor: int) -> np.ndarray:
    """``rne32((hi * 2^16 + lo) * 2^EXACT_LSB_EXP / divisor)`` as uint32 bits; 0 gives +0.

    ``hi`` and ``lo`` are int64 with ``|hi| < 2^61``, ``|lo| < 2^62``. The magnitude is
    brought to 62 bits (a right shift ORs what it drops into the lowest bit: the rounding
    points of the quotient lie at multiples of 2^(d+1) of the shifted-out span, so they are
    never crossed), divided by ``divisor`` (at most 63) with the remainder kept as a sticky
    bit, and the 56-bit-or-longer quotient rounded to 24 bits, ties to even.
    """
    hi = np.asarray(hi, dtype=np.int64)
    lo = np.asarray(lo, dtype=np.int64)
    if not 1 <= divisor < 64:
        raise ValueError(f"divisor must be in 1..63, got {divisor}")
    mask16 = np.int64((1 << _SPLIT) - 1)
    hi = hi + (lo >> _SPLIT)                 # arithmetic shift: lo's carry, signed
    lo = lo & mask16                         # now 0 <= lo < 2^16
    neg = hi < 0
    mh = np.where(neg, -hi - (lo != 0), hi)
    ml = np.where(neg, (-lo) & mask16, lo)
    zero = (mh == 0) & (ml == 0)
    n = np.where(mh != 0, _bit_length(mh) + _SPLIT, _bit_length(ml))
    up = np.clip(62 - n, 0, 62)              # left shift when the magnitude is short
    down = np.clip(n - 62, 0, _SPLIT)        # right shift (with sticky) when it is long
    if np.any(n - 62 > _SPLIT):
        raise ValueError("exact accumulator magnitude beyond 2^78")
    whole = ((mh << _SPLIT) | ml) << up      # exact where down == 0
    dropped = (ml & ((np.int64(1) << down) - 1)) != 0
    shifted = (mh << (_SPLIT - down)) | (ml >> down) | dropped
    # Zero gets a dummy magnitude so no shift count below goes negative; it is masked last.
    x = np.where(zero, np.int64(1) << 61, np.where(down > 0, shifted, whole))
    exp = EXACT_LSB_EXP - up + down          # x * 2^exp is the magnitude (sticky aside)
    q, r = np.divmod(x, np.int64(divisor))
    qs = (q << 1) | (r != 0)                 # value qs * 2^(exp - 1) / 1, sticky at bit 0
    nq = _bit_length(qs)
    shift = nq - 24
    keep = qs >> shift
    rest = qs & ((np.int64(1) << shift) - 1)
    half = np.int64(1) << (shift - 1)
    keep = keep + ((rest > half) | ((rest == half) & ((keep & 1) == 1)))
    carry = keep >> 24                       # rounding reached 2^24
    keep = keep >> carry
    shift = shift + carry
    biased = exp - 1 + shift + 23 + 127
    bits = (neg.astype(np.int64) << 31) | (biased << 23) | (keep - (1 << 23))
    bits = np.where(zero, 0, bits)
    return bits.astype(np.uint32)


def _build_exact_scale_tables(unit: str):
    """Per scale-byte pair ``a_sf << 8 | w_sf``: the beat's multiplier of S into ``lo`` and
    into ``hi``, ``sig_a * sig_w * c * 2^shift`` on whichever side its shift falls (0 on the
    other). ``shift = e_a + e_w - k - EXACT_LSB_EXP`` is 0..30."""
    codes = np.arange(256)
    sig, exp = scale_int_parts(codes)
    a_sf, w_sf = np.meshgrid(codes, codes, indexing="ij")
    n_int = _n_int(unit, a_sf, w_sf)
    weight = np.array([_exact_weight(unit, n) if n in _kinds(unit) else 0 for n in range(3)],
                      dtype=np.int64)
    mult = sig[a_sf] * sig[w_sf] * weight[n_int]
    shift = exp[a_sf] + exp[w_sf] - np.array(KIND_SHIFT, dtype=np.int64)[n_int] - EXACT_LSB_EXP
    assert shift.min() >= 0 and shift.max() < 2 * _SPLIT
    low = shift < _SPLIT
    lo = np.where(low, mult << np.minimum(shift, _SPLIT - 1), 0).reshape(-1)
    hi = np.where(low, 0, mult << np.maximum(shift - _SPLIT, 0)).reshape(-1)
    lo.setflags(write=False)
    hi.setflags(write=False)
    return lo, hi


_EXACT_SCALE = {unit: _build_exact_scale_tables(unit) for unit in ("nvfp4", "if4")}


def _exact_beat_terms(unit: str, a, w, a_sf, w_sf):
    """Per beat: ``(lo_b, hi_b)`` int64, the beat's term split between the two halves."""
    s = block_dots(unit, a, w, a_sf, w_sf).astype(np.int64)
    index = (np.asarray(a_sf, dtype=np.uint16) << 8) | np.asarray(w_sf, dtype=np.uint16)
    lo, hi = _EXACT_SCALE[unit]
    return s * lo[index], s * hi[index]


# -- the stream -------------------------------------------------------------------------------

def run_fused(stream: Stream, arch: str, *, strict: bool = False,
              reduction: str = "pipelined", acc_width: int | None = None,
              converter: str | None = None, timing: bool = True) -> FusedResults:
    """Results of every completed segment under a fused architecture.

    ``acc_width`` (fused-exact only) is the accumulator width in bits; None takes the
    default, :func:`exact_acc_width`. ``converter`` (fused-exact IF4 only) is
    ``"pipelined"`` (default: every result) or ``"serial"`` (the /49 takes
    :data:`SERIAL_CONVERTER_BUSY` cycles; a segment closing while it is busy loses its
    result, listed in ``overrun_beat``, as the reference's shared tree). ``reduction`` must
    stay ``"pipelined"``: a fused unit has no reduction tree to share. ``timing=False``
    gives the arithmetic of every closed segment, before the hardware's timing (a reset
    discarding a result in flight, the serial converter's refusals) decides which come out,
    as :func:`.mac.closed_segments` does for the reference (for cross-checks of the
    arithmetic alone: the GPU reference).
    """
    check_arch(arch)
    if arch == "reference":
        raise ValueError("run_fused computes the fused architectures; use golden.run for "
                         "'reference'")
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: expected one of "
                         f"{', '.join(REDUCTIONS)}")
    if reduction != "pipelined":
        raise ValueError(f"reduction {reduction!r} applies only to arch 'reference' (a fused "
                         f"unit has no reduction tree)")
    if arch != "fused-exact" and acc_width is not None:
        raise ValueError(f"acc_width applies only to arch 'fused-exact', not {arch!r}")
    if arch != "fused-exact" and converter is not None:
        raise ValueError(f"converter applies only to arch 'fused-exact', not {arch!r}")
    serial = check_converter(stream.unit, converter) == "serial"
    if strict:
        validate(stream)
    unit = stream.unit
    exact = arch == "fused-exact"
    max_segment = None
    if exact:
        max_segment = exact_max_segment(unit, stream.block_size,
                                        exact_acc_width(unit, stream.block_size, acc_width))

    enabled, first, starts, seg_starts, seg_stops, rows, c_starts = emitting_segments(stream)
    overflow_beat = _no_beats()
    if exact and len(starts):
        lengths = np.diff(np.append(starts, len(enabled)))
        over = enabled[starts[lengths > max_segment] + max_segment]
        # The beat too many raises overflow when it reaches the accumulator; a reset before
        # that edge clears the pipeline, and the flag never rises.
        overflow_beat = over[rows_to_next_reset(stream, over) > ACCUMULATOR_EDGE]

    fate_args = (fused_latency(arch, unit, converter),
                 SERIAL_CONVERTER_BUSY + 1 if serial else None, ACCUMULATOR_EDGE)
    if not len(seg_starts):
        return FusedResults(np.zeros(0, dtype=np.uint32), _no_beats(), _no_beats(),
                            overflow_beat=overflow_beat)
    beats = (np.asarray(stream.a)[rows], np.asarray(stream.w)[rows],
             np.asarray(stream.a_sf)[rows], np.asarray(stream.w_sf)[rows])
    lengths = seg_stops - seg_starts

    if exact:
        lo_b, hi_b = _exact_beat_terms(unit, *beats)
        # Emitting segments are contiguous in the compacted beats, so reduceat sums each.
        lo = np.add.reduceat(lo_b, c_starts)
        hi = np.add.reduceat(hi_b, c_starts)
        bits = exact_to_binary32(hi, lo, exact_divisor(unit))
        bits = np.where(lengths > max_segment, np.uint32(QNAN_BITS), bits).astype(np.uint32)
    else:
        m = fused_fp32_products(unit, *beats)
        # A segment opened without first=1 adds onto the +0 register (-0 becomes +0).
        implicit = ~first[seg_starts]
        if implicit.any():
            m[c_starts[implicit]] = m[c_starts[implicit]] + np.float32(0.0)
        bits = float32_bits(_accumulate(m, c_starts, c_starts + lengths)).copy()
    close = enabled[seg_stops]
    if not timing:
        return FusedResults(bits, enabled[seg_starts], close, overflow_beat=overflow_beat)
    kept, refused, discarded = in_flight_fate(stream, close, *fate_args)
    return FusedResults(bits[kept], enabled[seg_starts][kept], close[kept], close[refused],
                        close[discarded], overflow_beat=overflow_beat)


def run_arch(stream: Stream, *, arch: str = "reference", strict: bool = False,
             reduction: str = "pipelined", **options) -> Results:
    """Results of ``stream`` under any architecture: :func:`.mac.run` for ``"reference"``
    (the default), :func:`run_fused` (which takes the ``options``) for the fused ones.

    Lives here rather than as ``golden.run(arch=...)`` for now: golden/mac.py is one of the
    files the GPU cross-check record pins (gpu_ref/crosscheck.py RECORD_SOURCES), so changing
    it waits for the next GPU run.
    """
    unknown = set(options) - set(FUSED_OPTIONS)
    if unknown:
        raise ValueError(f"unknown option {', '.join(sorted(unknown))}: expected "
                         f"{', '.join(FUSED_OPTIONS)}")
    if check_arch(arch) != "reference":
        return run_fused(stream, arch, strict=strict, reduction=reduction, **options)
    if options:
        raise ValueError(f"{', '.join(sorted(options))} applies only to the fused "
                         f"architectures, not 'reference'")
    return run(stream, strict=strict, reduction=reduction)
