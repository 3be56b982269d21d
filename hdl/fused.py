"""The fused block dot-product MAC tops: ``fused-fp32`` and ``fused-exact`` (docs/spec.md).

Both compute a beat's element dot product as one exact integer S (:mod:`.block_dot`) and
round late, instead of the reference's 16 binary32 multiply-accumulate lanes and tree:

``fused-fp32`` (:class:`FusedFp32Mac`, what tensor cores do)::

    edge 0   input registers capture an enabled beat (en=1)
    edge 1   S (BlockDot), k (KindShift), sf (ScaleMul, the reference's scale product)
    edge 2   m = rne32((S * 2^-k) * sf)   (IntToFloat, FPMul reduced mode)
    edge 3   acc = first ? m : rne32(acc + m)   (FPAdd); a closing beat moves the old acc
             to the output register with ``done``

``fused-exact`` (:class:`FusedExactMac`, Kulisch style)::

    edge 0   input registers
    edge 1   S, the scale integers' product times the kind's weight (49, 42, 36 for IF4),
             and the term's shift
    edge 2   term = (S * weight) << shift   (ExactTerm)
    edge 3   A = first ? term : A + term   (WideAccumulator, acc_width bits, beat counter,
             sticky overflow); a closing beat starts ExactToBinary32 on the old A
    edge 4   normalised window of |A|
    edge 5,6 IF4 only: window / 49 with a sticky remainder, in two halves (DIV_STAGES)
    edge +1  one RNE to binary32 into the output register with ``done``

so ``latency`` is 3 (fused-fp32), 4 (fused-exact NVFP4) or 6 (fused-exact IF4) edges from
a closing beat's sampling edge to ``done``, for any block size. One beat per cycle; a
segment may close on every cycle and every result comes out. The cheaper IF4 option
``converter="serial"`` (:class:`SerialExactToBinary32`) divides by 49 four bits per cycle:
latency 12, and closing beats must be 9 or more cycles apart (else that result is lost and
the sticky ``overrun`` rises, as with the reference's shared tree).

Ports are the reference tops' (:class:`~.mac.MacUnit`, pipelined) plus, for fused-exact, a
sticky ``overflow``. Only the accumulator's beat counter limits a segment: a segment longer
than :attr:`FusedExactMac.max_segment` beats gives the quiet NaN as its result and raises
``overflow`` at the edge its first beat too many reaches the accumulator (edge 3 of that beat).
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, Const, DomainRenamer, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from if4mac.golden import check_unit
from if4mac.golden.config import MacConfig
from if4mac.golden.fused import (
    EXACT_LSB_EXP, KIND_WEIGHT, QNAN_BITS, SERIAL_CONVERTER_BUSY,
    exact_beat_bound, exact_divisor, exact_max_segment,
)
from if4mac.golden.mac import DEFAULT_BLOCK_SIZE

from .block_dot import (
    S_MAX_KIND_SHIFT, SCALE_EXP_MAX, SCALE_EXP_OFFSET, BlockDot, IntToFloat, KindShift, ScaleIntDecode,
    dot_width,
)
from .fp import BINARY32, FPAdd, FPMul, FPRound, LeadingZeroCounter, signed_width, unsigned_width
from .fp._signals import wire
from .interface import MacSignature
from .lane_mul import ELEMENT_WIDTH
from .mac import WORD_WIDTH
from .scale_mul import E4M3_SIG_WIDTH, E4M3_WIDTH, INT_FLAG_BIT, SCALE_WIDTH, ScaleMul

__all__ = [
    "ACC_STAGE", "FUSED_ARCHS", "SHIFT_MAX", "SHIFT_WIDTH", "DIV_WINDOW", "DIV_STAGES",
    "ScaleWeight", "ExactTerm", "WideAccumulator", "ConstDivider", "ExactToBinary32",
    "SerialExactToBinary32",
    "FusedMac", "FusedFp32Mac", "FusedExactMac", "fused_mac", "fused_verilog",
]

#: The edge (from the one that samples a beat, edge 0) at which the beat reaches the
#: accumulator: input, S and product/term registers come first.
ACC_STAGE = 3
#: The architectures this module builds (golden.fused.ARCHS less "reference", hdl/mac.py's).
FUSED_ARCHS = ("fused-fp32", "fused-exact")
#: A term's shift over the accumulator's LSB (2^-20): both scale exponents at their largest
#: (14 each, biased) plus the S_MAX_KIND_SHIFT that k = 0 leaves over: 14 + 14 + 2.
SHIFT_MAX = 2 * SCALE_EXP_MAX + S_MAX_KIND_SHIFT
SHIFT_WIDTH = unsigned_width(SHIFT_MAX)
#: shift = (ea - 9) + (ew - 9) - k - EXACT_LSB_EXP with ea, ew the biased scale exponents:
#: the constants fold to + 2, which keeps the smallest shift (FP.FP, k = 2) at 0.
_SHIFT_BIAS = -2 * SCALE_EXP_OFFSET - EXACT_LSB_EXP
assert _SHIFT_BIAS == S_MAX_KIND_SHIFT, "the accumulator's LSB no longer matches the scales"
#: Bits of |A| kept for the division by 49: a quotient of at least 26 bits (24 kept, round
#: and one more above the sticky) needs 26 + 6 = 32 (49 < 2^6).
DIV_WINDOW = 32
#: Without a division (NVFP4) the window only needs the 24 kept bits, round and one more.
ROUND_WINDOW = BINARY32.precision + 2
#: Quotient bits the serial converter produces per cycle: DIV_WINDOW in golden's busy cycles.
SERIAL_DIGITS = DIV_WINDOW // SERIAL_CONVERTER_BUSY
assert SERIAL_DIGITS * SERIAL_CONVERTER_BUSY == DIV_WINDOW


def _weights(unit: str) -> tuple[int, ...]:
    return KIND_WEIGHT if unit == "if4" else (1,)


class ScaleWeight(wiring.Component):
    """A beat's scale part in fused-exact: ``weight = sig_a * sig_w * c`` and the shift.

    The beat's term is ``S * weight * 2^(shift + EXACT_LSB_EXP)`` (in the accumulator's
    unit, times 49 for IF4), with ``c`` = 49, 42, 36 for 0, 1, 2 INT4 operands (IF4) or 1
    (NVFP4), and ``shift = exp_a + exp_w + 2 - k`` in 0..30.

    Combinational: latency 0.

    Ports
    -----
    a_sf, w_sf : In(8)
    weight : Out(unsigned_width(225 * max c))
    shift : Out(SHIFT_WIDTH)
    """

    def __init__(self, unit: str):
        self._unit = check_unit(unit)
        sig_max = (1 << E4M3_SIG_WIDTH) - 1
        self._weight_width = unsigned_width(sig_max * sig_max * max(_weights(unit)))
        super().__init__({"a_sf": In(SCALE_WIDTH), "w_sf": In(SCALE_WIDTH),
                          "weight": Out(self._weight_width), "shift": Out(SHIFT_WIDTH)})

    @property
    def latency(self) -> int:
        return 0

    def elaborate(self, platform):
        m = Module()
        m.submodules.dec_a = dec_a = ScaleIntDecode()
        m.submodules.dec_w = dec_w = ScaleIntDecode()
        m.submodules.kind = kind = KindShift(self._unit)
        m.d.comb += [dec_a.code.eq(self.a_sf[:E4M3_WIDTH]), dec_w.code.eq(self.w_sf[:E4M3_WIDTH])]
        sig_product = wire(m, "sig_product", dec_a.sig * dec_w.sig)
        if self._unit == "if4":
            a_int, w_int = self.a_sf[INT_FLAG_BIT], self.w_sf[INT_FLAG_BIT]
            m.d.comb += [kind.a_int.eq(a_int), kind.w_int.eq(w_int)]
            c = Mux(a_int & w_int, KIND_WEIGHT[2], Mux(a_int | w_int, KIND_WEIGHT[1],
                                                        KIND_WEIGHT[0]))
            m.d.comb += self.weight.eq(sig_product * c)
        else:
            m.d.comb += self.weight.eq(sig_product)
        m.d.comb += self.shift.eq(dec_a.exp + dec_w.exp + _SHIFT_BIAS - kind.k)
        return m


class ExactTerm(wiring.Component):
    """``term = (S * weight) << shift``, exact, signed; its width from the bound.

    Combinational: latency 0. |term| <= ``golden.exact_beat_bound(unit, B)``.

    Ports
    -----
    s : In(signed(dot_width))
    weight : In(ScaleWeight's width)
    shift : In(SHIFT_WIDTH)
    term : Out(signed(term_width))
    """

    def __init__(self, unit: str, block_size: int, weight_width: int):
        bound = exact_beat_bound(unit, block_size)
        self._term_width = signed_width(-bound, bound)
        super().__init__({"s": In(signed(dot_width(unit, block_size))),
                          "weight": In(weight_width), "shift": In(SHIFT_WIDTH),
                          "term": Out(signed(self._term_width))})

    @property
    def term_width(self) -> int:
        return self._term_width

    @property
    def latency(self) -> int:
        return 0

    def elaborate(self, platform):
        m = Module()
        product = wire(m, "product", self.s * self.weight)
        m.d.comb += self.term.eq(product << self.shift)
        return m


class WideAccumulator(wiring.Component):
    """The fused-exact accumulator: ``A = first ? term : A + term`` in two's complement.

    Latency 1 (``acc`` is the register), one term per cycle. A beat counter (saturating at
    ``max_segment``) guards the width: a non-first beat arriving with ``max_segment`` beats
    already in the segment sets ``segment_overflow`` (until the next first) and the sticky
    ``overflow`` (until reset). Below that count no input can leave ``width`` bits, so
    ``A`` never wraps silently. Reset gives A = 0 and a count of 0.

    Parameters
    ----------
    width : int
        Bits of A.
    term_width : int
    max_segment : int
        Beats a segment may hold (``golden.exact_max_segment``).

    Ports
    -----
    term : In(signed(term_width))
    load, first : In(1)
    acc : Out(signed(width))
    segment_overflow, overflow : Out(1)
    """

    def __init__(self, width: int, term_width: int, max_segment: int):
        self._width, self._max_segment = width, max_segment
        super().__init__({"term": In(signed(term_width)), "load": In(1), "first": In(1),
                          "acc": Out(signed(width)), "segment_overflow": Out(1),
                          "overflow": Out(1)})

    @property
    def latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        count = Signal(range(self._max_segment + 1))
        with m.If(self.load):
            with m.If(self.first):
                m.d.sync += [self.acc.eq(self.term), count.eq(1),
                             self.segment_overflow.eq(0)]
            with m.Else():
                m.d.sync += self.acc.eq(self.acc + self.term)
                with m.If(count == self._max_segment):
                    m.d.sync += [self.segment_overflow.eq(1), self.overflow.eq(1)]
                with m.Else():
                    m.d.sync += count.eq(count + 1)
        return m


class ConstDivider(wiring.Component):
    """``quotient, remainder = divmod(value, divisor)`` for a constant divisor, restoring.

    Combinational: latency 0. One compare-subtract of ``bits(divisor)`` + 1 bits per
    quotient bit, from the top.

    Ports
    -----
    value : In(width)
    quotient : Out(width)
    remainder : Out(bits(divisor))
    """

    def __init__(self, width: int, divisor: int):
        if divisor < 1:
            raise ValueError(f"divisor must be positive, got {divisor}")
        self._width, self._divisor = width, divisor
        super().__init__({"value": In(width), "quotient": Out(width),
                          "remainder": Out(unsigned_width(divisor))})

    @property
    def latency(self) -> int:
        return 0

    def elaborate(self, platform):
        m = Module()
        rem_width = unsigned_width(self._divisor)
        rem = Const(0, rem_width)
        bits = []
        for i in reversed(range(self._width)):
            trial = wire(m, f"trial_{i}", Cat(self.value[i], rem))
            fits = wire(m, f"fits_{i}", trial >= self._divisor)
            rem = wire(m, f"rem_{i}", Mux(fits, trial - self._divisor, trial)[:rem_width])
            bits.append(fits)
        m.d.comb += [self.quotient.eq(Cat(*reversed(bits))), self.remainder.eq(rem)]
        return m


#: Pipeline stages of the pipelined converter's /49: the 32-step compare-subtract chain in
#: one cycle took 5.5 ns on Nangate 45 (flat, B = 16; docs/fused.md), against the reference's
#: 4.25 ns; two halves of 16 steps each fit.
DIV_STAGES = 2
#: Window bits the first division stage takes (the top half); the rest go to the second.
DIV_SPLIT = DIV_WINDOW // DIV_STAGES


def _converter_latency(divisor: int) -> int:
    # Normalise, (divide in DIV_STAGES,) round: one register each.
    return 2 + DIV_STAGES if divisor > 1 else 2


def _quotient_width(window: int, divisor: int) -> int:
    """Bits of window // divisor for a window with its top bit set."""
    return window - unsigned_width(divisor) + 1


class _Stage:
    """The registered fields that travel down the converter with a value."""

    def __init__(self, m: Module, suffix: str, lead_shape):
        self.valid = Signal(name=f"valid{suffix}")
        self.sign = Signal(name=f"sign{suffix}")
        self.zero = Signal(name=f"zero{suffix}")
        self.nan = Signal(name=f"nan{suffix}")
        self.sticky = Signal(name=f"sticky{suffix}")
        self.lead = Signal(lead_shape, name=f"lead{suffix}")

    def carry(self, src: "_Stage", sticky=None) -> list:
        return [self.sign.eq(src.sign), self.zero.eq(src.zero), self.nan.eq(src.nan),
                self.sticky.eq(src.sticky if sticky is None else sticky),
                self.lead.eq(src.lead)]


def _normalise(m: Module, value, nan, start, width: int, window: int, hold: bool):
    """At the ``start`` edge: sign, |A|'s leading one, and its top ``window`` bits with a
    sticky bit for the rest; the window is |A| * 2^(window - 1 - lead). Returns (stage, x).

    ``hold``: the stage loads only on ``start`` (the serial converter works on it in place);
    otherwise it loads every edge and only ``valid`` says when it holds a result (no enable
    multiplexer per bit: the last stage's ``result`` register loads on ``valid`` alone)."""
    mag_width = width - 1
    neg = value[-1]
    # |A| <= 2^(width-1) - 1 (the beat counter keeps A in range), so -A fits.
    mag = wire(m, "magnitude", Mux(neg, -value, value)[:mag_width])
    m.submodules.lzc = lzc = LeadingZeroCounter(mag_width)
    m.d.comb += lzc.value.eq(mag)
    pad = max(0, window - mag_width)
    norm = wire(m, "normalised", Cat(Const(0, pad), mag) << lzc.count)
    below = mag_width + pad - window
    st = _Stage(m, "1", range(mag_width))
    x = Signal(window, name="window1")
    m.d.sync += st.valid.eq(start)
    load = [st.sign.eq(neg), st.zero.eq(lzc.zero), st.nan.eq(nan),
            x.eq(norm[below:below + window]),
            st.sticky.eq(norm[:below] != 0 if below > 0 else 0),
            st.lead.eq(mag_width - 1 - lzc.count)]
    if hold:
        with m.If(start):
            m.d.sync += load
    else:
        m.d.sync += load
    return st, x


def _round_out(m: Module, st: "_Stage", valid, sig, sig_width: int, exp, exp_bounds,
               result, result_valid):
    """The last edge: one RNE to binary32 (or the NaN of an overflowed segment)."""
    m.submodules.round = rnd = FPRound(BINARY32, sig_width=sig_width, exp_bounds=exp_bounds,
                                       ieee=False)
    m.d.comb += [rnd.raw.sig.eq(sig), rnd.raw.exp.eq(exp), rnd.raw.sign.eq(st.sign & ~st.zero),
                 rnd.raw.is_zero.eq(st.zero)]
    m.d.sync += result_valid.eq(valid)
    with m.If(valid):
        m.d.sync += result.eq(Mux(st.nan, QNAN_BITS, rnd.result))


def _quotient_sig(q, sticky, lead, mag_width: int, window: int, divisor: int):
    """(sig, sig_width, exp, exp_bounds) for FPRound from q = window // divisor.

    q's top bit is at q_width - 1 or one lower; sig is normalised with the sticky below it.
    sig * 2^(exp - (sig_width - 1)) is |A| * 2^EXACT_LSB_EXP / divisor, because the window
    is |A| * 2^(window - 1 - lead) and |A|'s unit is 2^EXACT_LSB_EXP.
    """
    q_width = _quotient_width(window, divisor)
    top = q[q_width - 1]
    sig = Mux(top, Cat(sticky, q[:q_width]), Cat(Const(0, 1), sticky, q[:q_width - 1]))
    base = EXACT_LSB_EXP - (window - 1) + (q_width - 1) - 1
    exp = lead + base + top
    return sig, q_width + 1, exp, (base, mag_width - 1 + base + 1)


class ExactToBinary32(wiring.Component):
    """``rne32(A * 2^EXACT_LSB_EXP / divisor)`` of a two's complement accumulator, pipelined.

    At the ``start`` edge: sign and magnitude, a leading-zero count and the normalising shift
    keep the top bits of |A| as a window with a sticky bit. With ``divisor`` 49 (IF4), the
    next two edges divide the 32-bit window (:class:`ConstDivider`, top half then bottom half
    with the top's remainder, :data:`DIV_STAGES`) and OR the remainder into the sticky bit;
    the window's quotient has at least 26 bits, so the sticky lies below the round bit. The
    last edge rounds once (:class:`~.fp.FPRound`, ties to even) into ``result``. A = 0 gives
    +0; ``nan`` gives the quiet NaN 0x7fc00000.

    Latency 2 (divisor 1) or 4 (divisor 49) edges from ``start`` to ``valid``; one
    conversion per cycle.

    Ports
    -----
    value : In(signed(width))
    nan, start : In(1)
    result : Out(32)
    valid : Out(1)
    """

    def __init__(self, width: int, divisor: int):
        if divisor not in (1, KIND_WEIGHT[0]):
            raise ValueError(f"divisor must be 1 or {KIND_WEIGHT[0]}, got {divisor}")
        self._width, self._divisor = width, divisor
        super().__init__({"value": In(signed(width)), "nan": In(1), "start": In(1),
                          "result": Out(WORD_WIDTH), "valid": Out(1)})

    @property
    def latency(self) -> int:
        return _converter_latency(self._divisor)

    def elaborate(self, platform):
        m = Module()
        mag_width = self._width - 1
        window = DIV_WINDOW if self._divisor > 1 else ROUND_WINDOW
        st1, x1 = _normalise(m, self.value, self.nan, self.start, self._width, window,
                             hold=False)
        if self._divisor > 1:
            # Edges 2 and 3: the quotient window / divisor in two halves (DIV_STAGES), the
            # remainder into the sticky bit. The top half's remainder (< divisor) carries
            # into the bottom half: (rem * 2^low + low bits) // divisor < 2^low.
            q_width = _quotient_width(window, self._divisor)
            low = window - DIV_SPLIT
            rem_width = unsigned_width(self._divisor)
            m.submodules.div_hi = div_hi = ConstDivider(DIV_SPLIT, self._divisor)
            m.d.comb += div_hi.value.eq(x1[low:])
            st_mid = _Stage(m, "_mid", st1.lead.shape())
            q_hi = Signal(DIV_SPLIT, name="quotient_hi")
            rest = Signal(low + rem_width, name="rest")
            m.d.sync += st_mid.valid.eq(st1.valid)
            m.d.sync += st_mid.carry(st1)
            m.d.sync += [q_hi.eq(div_hi.quotient), rest.eq(Cat(x1[:low], div_hi.remainder))]
            m.submodules.div_lo = div_lo = ConstDivider(low + rem_width, self._divisor)
            m.d.comb += div_lo.value.eq(rest)
            st2 = _Stage(m, "2", st1.lead.shape())
            q2 = Signal(q_width, name="quotient2")
            m.d.sync += st2.valid.eq(st_mid.valid)
            m.d.sync += st2.carry(st_mid, st_mid.sticky | (div_lo.remainder != 0))
            m.d.sync += q2.eq(Cat(div_lo.quotient[:low], q_hi)[:q_width])
            sig, sig_width, exp, bounds = _quotient_sig(q2, st2.sticky, st2.lead, mag_width,
                                                        window, self._divisor)
            _round_out(m, st2, st2.valid, sig, sig_width, exp, bounds, self.result, self.valid)
        else:
            # The window itself (plus sticky) is the significand: its leading one weighs
            # 2^(lead + EXACT_LSB_EXP).
            sig = Cat(st1.sticky, x1)
            bounds = (EXACT_LSB_EXP, mag_width - 1 + EXACT_LSB_EXP)
            _round_out(m, st1, st1.valid, sig, window + 1, st1.lead + EXACT_LSB_EXP, bounds,
                       self.result, self.valid)
        return m


class SerialExactToBinary32(wiring.Component):
    """IF4's conversion with a serial /49: the cheaper option, for segments of 9+ cycles.

    As :class:`ExactToBinary32` with divisor 49, except that the 32-bit window is divided
    in place, :data:`SERIAL_DIGITS` quotient bits per cycle (restoring: the window shifts
    left, its top bits enter a 6-bit remainder, the quotient bits enter at the bottom), so
    one small compare-subtract chain replaces the 32-step divider and its pipeline register.

    Latency ``SERIAL_CONVERTER_BUSY + 2`` edges from ``start`` to ``valid`` (normalise, 8
    division steps, round). It is busy for the ``SERIAL_CONVERTER_BUSY`` edges after an
    accepted ``start``: a ``start`` then is refused (that result is lost) and the sticky
    ``overrun`` rises at the next edge; only reset clears it. Two starts
    ``SERIAL_CONVERTER_BUSY + 1`` or more cycles apart are both accepted.

    Ports
    -----
    value : In(signed(width))
    nan, start : In(1)
    result : Out(32)
    valid, overrun : Out(1)
    """

    def __init__(self, width: int):
        self._width = width
        super().__init__({"value": In(signed(width)), "nan": In(1), "start": In(1),
                          "result": Out(WORD_WIDTH), "valid": Out(1), "overrun": Out(1)})

    @property
    def latency(self) -> int:
        return SERIAL_CONVERTER_BUSY + 2

    @property
    def busy_cycles(self) -> int:
        return SERIAL_CONVERTER_BUSY

    def elaborate(self, platform):
        m = Module()
        divisor = KIND_WEIGHT[0]
        window = DIV_WINDOW
        rem_width = unsigned_width(divisor)
        # Division steps left; 0 is idle (or the last step just done).
        steps = Signal(range(SERIAL_CONVERTER_BUSY + 1))
        busy = steps != 0
        accept = self.start & ~busy
        st1, x1 = _normalise(m, self.value, self.nan, accept, self._width, window, hold=True)
        rem = Signal(rem_width)
        with m.If(accept):
            m.d.sync += [steps.eq(SERIAL_CONVERTER_BUSY), rem.eq(0)]
        with m.If(self.start & busy):
            m.d.sync += self.overrun.eq(1)
        # SERIAL_DIGITS restoring steps per cycle on (rem, window).
        x, r = x1, rem
        for j in range(SERIAL_DIGITS):
            trial = wire(m, f"trial_{j}", Cat(x[window - 1], r))
            fits = wire(m, f"fits_{j}", trial >= divisor)
            r = wire(m, f"rem_{j}", Mux(fits, trial - divisor, trial)[:rem_width])
            x = wire(m, f"shifted_{j}", Cat(fits, x[:window - 1]))
        with m.If(busy):
            m.d.sync += [x1.eq(x), rem.eq(r), steps.eq(steps - 1)]
        # The edge after the last step rounds; x1 then holds the quotient (top bits 0).
        finishing = Signal()
        m.d.sync += finishing.eq(steps == 1)
        sig, sig_width, exp, bounds = _quotient_sig(x1, st1.sticky | (rem != 0), st1.lead,
                                                    self._width - 1, window, divisor)
        _round_out(m, st1, finishing, sig, sig_width, exp, bounds, self.result, self.valid)
        return m


class FusedMac(wiring.Component):
    """Ports, parameters and the input stage shared by the two fused tops.

    Timing as the reference tops: a beat is sampled at a rising edge with ``en=1``;
    ``first=1`` opens a segment and closes the previous one (if any beat came since reset);
    for a closing beat sampled at edge E the result is on ``acc`` with ``done=1`` for the one
    cycle after edge ``E + latency``, then held. ``en=0`` cycles change nothing at the
    ports, in the input registers or in the accumulator (the pipeline's data registers
    after the input stage load on every edge, without an enable multiplexer: valid bits
    say which of them hold a beat). ``rst_n`` (asynchronous, active low) clears every
    register.

    Ports
    -----
    clk, rst_n, en, first : In(1)
    a_in, w_in : In(ArrayLayout(4, B))   (Verilog: lane i at bits [4*i+3 : 4*i])
    a_sf, w_sf : In(8)
    acc : Out(32)
    done : Out(1)
    overflow : Out(1), fused-exact only
    overrun : Out(1), fused-exact with ``converter="serial"`` only
    """

    arch = None

    def __init__(self, unit, block_size: int = DEFAULT_BLOCK_SIZE, **options):
        # A MacConfig passes through; otherwise one is built (and so validated) here.
        config = unit if isinstance(unit, MacConfig) else MacConfig(
            unit, block_size, arch=self.arch, **options)
        if config.arch != self.arch:
            raise ValueError(f"{type(self).__name__} builds {self.arch}, not {config.arch}")
        self._config = config
        self._unit = config.unit
        self._block_size = config.block_size
        super().__init__(MacSignature(config))

    @classmethod
    def from_config(cls, config: MacConfig) -> FusedMac:
        """The top of ``config`` (what :meth:`MacConfig.build` calls)."""
        return cls(config)

    @property
    def config(self) -> MacConfig:
        return self._config

    @property
    def unit(self) -> str:
        return self._unit

    @property
    def block_size(self) -> int:
        return self._block_size

    @property
    def reduction(self) -> str:
        """Every result comes out, as the reference's pipelined tree."""
        return "pipelined"

    @property
    def name(self) -> str:
        """Verilog module name, e.g. ``if4_mac_b16_fused_fp32`` (:attr:`MacConfig.name`)."""
        return self._config.name

    @property
    def port_widths(self) -> dict[str, int]:
        """Each port's width in bits, in Verilog port order."""
        return self.signature.port_widths

    #: Area category -> the top's child instances in it (the synthesis report's rows).
    BLOCK_INSTANCES = ()

    @property
    def blocks(self) -> dict[str, tuple[str, ...]]:
        """Area category -> the names of the top's child instances in it (in Verilog, module
        ``<name>.<instance>``); logic outside them is the top's control."""
        return {category: instances for category, instances in self.BLOCK_INSTANCES}

    def _front(self, m: Module):
        """The mac domain, edge 0 (input registers) and edge 1 (S, registered); returns
        (valid0, first0, valid1, first1, s1, a_sf0, w_sf0)."""
        m.domains.mac = cd = ClockDomain("mac", async_reset=True, local=True)
        m.d.comb += [cd.clk.eq(self.clk), cd.rst.eq(~self.rst_n)]
        B = self._block_size
        valid0, first0 = Signal(name="valid0"), Signal(name="first0")
        a0 = Signal(data.ArrayLayout(ELEMENT_WIDTH, B))
        w0 = Signal(data.ArrayLayout(ELEMENT_WIDTH, B))
        a_sf0, w_sf0 = Signal(SCALE_WIDTH, name="a_sf0"), Signal(SCALE_WIDTH, name="w_sf0")
        m.d.mac += valid0.eq(self.en)
        with m.If(self.en):
            m.d.mac += [first0.eq(self.first), a0.eq(self.a_in), w0.eq(self.w_in),
                        a_sf0.eq(self.a_sf), w_sf0.eq(self.w_sf)]
        m.submodules.dot = dot = BlockDot(self._unit, B)
        m.d.comb += [dot.a.eq(a0), dot.w.eq(w0)]
        if self._unit == "if4":
            m.d.comb += [dot.a_int.eq(a_sf0[INT_FLAG_BIT]), dot.w_int.eq(w_sf0[INT_FLAG_BIT])]
        valid1, first1 = Signal(name="valid1"), Signal(name="first1")
        s1 = Signal(signed(dot_width(self._unit, B)), name="s1")
        m.d.mac += valid1.eq(valid0)
        # No enable (edge 1 on): a0, w0 change only on an enabled beat, so s1 = S(a0, w0)
        # reloads the value it holds; the valid bits say which stage holds a beat.
        m.d.mac += [first1.eq(first0), s1.eq(dot.s)]
        return valid0, first0, valid1, first1, s1, a_sf0, w_sf0


class FusedFp32Mac(FusedMac):
    """The ``fused-fp32`` MAC: ``m_b = rne32(S * 2^-k * sf_b)``, ``acc = rne32(acc + m_b)``.

    Computes exactly ``golden.fused.run_arch(stream, arch="fused-fp32")``. Latency 3 edges
    for every block size (see the module docstring); one beat per cycle; a segment may close
    on every cycle. Area: B sign-magnitude lane products and an integer tree
    (:class:`~.block_dot.BlockDot`), one scale-product unit, one small-format x binary32
    multiplier, one binary32 adder.

    Parameters
    ----------
    unit : "nvfp4" or "if4"
    block_size : int (>= 1, default 16)
    """

    arch = "fused-fp32"
    BLOCK_INSTANCES = (
        ("block dot product", ("dot",)),
        ("scale path", ("scale_mul", "kind")),
        ("beat scaling", ("to_float", "scaled")),
        ("accumulator", ("add",)),
    )

    @property
    def latency(self) -> int:
        return ACC_STAGE

    def elaborate(self, platform):
        m = Module()
        valid0, first0, valid1, first1, s1, a_sf0, w_sf0 = self._front(m)
        # Edge 1 also registers sf and k.
        m.submodules.scale_mul = scale_mul = ScaleMul(self._unit)
        m.submodules.kind = kind = KindShift(self._unit)
        m.d.comb += [scale_mul.a_sf.eq(a_sf0), scale_mul.w_sf.eq(w_sf0)]
        if self._unit == "if4":
            m.d.comb += [kind.a_int.eq(a_sf0[INT_FLAG_BIT]), kind.w_int.eq(w_sf0[INT_FLAG_BIT])]
        sf1 = Signal(WORD_WIDTH, name="sf1")
        k1 = Signal.like(kind.k, name="k1")
        m.d.mac += [sf1.eq(scale_mul.sf), k1.eq(kind.k)]     # no enable, as s1

        # Edge 2: m = rne32((S * 2^-k) * sf).
        m.submodules.to_float = to_float = IntToFloat(self._unit, self._block_size)
        m.d.comb += [to_float.s.eq(s1), to_float.k.eq(k1)]
        m.submodules.scaled = scaled = FPMul(to_float.fmt, BINARY32, BINARY32, ieee=False)
        m.d.comb += [scaled.a.eq(to_float.result), scaled.b.eq(sf1)]
        valid2, first2 = Signal(name="valid2"), Signal(name="first2")
        m2 = Signal(WORD_WIDTH, name="m2")
        m.d.mac += valid2.eq(valid1)
        m.d.mac += [first2.eq(first1), m2.eq(scaled.result)]     # no enable, as s1

        # Edge 3: the binary32 accumulator; a closing beat hands its old value out.
        segment_open = Signal()
        acc3 = Signal(WORD_WIDTH, name="acc3")
        m.submodules.add = add = FPAdd(BINARY32, ieee=False)
        m.d.comb += [add.a.eq(acc3), add.b.eq(m2)]
        closing = valid2 & first2 & segment_open
        m.d.mac += self.done.eq(closing)
        with m.If(valid2):
            m.d.mac += [segment_open.eq(1), acc3.eq(Mux(first2, m2, add.result))]
        with m.If(closing):
            m.d.mac += self.acc.eq(acc3)
        return m


class FusedExactMac(FusedMac):
    """The ``fused-exact`` MAC: the segment's exact sum in a wide integer, rounded once.

    Computes exactly ``golden.fused.run_arch(stream, arch="fused-exact",
    acc_width=acc_width, converter=converter)``: for
    IF4 the accumulator counts in 2^-20 / 49, so INT4's 6/7 and 36/49 are exact weights
    (42, 36 against FP's 49), and the conversion divides by 49 once per result. Latency 4
    (NVFP4) or 6 (IF4) edges for every block size; one beat per cycle; a segment may close
    on every cycle.

    Parameters
    ----------
    unit : "nvfp4" or "if4"
    block_size : int (>= 1, default 16)
    acc_width : int or None
        Accumulator bits; None: the narrowest that takes 4096 beats per segment
        (``golden.exact_acc_width``). :attr:`max_segment` follows from it.
    converter : "pipelined" (default) or "serial" (IF4 only)
        ``"serial"``: :class:`SerialExactToBinary32`, latency ``SERIAL_CONVERTER_BUSY + 4``
        (12); a segment whose closing beat comes 1 .. SERIAL_CONVERTER_BUSY cycles (bubbles
        included) after the previous accepted one loses its result, and the sticky
        ``overrun`` output rises at edge ``E + ACC_STAGE`` of that closing beat (as the
        reference's shared tree). Segments of 9 or more cycles never collide.
    """

    arch = "fused-exact"
    BLOCK_INSTANCES = (
        ("block dot product", ("dot",)),
        ("scale path", ("scale_weight",)),
        ("beat scaling", ("beat_term",)),
        ("accumulator", ("accumulator",)),
        ("conversion", ("convert",)),
    )

    def __init__(self, unit, block_size: int = DEFAULT_BLOCK_SIZE,
                 acc_width: int | None = None, converter: str | None = None):
        if isinstance(unit, MacConfig):
            super().__init__(unit)
        else:
            super().__init__(unit, block_size, acc_width=acc_width, converter=converter)
        self._acc_width = self._config.acc_width
        self._max_segment = exact_max_segment(self._unit, self._block_size, self._acc_width)
        self._converter = self._config.converter

    @property
    def converter(self) -> str:
        return self._converter

    @property
    def acc_width(self) -> int:
        return self._acc_width

    @property
    def max_segment(self) -> int:
        """Longest segment (enabled beats) with a correct result."""
        return self._max_segment

    @property
    def latency(self) -> int:
        # The converter's first register loads at the accumulator's edge.
        if self._converter == "serial":
            return ACC_STAGE - 1 + SERIAL_CONVERTER_BUSY + 2
        return ACC_STAGE - 1 + _converter_latency(exact_divisor(self._unit))

    def elaborate(self, platform):
        m = Module()
        valid0, first0, valid1, first1, s1, a_sf0, w_sf0 = self._front(m)
        m.submodules.scale_weight = sw = ScaleWeight(self._unit)
        m.d.comb += [sw.a_sf.eq(a_sf0), sw.w_sf.eq(w_sf0)]
        weight1 = Signal.like(sw.weight, name="weight1")
        shift1 = Signal.like(sw.shift, name="shift1")
        m.d.mac += [weight1.eq(sw.weight), shift1.eq(sw.shift)]     # no enable, as s1

        # Edge 2: the beat's term.
        m.submodules.beat_term = term = ExactTerm(self._unit, self._block_size, len(weight1))
        m.d.comb += [term.s.eq(s1), term.weight.eq(weight1), term.shift.eq(shift1)]
        valid2, first2 = Signal(name="valid2"), Signal(name="first2")
        term2 = Signal.like(term.term, name="term2")
        m.d.mac += valid2.eq(valid1)
        m.d.mac += [first2.eq(first1), term2.eq(term.term)]         # no enable, as s1

        # Edge 3: the accumulator; a closing beat starts the conversion of its old value.
        segment_open = Signal()
        with m.If(valid2):
            m.d.mac += segment_open.eq(1)
        acc = WideAccumulator(self._acc_width, term.term_width, self._max_segment)
        m.submodules.accumulator = DomainRenamer("mac")(acc)
        m.d.comb += [acc.term.eq(term2), acc.load.eq(valid2), acc.first.eq(first2)]
        if self._converter == "serial":
            conv = SerialExactToBinary32(self._acc_width)
            m.d.comb += self.overrun.eq(conv.overrun)
        else:
            conv = ExactToBinary32(self._acc_width, exact_divisor(self._unit))
        m.submodules.convert = DomainRenamer("mac")(conv)
        m.d.comb += [conv.value.eq(acc.acc), conv.nan.eq(acc.segment_overflow),
                     conv.start.eq(valid2 & first2 & segment_open),
                     self.acc.eq(conv.result), self.done.eq(conv.valid),
                     self.overflow.eq(acc.overflow)]
        return m


def fused_mac(arch: str, unit: str, block_size: int = DEFAULT_BLOCK_SIZE, **options) -> FusedMac:
    """The fused top for ``arch`` ("fused-fp32" or "fused-exact"; ``acc_width`` and
    ``converter`` for the latter)."""
    if arch == "fused-fp32":
        if options:
            raise ValueError(f"fused-fp32 takes no options, got {', '.join(options)}")
        return FusedFp32Mac(unit, block_size)
    if arch == "fused-exact":
        unknown = set(options) - {"acc_width", "converter"}
        if unknown:
            raise ValueError(f"fused-exact takes only acc_width and converter, got "
                             f"{', '.join(sorted(unknown))}")
        return FusedExactMac(unit, block_size, **options)
    raise ValueError(f"unknown fused arch {arch!r}: expected one of {', '.join(FUSED_ARCHS)}")


def fused_verilog(top: FusedMac) -> str:
    """Verilog of a fused top, its module named ``top.name``, with a header stating it."""
    if not isinstance(top, FusedMac):
        raise ValueError(f"fused_verilog needs a FusedMac, got {type(top).__name__}")
    from .design import emit_verilog    # the one emitter

    body = emit_verilog(top, top.name)
    extra = ""
    ports = "clk, rst_n, en, first, a_in, a_sf, w_in, w_sf, acc, done"
    if isinstance(top, FusedExactMac):
        ports += ", overflow" + (", overrun" if top.converter == "serial" else "")
        extra = (f"// Accumulator {top.acc_width} bits: segments up to {top.max_segment} beats; "
                 f"a longer one gives NaN and raises the sticky overflow.\n")
    header = (
        f"// {top.name}: if4mac {top.unit.upper()} MAC, block size {top.block_size}, "
        f"{top.arch} architecture.\n"
        f"// Ports: {ports}. a_in/w_in are packed: lane i at [4*i+3:4*i].\n"
        f"// rst_n is asynchronous, active low. Latency: done rises {top.latency} edges after "
        f"the closing beat's edge.\n" + extra +
        f"// See docs/spec.md (Fused architectures).\n"
    )
    return header + body
