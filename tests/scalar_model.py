"""A tiny, deliberately naive scalar model of the MAC arithmetic, independent of golden/.

It decodes codes from the bit-level rules (not golden's tables), computes every value as an
exact ``fractions.Fraction`` and rounds to binary32 with its own round-half-even, tracking the
sign of zero by the IEEE rules. Slow and obvious on purpose: it is the check on the fast model.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

# A value is (Fraction, negative_zero): negative_zero is only meaningful when the Fraction is 0.
Value = tuple


def e2m1(code: int) -> Value:
    sign = -1 if code & 0x8 else 1
    exp, man = (code >> 1) & 0x3, code & 0x1
    mag = Fraction(man, 2) if exp == 0 else (1 + Fraction(man, 2)) * 2 ** (exp - 1)
    return (sign * mag, sign < 0 and mag == 0)


def int4(code: int) -> Value:
    return (Fraction(code - 16 if code & 0x8 else code), False)


def e4m3(byte: int) -> Fraction:
    exp, man = (byte >> 3) & 0xF, byte & 0x7
    if exp == 15 and man == 7:
        man = 6
    if exp == 0:
        return Fraction(man, 8) * Fraction(1, 64)
    return (1 + Fraction(man, 8)) * Fraction(2) ** (exp - 7)


def round_binary32(x: Fraction) -> Fraction:
    """Round-half-even onto binary32 (normal range only: the datapath never leaves it)."""
    if x == 0:
        return x
    mag = abs(x)
    exp = math.floor(math.log2(mag))
    # log2 of a Fraction can be off by one near powers of two; fix the exponent exactly.
    while Fraction(2) ** exp > mag:
        exp -= 1
    while Fraction(2) ** (exp + 1) <= mag:
        exp += 1
    assert -126 <= exp <= 127, f"{float(x)} leaves binary32's normal range"
    quantum = Fraction(2) ** (exp - 23)
    q, r = divmod(mag, quantum)
    if r > quantum / 2 or (r == quantum / 2 and q % 2 == 1):
        q += 1
    return (q * quantum) * (1 if x > 0 else -1)


def mul(a: Value, b: Value, rounded: bool = True) -> Value:
    exact = a[0] * b[0]
    if exact == 0:
        neg_a = a[1] if a[0] == 0 else a[0] < 0
        neg_b = b[1] if b[0] == 0 else b[0] < 0
        return (Fraction(0), neg_a != neg_b)
    return (round_binary32(exact) if rounded else exact, False)


def add(a: Value, b: Value) -> Value:
    exact = a[0] + b[0]
    if exact == 0:
        both_neg_zero = a[0] == 0 and b[0] == 0 and a[1] and b[1]
        return (Fraction(0), both_neg_zero)      # x + (-x) is +0 under round-to-nearest
    return (round_binary32(exact), False)


def to_bits(v: Value) -> int:
    if v[0] == 0:
        return 0x80000000 if v[1] else 0
    return struct.unpack("<I", struct.pack("<f", float(v[0])))[0]


INT_EXPANSION = round_binary32(Fraction(6, 7))
INT_EXPANSION_SQUARED = round_binary32(Fraction(36, 49))


def scale_product(unit: str, a_sf: int, w_sf: int) -> Value:
    sf = e4m3(a_sf & 0x7F) * e4m3(w_sf & 0x7F)
    if unit == "if4" and sf != 0:
        n_int = (a_sf >> 7) + (w_sf >> 7)
        if n_int == 1:
            sf = round_binary32(sf * INT_EXPANSION)
        elif n_int == 2:
            sf = round_binary32(sf * INT_EXPANSION_SQUARED)
    return (sf, False)


def element(unit: str, code: int, scale_byte: int) -> Value:
    return int4(code) if unit == "if4" and scale_byte & 0x80 else e2m1(code)


def lane_product(unit, a, w, a_sf, w_sf) -> Value:
    return mul(element(unit, a, a_sf), element(unit, w, w_sf), rounded=False)


def beat_products(unit, a, w, a_sf, w_sf) -> list:
    sf = scale_product(unit, a_sf, w_sf)
    return [mul(lane_product(unit, ai, wi, a_sf, w_sf), sf) for ai, wi in zip(a, w)]


def tree(values: list) -> Value:
    while len(values) > 1:
        nxt = [add(values[i], values[i + 1]) for i in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = nxt
    return values[0]


def latency(block_size: int) -> int:
    """Edges from a closing beat to its result: 2 pipeline registers before the tree, which
    loads its first level with the lane stage, then one per level (at least one)."""
    levels = math.ceil(math.log2(block_size)) if block_size > 1 else 0
    return 2 + max(1, levels)


def run(unit, beats) -> list[int]:
    """Results (bit patterns) of a list of beat dicts as in the stimulus JSON.

    Rows are clock cycles; a reset before row r also discards the result of a segment closed
    at row c when r - c <= latency (it is still in the pipeline, which reset clears).
    """
    lanes = None
    results = []          # (close row, bits)
    block = next((len(beat["a"]) for beat in beats if "a" in beat), 1)
    for row, beat in enumerate(beats):
        if beat.get("reset"):
            lanes = None
            results = [(c, bits) for c, bits in results if row - c > latency(block)]
        if not beat.get("en", 1):
            continue
        m = beat_products(unit, beat["a"], beat["w"], beat["a_sf"], beat["w_sf"])
        if beat.get("first"):
            if lanes is not None and not beat.get("reset"):
                results.append((row, to_bits(tree(lanes))))
            lanes = m
        elif lanes is None:                       # opened by a non-first beat: from +0 registers
            lanes = [add((Fraction(0), False), v) for v in m]
        else:
            lanes = [add(acc, v) for acc, v in zip(lanes, m)]
    return [bits for _, bits in results]


# -- the fused architectures (docs/spec.md, section "Fused architectures") --------------------

def element_value(unit: str, code: int, scale_byte: int) -> Fraction:
    return element(unit, code, scale_byte)[0]


def block_dot(unit, a, w, a_sf, w_sf) -> Fraction:
    """The beat's exact element dot product sum a_i * w_i (S * 2^-k in the spec's terms)."""
    return sum((element_value(unit, ai, a_sf) * element_value(unit, wi, w_sf)
                for ai, wi in zip(a, w)), Fraction(0))


def exact_factor(unit: str, a_sf: int, w_sf: int) -> Fraction:
    """IF4's INT4 factor by its definition: (6/7) per INT4 operand, no rounding."""
    if unit != "if4":
        return Fraction(1)
    return Fraction(6, 7) ** ((a_sf >> 7) + (w_sf >> 7))


def fused_fp32_beat(unit, a, w, a_sf, w_sf) -> Value:
    dot = block_dot(unit, a, w, a_sf, w_sf)
    sf = scale_product(unit, a_sf, w_sf)
    # dot is exact in binary32 (an integer zero is +0); IEEE signs a zero product by xor.
    return mul((dot, False), sf)


def fused_exact_beat(unit, a, w, a_sf, w_sf) -> Fraction:
    return (block_dot(unit, a, w, a_sf, w_sf) * e4m3(a_sf & 0x7F) * e4m3(w_sf & 0x7F)
            * exact_factor(unit, a_sf, w_sf))


def exact_lsb(unit: str) -> Fraction:
    """The accumulator's unit: 2^-20 (smallest element product 1/4 times smallest scale
    product 2^-18), and for IF4 a 49th of it, so 6/7 and 36/49 are whole numbers of units."""
    return Fraction(1, 1 << 20) / (49 if unit == "if4" else 1)


def exact_max_segment(unit: str, block_size: int, acc_width: int) -> int:
    """Longest segment a two's complement accumulator of ``acc_width`` bits always holds."""
    kinds = [(0, 0)] + ([(0x80, 0), (0x80, 0x80)] if unit == "if4" else [])
    worst = max(block_size * max(abs(element_value(unit, c, af)) for c in range(16))
                * max(abs(element_value(unit, c, wf)) for c in range(16))
                * e4m3(0x7E) ** 2 * exact_factor(unit, af, wf) for af, wf in kinds)
    units = worst / exact_lsb(unit)
    assert units.denominator == 1
    return ((1 << (acc_width - 1)) - 1) // int(units)


QNAN = 0x7FC00000


def fused_latency(arch: str, unit: str) -> int:
    """Edges from a closing beat to its result in the fused tops (pipelined conversion): 3
    registers up to the segment register (fused-fp32's result), then fused-exact's rounding
    and, for IF4, its two /49 stages."""
    if arch == "fused-fp32":
        return 3
    return 6 if unit == "if4" else 4


def run_fused(arch: str, unit: str, beats, *, acc_width: int | None = None) -> list[int]:
    """Results (bit patterns) of a fused architecture over beat dicts, as :func:`run`
    (a reset at most :func:`fused_latency` rows after a close discards its result)."""
    block = len(next(b for b in beats if "a" in b)["a"]) if beats else 1
    limit = exact_max_segment(unit, block, acc_width) if acc_width is not None else None
    results = []          # (close row, bits)
    state = None          # fp32: the register Value; exact: [Fraction sum, beat count]
    for row, beat in enumerate(beats):
        if beat.get("reset"):
            state = None
            results = [(c, bits) for c, bits in results if row - c > fused_latency(arch, unit)]
        if not beat.get("en", 1):
            continue
        args = (unit, beat["a"], beat["w"], beat["a_sf"], beat["w_sf"])
        if arch == "fused-fp32":
            m = fused_fp32_beat(*args)
            if beat.get("first"):
                if state is not None and not beat.get("reset"):
                    results.append((row, to_bits(state)))
                state = m
            else:
                state = add((Fraction(0), False) if state is None else state, m)
        elif arch == "fused-exact":
            term = fused_exact_beat(*args)
            if beat.get("first"):
                if state is not None and not beat.get("reset"):
                    total, count = state
                    if limit is not None and count > limit:
                        results.append((row, QNAN))
                    else:
                        results.append((row, to_bits((round_binary32(total), False))))
                state = [term, 1]
            elif state is None:
                state = [term, 1]
            else:
                state = [state[0] + term, state[1] + 1]
        else:
            raise ValueError(f"unknown arch {arch!r}")
    return [bits for _, bits in results]
