"""The fused architectures' integer front end: elements as integers, the block dot product S,
scales as integers, and S as a small float.

A beat's B lanes share one kind (FP.FP, FP.INT or INT.INT: a block's elements share a type),
so the fused MACs sum the lane products as one exact integer (docs/spec.md, section "Fused
architectures"):

* :class:`ElementQ` -- a 4-bit code to its integer ``q``: twice an E2M1 value (0.5 -> 1,
  6 -> 12), or the INT4 value (0x8 -> -8, as the hardware decodes it).
* :class:`BlockDot` -- ``S = sum_i q_a,i * q_w,i``: B small multipliers and an adder tree.
* :class:`ScaleIntDecode` -- an E4M3 scale as ``sig * 2^(ebias - 9)``, integers, no
  normalisation (so subnormal scales cost nothing here).
* :class:`KindShift` -- the binary point of S per kind, ``k`` = 2, 1 or 0 INT4 operands away.
* :class:`IntToFloat` -- ``S * 2^-k`` packed as a small exact float, for :class:`~.fp.FPMul`.

Every piece is combinational (latency 0, one beat per cycle); the MAC tops place registers.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from if4mac.golden.formats import E4M3_BIAS, E4M3_EXP_BITS, check_block_size, unit_spec
from if4mac.golden.fused import KIND_SHIFT, dot_bound, q_bound

from .fp import FloatFormat, LeadingZeroCounter, signed_width, unsigned_width
from .lane_mul import ELEMENT_WIDTH, UnitComponent
from .scale_mul import E4M3_MAN_WIDTH, E4M3_SIG_WIDTH, E4M3_WIDTH, e4m3_significand

__all__ = [
    "Q_WIDTH", "Q_MAG_WIDTH", "E2M1_SIG_WIDTH", "E2M1_SHIFT_WIDTH", "Q_PRODUCT_WIDTH",
    "SCALE_EXP_MAX", "SCALE_EXP_WIDTH", "SCALE_EXP_OFFSET", "S_MAX_KIND_SHIFT",
    "dot_width", "ElementQ", "BlockDot", "ScaleIntDecode", "KindShift",
    "IntToFloat", "int_float_format",
]

#: |q| <= 12 (E2M1 6.0 doubled; INT4 reaches only 8): a signed 5-bit integer.
Q_WIDTH = signed_width(-max(q_bound(False), q_bound(True)), max(q_bound(False), q_bound(True)))
#: |q| <= 12 (E2M1) or 8 (INT4 0x8): 4 unsigned bits, the sign kept apart.
Q_MAG_WIDTH = unsigned_width(max(q_bound(False), q_bound(True)))
#: An E2M1 |q| is ``sig << sh`` with sig in 0..3 (hidden and mantissa bit) and sh in 0..2
#: (the exponent less one): 2 bits each.
E2M1_SIG_WIDTH = 2
E2M1_SHIFT_WIDTH = 2
#: |q_a * q_w| <= 144 (12 * 12): signed 9 bits.
Q_PRODUCT_WIDTH = signed_width(-q_bound(False) ** 2, q_bound(False) ** 2)
#: E4M3's biased exponent with the subnormals' 0 read as 1: 1..15 minus 1, so 0..14.
SCALE_EXP_MAX = (1 << E4M3_EXP_BITS) - 2
SCALE_EXP_WIDTH = unsigned_width(SCALE_EXP_MAX)
#: dec(scale) = sig * 2^(SCALE_EXP - SCALE_EXP_OFFSET): bias 7 plus the 3 fraction bits, less
#: the 1 folded in above.
SCALE_EXP_OFFSET = E4M3_BIAS + E4M3_MAN_WIDTH - 1
#: The largest binary point of S: FP.FP (no INT4 operand), where q is twice the element.
S_MAX_KIND_SHIFT = KIND_SHIFT[0]


def dot_width(unit: str, block_size: int) -> int:
    """Signed width of S: its bound B * 144 (FP.FP is the largest kind), both signs."""
    kinds = range(len(KIND_SHIFT)) if unit_spec(unit).reads_int_flag else (0,)
    bound = max(dot_bound(block_size, n) for n in kinds)
    return signed_width(-bound, bound)


class ElementQ(UnitComponent):
    """One element code to its integer ``q``: 2 * E2M1 value, or the INT4 value.

    Combinational: latency 0. E2M1 ``s e1 e0 m``: ``|q| = m`` for e = 0, else
    ``(2 + m) << (e - 1)``; negated when ``s``. E2M1's -0 (0x8) is q = 0: an integer has
    no signed zero. INT4 is the code read as two's complement.

    Besides ``q``, its sign-magnitude form (what :class:`BlockDot` multiplies): ``neg`` (the
    code's sign bit, so E2M1's -0 has ``neg`` = 1 and ``mag`` = 0), ``mag`` = |q| and, for
    E2M1, ``mag = sig << sh``. ``q == (-1)^neg * mag`` for every code.

    Parameters
    ----------
    unit : "nvfp4" or "if4"  (``is_int`` exists only for IF4)

    Ports
    -----
    code : In(4)
    is_int : In(1), IF4 only
    q : Out(signed(Q_WIDTH))
    neg : Out(1)
    mag : Out(Q_MAG_WIDTH)
    sig : Out(E2M1_SIG_WIDTH), sh : Out(E2M1_SHIFT_WIDTH)   (E2M1's |q|; for an INT4
        code they describe the code read as E2M1)
    """

    def __init__(self, unit: str):
        spec = unit_spec(unit)
        ports = {"code": In(ELEMENT_WIDTH)}
        if spec.reads_int_flag:
            ports["is_int"] = In(1)
        ports["q"] = Out(signed(Q_WIDTH))
        ports["neg"] = Out(1)
        ports["mag"] = Out(Q_MAG_WIDTH)
        ports["sig"] = Out(E2M1_SIG_WIDTH)
        ports["sh"] = Out(E2M1_SHIFT_WIDTH)
        super().__init__(spec, ports)

    def elaborate(self, platform):
        m = Module()
        code = self.code
        man, exp, sign = code[0], code[1:3], code[3]
        # |q| is 4 bits (up to 12): the hidden bit and the mantissa bit, shifted by exp - 1.
        # Multiplexers rather than a Switch: the emitted Verilog then has no one-hot case
        # function (which Verilator flags as overlapping cases).
        m.d.comb += [self.sig.eq(Mux(exp == 0, man, Cat(man, 1))),
                     self.sh.eq(Mux(exp == 0, 0, exp - 1))]
        fp_mag = (self.sig << self.sh)[:Q_MAG_WIDTH]
        fp_q = Mux(sign, -fp_mag, fp_mag)
        m.d.comb += self.neg.eq(sign)
        if self._spec.reads_int_flag:
            # -code as a 5-bit two's complement, low 4 bits: |-8| = 8 still fits.
            int_mag = Mux(sign, -code, code)[:Q_MAG_WIDTH]
            m.d.comb += [self.q.eq(Mux(self.is_int, code.as_signed(), fp_q)),
                         self.mag.eq(Mux(self.is_int, int_mag, fp_mag))]
        else:
            m.d.comb += [self.q.eq(fp_q), self.mag.eq(fp_mag)]
        return m


class BlockDot(UnitComponent):
    """``S = sum_i q_a,i * q_w,i`` over the B lanes of a beat, exact.

    Combinational: latency 0, one beat per cycle. Each lane multiplies magnitudes and
    XORs the signs (ElementQ's sign-magnitude form): NVFP4 as ``(sig_a * sig_w) <<
    (sh_a + sh_w)``, a 2 x 2-bit multiplier and a shift; IF4 (whose INT4 elements have no
    such form) as a 4 x 4-bit unsigned multiplier. A negative lane enters the tree in ones'
    complement (``~|p| = -|p| - 1``) and the count of negative lanes is added once at the
    root, so no lane needs its own +1 (a negated zero, E2M1's -0, gives -1 + 1 = 0 too).
    The tree is pairwise, ceil(log2 B) levels, each level one bit wider; S is
    :func:`dot_width` bits (|S| <= 144 B). On Nangate 45 (flat, B = 16) this took 1.1k
    (IF4) to 2.2k (NVFP4) um^2 off the signed 5 x 5-bit multipliers it replaced
    (docs/fused.md, premium study).

    Parameters
    ----------
    unit : "nvfp4" or "if4"
    block_size : int

    Ports
    -----
    a, w : In(ArrayLayout(4, B))
    a_int, w_int : In(1), IF4 only
    s : Out(signed(dot_width(unit, B)))
    """

    def __init__(self, unit: str, block_size: int):
        spec = unit_spec(unit)
        self._block_size = check_block_size(block_size)
        ports = {"a": In(data.ArrayLayout(ELEMENT_WIDTH, block_size)),
                 "w": In(data.ArrayLayout(ELEMENT_WIDTH, block_size))}
        if spec.reads_int_flag:
            ports["a_int"] = In(1)
            ports["w_int"] = In(1)
        ports["s"] = Out(signed(dot_width(spec, block_size)))
        super().__init__(spec, ports)

    def elaborate(self, platform):
        m = Module()
        level, negs = [], []
        for i in range(self._block_size):
            ops = []
            for name, codes, flag in (("a", self.a, "a_int"), ("w", self.w, "w_int")):
                dec = ElementQ(self._unit)
                m.submodules[f"q_{name}_{i}"] = dec
                m.d.comb += dec.code.eq(codes[i])
                if self._spec.reads_int_flag:
                    m.d.comb += dec.is_int.eq(getattr(self, flag))
                ops.append(dec)
            qa, qw = ops
            if self._spec.reads_int_flag:
                mag = qa.mag * qw.mag
            else:
                mag = (qa.sig * qw.sig) << (qa.sh + qw.sh)
            p_mag = Signal(Q_PRODUCT_WIDTH - 1, name=f"qq_mag_{i}")
            neg = Signal(name=f"qq_neg_{i}")
            product = Signal(signed(Q_PRODUCT_WIDTH), name=f"qq_{i}")
            # Ones' complement of a negative product: its +1 is in the root's neg_count.
            positive = Cat(p_mag, Const(0, 1)).as_signed()
            m.d.comb += [p_mag.eq(mag), neg.eq(qa.neg ^ qw.neg),
                         product.eq(Mux(neg, ~positive, positive))]
            level.append(product)
            negs.append(neg)
        k = 0
        while len(level) > 1:
            k += 1
            nxt = []
            for j in range(len(level) // 2):
                a, b = level[2 * j], level[2 * j + 1]
                total = Signal(signed(max(len(a), len(b)) + 1), name=f"sum_l{k}_{j}")
                m.d.comb += total.eq(a + b)
                nxt.append(total)
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        neg_count = Signal(range(self._block_size + 1), name="neg_count")
        m.d.comb += neg_count.eq(sum(negs))
        # The tree's natural width can exceed the bound's; the bound is what S can reach.
        m.d.comb += self.s.eq(level[0] + neg_count)
        return m


class ScaleIntDecode(wiring.Component):
    """An E4M3 scale as integers: ``dec = sig * 2^(exp - SCALE_EXP_OFFSET)``.

    Combinational: latency 0. ``sig`` is the significand with its hidden bit explicit
    (0..15: the subnormals keep their leading zeros), ``exp`` the biased exponent with 0 read
    as 1, minus 1 (0..14). The 448 rule (0x7F reads as 0x7E) applies here. A zero scale is
    ``sig == 0``.

    Ports
    -----
    code : In(7)
    sig : Out(4)
    exp : Out(SCALE_EXP_WIDTH)
    """

    def __init__(self):
        super().__init__({"code": In(E4M3_WIDTH), "sig": Out(E4M3_SIG_WIDTH),
                          "exp": Out(SCALE_EXP_WIDTH)})

    @property
    def latency(self) -> int:
        return 0

    def elaborate(self, platform):
        m = Module()
        sig, exp = e4m3_significand(self.code)
        m.d.comb += [
            self.sig.eq(sig),
            self.exp.eq(Mux(exp == 0, 0, exp - 1)),
        ]
        return m


class KindShift(UnitComponent):
    """The binary point of S: ``k = 2 - (number of INT4 operands)`` (NVFP4: always 2).

    Combinational: latency 0.

    Ports
    -----
    a_int, w_int : In(1), IF4 only
    k : Out(2)
    """

    def __init__(self, unit: str):
        spec = unit_spec(unit)
        ports = {"a_int": In(1), "w_int": In(1)} if spec.reads_int_flag else {}
        ports["k"] = Out(unsigned_width(S_MAX_KIND_SHIFT))
        super().__init__(spec, ports)

    def elaborate(self, platform):
        m = Module()
        if self._spec.reads_int_flag:
            m.d.comb += self.k.eq(S_MAX_KIND_SHIFT - self.a_int - self.w_int)
        else:
            m.d.comb += self.k.eq(S_MAX_KIND_SHIFT)
        return m


def int_float_format(unit: str, block_size: int) -> FloatFormat:
    """The packed format that holds every ``S * 2^-k`` exactly and normal.

    Fraction bits: |S|'s width less the hidden bit. Exponent: the bias must reach the top
    (|S| < 2^(bits)) and the bottom (2^-2, FP.FP's |S| = 1), and at least 3 bits so the
    format is IEEE-like.
    """
    mag_width = dot_width(unit, block_size) - 1
    exp_bits = 3
    while (1 << (exp_bits - 1)) - 1 < max(mag_width - 1, S_MAX_KIND_SHIFT + 1):
        exp_bits += 1
    return FloatFormat(exp_bits, max(1, mag_width - 1))


class IntToFloat(UnitComponent):
    """``S * 2^-k`` as an exact float in :func:`int_float_format` (IEEE packing, +0 for 0).

    Combinational: latency 0. Sign and magnitude, a leading-zero count, a normalising shift.

    Ports
    -----
    s : In(signed(dot_width))
    k : In(2)
    result : Out(int_float_format(unit, B).width)
    """

    def __init__(self, unit: str, block_size: int):
        self._fmt = int_float_format(unit, block_size)
        self._s_width = dot_width(unit, block_size)
        super().__init__(unit_spec(unit), {"s": In(signed(self._s_width)),
                                           "k": In(unsigned_width(S_MAX_KIND_SHIFT)),
                                           "result": Out(self._fmt.width)})

    @property
    def fmt(self) -> FloatFormat:
        return self._fmt

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        mag_width = self._s_width - 1
        neg = self.s[-1]
        mag = Signal(mag_width)
        # |S| <= 144 B < 2^(width - 1): the negation never overflows.
        m.d.comb += mag.eq(Mux(neg, -self.s, self.s))
        m.submodules.lzc = lzc = LeadingZeroCounter(mag_width)
        m.d.comb += lzc.value.eq(mag)
        norm = Signal(mag_width)
        m.d.comb += norm.eq(mag << lzc.count)
        packed = data.View(fmt.layout, self.result)
        with m.If(~lzc.zero):
            frac = norm[:mag_width - 1]
            m.d.comb += [
                packed.sign.eq(neg),
                # The leading one's weight is 2^(mag_width - 1 - lz - k).
                packed.exp.eq(fmt.bias + mag_width - 1 - lzc.count - self.k),
                packed.man.eq(Cat(Const(0, fmt.man_bits - len(frac)), frac)
                              if len(frac) < fmt.man_bits else frac),
            ]
        return m
