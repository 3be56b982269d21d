"""Shared harness for the floating-point unit tests: a fast pysim driver and an exact model.

The exact model (:class:`ExactIEEE`) is written from IEEE 754's definitions with Python
fractions, independently of both the RTL and numpy / ml_dtypes: the tests use it to check
that the numpy and ml_dtypes references round the way the tests assume, and to classify
edge vectors (ties, carries, subnormal results) so a coverage claim cannot silently go empty.
"""

from __future__ import annotations

from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator


def simulate_binary(dut, a_bits, b_bits) -> np.ndarray:
    """``dut.result`` for each pair ``(a_bits[i], b_bits[i])``, as uint64.

    Both operands sit in one stimulus signal so each vector costs a single settle of the
    design (two ``ctx.set`` calls would settle twice); measured, one copy of the unit per
    simulation beats several in parallel in pysim.
    """
    a_bits = np.asarray(a_bits, dtype=np.uint64)
    b_bits = np.asarray(b_bits, dtype=np.uint64)
    if a_bits.shape != b_bits.shape or a_bits.ndim != 1:
        raise ValueError(f"operand arrays must be 1-D and alike, got {a_bits.shape} and "
                         f"{b_bits.shape}")
    width_a = len(dut.a)
    m = Module()
    m.submodules.dut = dut
    stimulus = Signal(width_a + len(dut.b))
    m.d.comb += [dut.a.eq(stimulus[:width_a]), dut.b.eq(stimulus[width_a:])]
    packed = [int(x) | (int(y) << width_a) for x, y in zip(a_bits, b_bits)]
    results = []

    async def testbench(ctx):
        for word in packed:
            ctx.set(stimulus, word)
            results.append(ctx.get(dut.result))

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()
    return np.array(results, dtype=np.uint64)


class ExactIEEE:
    """IEEE 754 binary format ``(exp_bits, man_bits)`` evaluated with exact fractions, RNE."""

    def __init__(self, exp_bits: int, man_bits: int):
        self.e, self.m = exp_bits, man_bits
        self.bias = (1 << (exp_bits - 1)) - 1
        self.emin = 1 - self.bias
        self.sign_bit = 1 << (exp_bits + man_bits)
        self.inf = ((1 << exp_bits) - 1) << man_bits

    def decode(self, bits: int):
        """``(sign, value)`` with value a Fraction, ``'inf'`` or ``'nan'``."""
        bits = int(bits)
        sign = (bits >> (self.e + self.m)) & 1
        field = (bits >> self.m) & ((1 << self.e) - 1)
        man = bits & ((1 << self.m) - 1)
        if field == (1 << self.e) - 1:
            return sign, ("nan" if man else "inf")
        if field == 0:
            return sign, Fraction(man, 1 << self.m) * Fraction(2) ** self.emin
        return sign, Fraction((1 << self.m) + man, 1 << self.m) * Fraction(2) ** (field - self.bias)

    def round(self, value: Fraction, zero_sign: int = 0) -> int:
        """Bits of ``value`` rounded to nearest even; ``zero_sign`` signs an exact zero."""
        if value == 0:
            return zero_sign * self.sign_bit
        sign = int(value < 0)
        mag = abs(value)
        hidden = max(self.binade(mag), self.emin)   # the hidden bit's weight (emin: subnormal)
        ulps = mag / Fraction(2) ** (hidden - self.m)
        whole = ulps.numerator // ulps.denominator
        rest = ulps - whole
        if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and whole & 1):
            whole += 1
        # field * 2**m + fraction is (hidden - emin) * 2**m + whole: this absorbs a rounding
        # carry and the subnormal-to-normal step; reaching the inf pattern is overflow.
        magnitude = min(((hidden - self.emin) << self.m) + whole, self.inf)
        return sign * self.sign_bit | magnitude

    def rest(self, value: Fraction) -> Fraction:
        """The part of ``value`` below its last kept bit, in ulps: 1/2 marks a tie."""
        mag = abs(value)
        if mag == 0:
            return Fraction(0)
        ulps = mag / Fraction(2) ** (max(self.binade(mag), self.emin) - self.m)
        return ulps - ulps.numerator // ulps.denominator

    @staticmethod
    def binade(value: Fraction) -> int:
        """``floor(log2(|value|))`` for a nonzero value."""
        mag = abs(value)
        # The difference of bit lengths is floor(log2) or one more.
        lead = mag.numerator.bit_length() - mag.denominator.bit_length()
        return lead - 1 if mag < Fraction(2) ** lead else lead

    def carries(self, value: Fraction) -> bool:
        """Whether rounding ``value`` lifts it into the next binade (a carry out of rounding)."""
        if value == 0:
            return False
        _, rounded = self.decode(self.round(value))
        return rounded == "inf" or rounded >= Fraction(2) ** (self.binade(value) + 1)

    def exact(self, bits: int) -> Fraction:
        sign, value = self.decode(bits)
        if not isinstance(value, Fraction):
            raise ValueError(f"{bits:#x} is not finite")
        return -value if sign else value

    def add(self, a_bits: int, b_bits: int) -> int:
        (sa, va), (sb, vb) = self.decode(a_bits), self.decode(b_bits)
        if va == "nan" or vb == "nan" or (va == vb == "inf" and sa != sb):
            return self.inf | (1 << (self.m - 1))
        if va == "inf" or vb == "inf":
            return (sa if va == "inf" else sb) * self.sign_bit | self.inf
        total = (-va if sa else va) + (-vb if sb else vb)
        # RNE: an exact zero sum is -0 only when both addends are -0.
        return self.round(total, zero_sign=sa & sb)

    def mul(self, a_bits: int, b_bits: int, a_fmt: "ExactIEEE" | None = None,
            b_fmt: "ExactIEEE" | None = None) -> int:
        (sa, va), (sb, vb) = (a_fmt or self).decode(a_bits), (b_fmt or self).decode(b_bits)
        sign = sa ^ sb
        if va == "nan" or vb == "nan" or (va == "inf" and vb == 0) or (va == 0 and vb == "inf"):
            return self.inf | (1 << (self.m - 1))
        if va == "inf" or vb == "inf":
            return sign * self.sign_bit | self.inf
        product = va * vb
        return self.round(-product if sign else product, zero_sign=sign)

    def is_nan(self, bits) -> np.ndarray:
        bits = np.asarray(bits, dtype=np.uint64)
        field = (bits >> np.uint64(self.m)) & np.uint64((1 << self.e) - 1)
        man = bits & np.uint64((1 << self.m) - 1)
        return (field == (1 << self.e) - 1) & (man != 0)


def special_bits(exp_bits: int, man_bits: int) -> np.ndarray:
    """Boundary operands of a format, both signs: zeros, subnormal and normal extremes,
    values next to 1 and 2, infinities and NaNs (quiet and signalling)."""
    all_ones = (1 << exp_bits) - 1
    bias = (1 << (exp_bits - 1)) - 1
    man_max = (1 << man_bits) - 1

    def pack(field, man):
        return (field << man_bits) | man

    positive = [
        0, 1, 2, man_max, man_max - 1, 1 << (man_bits - 1),    # zero and subnormals
        pack(1, 0), pack(1, 1), pack(1, man_max), pack(2, 0),   # smallest normals
        pack(bias, 0), pack(bias, 1), pack(bias - 1, man_max),  # 1, 1 + ulp, 1 - ulp/2
        pack(bias, man_max), pack(bias + 1, 0), pack(bias, 1 << (man_bits - 1)),  # 2 - ulp, 2, 1.5
        pack(all_ones - 1, man_max), pack(all_ones - 1, man_max - 1), pack(all_ones - 1, 0),
        pack(all_ones, 0),                                      # infinity
        pack(all_ones, 1 << (man_bits - 1)), pack(all_ones, 1),  # quiet and signalling NaN
    ]
    positive = np.unique(np.array(positive, dtype=np.uint64))
    return np.concatenate([positive, positive | np.uint64(1 << (exp_bits + man_bits))])


def random_bits(rng, n: int, exp_bits: int, man_bits: int, *, fields=None,
                zero_fraction: float = 0.0) -> np.ndarray:
    """``n`` random operands: uniform fraction and sign, exponent field drawn from
    ``fields`` (an inclusive ``(lo, hi)``, default every field), a share of them ±0."""
    lo, hi = fields if fields is not None else (0, (1 << exp_bits) - 1)
    field = rng.integers(lo, hi + 1, n).astype(np.uint64)
    man = rng.integers(0, 1 << man_bits, n, dtype=np.uint64)
    sign = rng.integers(0, 2, n).astype(np.uint64)
    bits = (sign << np.uint64(exp_bits + man_bits)) | (field << np.uint64(man_bits)) | man
    zero = rng.random(n) < zero_fraction
    bits[zero] = sign[zero] << np.uint64(exp_bits + man_bits)
    return bits


def assert_same_bits(fmt: ExactIEEE, got, want, a=None, b=None, what="result"):
    """Bit-exact equality, NaN compared as a class, except that every NaN the RTL produces
    must be the canonical quiet NaN; the message lists the first mismatches."""
    got = np.asarray(got, dtype=np.uint64)
    want = np.asarray(want, dtype=np.uint64)
    canonical = np.uint64(fmt.inf | (1 << (fmt.m - 1)))
    ok = (got == want) | (fmt.is_nan(want) & (got == canonical))
    if not ok.all():
        bad = np.flatnonzero(~ok)
        width = (fmt.e + fmt.m + 4) // 4
        lines = [f"{len(bad)} of {len(ok)} {what}s differ; first ones:"]
        for i in bad[:8]:
            ops = "" if a is None else f"a={int(a[i]):#0{width + 2}x} b={int(b[i]):#0{width + 2}x} "
            lines.append(f"  {ops}got {int(got[i]):#0{width + 2}x} "
                         f"want {int(want[i]):#0{width + 2}x}")
        raise AssertionError("\n".join(lines))


@pytest.fixture(scope="session")
def fp():
    """The harness: ``simulate``, ``ExactIEEE``, ``assert_same_bits``, ``special_bits``,
    ``random_bits``."""
    return SimpleNamespace(simulate=simulate_binary, ExactIEEE=ExactIEEE,
                           assert_same_bits=assert_same_bits, special_bits=special_bits,
                           random_bits=random_bits)


def module_ports(text: str, module: str) -> dict[str, tuple[str, int]]:
    """``{port: (direction, width)}`` of ``module`` in Verilog ``text``, read from its header
    and its input/output declarations (not a substring search: "sf" must not match "a_sf")."""
    import re

    header = re.search(rf"^module\s+{re.escape(module)}\s*\(([^)]*)\)\s*;", text, re.MULTILINE)
    if header is None:
        raise AssertionError(f"no module {module} in the Verilog")
    names = [p.strip() for p in header.group(1).split(",") if p.strip()]
    body = text[header.end():text.index("endmodule", header.end())]
    ports = {}
    for direction, msb, lsb, name in re.findall(
            r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+):(\d+)\]\s*)?\\?(\S+?)\s*;",
            body, re.MULTILINE):
        width = int(msb) - int(lsb) + 1 if msb else 1
        ports[name] = (direction, width)
    if sorted(ports) != sorted(names):
        raise AssertionError(f"module {module}: header lists {names}, declarations {ports}")
    return ports
