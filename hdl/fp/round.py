"""The one shared rounder: raw float in, IEEE-packed result out, round to nearest even."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from if4mac.errors import ParameterTypeError

from .format import FloatFormat, signed_width, unsigned_width
from ._signals import wire
from .raw import raw_float_layout

__all__ = ["FPRound"]


class FPRound(wiring.Component):
    """Round an unrounded raw float to ``out_fmt`` (RNE) and pack it, after a special bypass.

    Purely combinational: ``latency = 0``, one result per cycle.

    The input is ``value = (-1)**sign * sig * 2**(exp - (sig_width-1))`` with ``sig``
    *normalised* (top bit set) whenever no flag is set. Its low bits may be sticky-compressed
    (the OR of bits an operation discarded, kept in the lowest bit) as long as the
    compression lies wholly below the round bit of every result, subnormal ones included.

    The output is chosen by a priority bypass: ``is_nan`` -> the canonical quiet NaN,
    ``is_inf`` -> signed infinity, ``is_zero`` -> signed zero, else the rounded value.

    ``ieee=True``: results below ``2**emin`` are shifted right (sticky kept) and rounded to a
    subnormal, to the smallest normal, or to a zero that keeps ``sign``; results whose
    rounded magnitude exceeds the largest finite value become infinity (RNE overflow).

    ``ieee=False`` (reduced): there is no tininess or overflow logic. A result whose
    exponent (after rounding) lies outside ``emin..emax`` is out of domain: its biased
    exponent is taken modulo ``2**exp_bits`` and the output is garbage (a wrong finite
    value, an infinity or a NaN pattern), except that a carry out of rounding at ``emax``
    yields infinity, as in IEEE.

    Parameters
    ----------
    out_fmt : FloatFormat
    sig_width : int
        Width of the incoming ``sig`` (>= 1; narrower than ``precision + 2`` is zero-extended).
    exp_bounds : (int, int)
        Inclusive range of the incoming ``exp``; sizes ``raw.exp`` and the internal adders.
    ieee : bool

    Ports
    -----
    raw : In(raw_float_layout(exp_bounds, sig_width, ieee=ieee))
    result : Out(out_fmt.width)
    """

    def __init__(self, out_fmt: FloatFormat, *, sig_width: int, exp_bounds: tuple[int, int],
                 ieee: bool):
        if not isinstance(out_fmt, FloatFormat):
            raise ParameterTypeError(f"FPRound out_fmt must be a FloatFormat, got {out_fmt!r}")
        if not isinstance(sig_width, int) or isinstance(sig_width, bool):
            raise ParameterTypeError(f"FPRound sig_width must be a positive integer, got "
                                     f"{sig_width!r}")
        if sig_width < 1:
            raise ValueError(f"FPRound sig_width must be a positive integer, got {sig_width!r}")
        if not (isinstance(exp_bounds, tuple) and len(exp_bounds) == 2
                and all(isinstance(x, int) for x in exp_bounds) and exp_bounds[0] <= exp_bounds[1]):
            raise ValueError(f"FPRound exp_bounds must be a pair of integers (lo, hi) with "
                             f"lo <= hi, got {exp_bounds!r}")
        if not isinstance(ieee, bool):
            raise ParameterTypeError(f"FPRound ieee must be a bool, got {ieee!r}")
        self._fmt = out_fmt
        self._sig_width = sig_width
        self._exp_bounds = exp_bounds
        self._ieee = ieee
        super().__init__({
            "raw": In(raw_float_layout(self._exp_bounds, sig_width, ieee=self._ieee)),
            "result": Out(out_fmt.width),
        })

    @property
    def latency(self) -> int:
        return 0

    @property
    def name(self) -> str:
        exp_width = signed_width(*self._exp_bounds)
        return (f"fp_round_s{self._sig_width}_x{exp_width}_to_{self._fmt.tag}"
                + ("" if self._ieee else "_reduced"))

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        raw = self.raw
        exp_lo, exp_hi = self._exp_bounds

        P = fmt.precision
        # The kept significand plus the round bit.
        KEEP_W = P + 1
        # ... plus one sticky bit: all that rounding (and a later right shift) needs.
        COMPRESSED_W = KEEP_W + 1

        if self._sig_width >= COMPRESSED_W:
            below = self._sig_width - KEEP_W
            compressed = wire(m, "compressed", Cat(raw.sig[:below] != 0, raw.sig[below:]))
        else:
            compressed = Cat(Const(0, COMPRESSED_W - self._sig_width), raw.sig)

        can_be_tiny = self._ieee and exp_lo < fmt.emin
        if can_be_tiny:
            # A shift of P+1 already puts the hidden bit below the round bit; more is the same.
            DENORM_CAP = P + 1
            tiny = wire(m, "tiny", raw.exp < fmt.emin)
            shift_raw = fmt.emin - raw.exp
            shift = Mux(tiny, Mux(shift_raw > DENORM_CAP, DENORM_CAP, shift_raw), 0)
            shift = wire(m, "denorm_shift", shift[:unsigned_width(DENORM_CAP)])
            # Room below `compressed` for the shifted-out bits, all of which become sticky.
            spread = wire(m, "denorm_spread", Cat(Const(0, DENORM_CAP), compressed) >> shift)
            keep_round = spread[DENORM_CAP + 1:DENORM_CAP + 1 + KEEP_W]
            sticky = spread[:DENORM_CAP + 1] != 0
            # Subnormals share emin's scale (biased field 0 rounds up into field 1 naturally).
            exp_scale = Mux(tiny, fmt.emin, raw.exp)
        else:
            keep_round = compressed[1:]
            sticky = compressed[0]
            exp_scale = raw.exp

        round_bit = keep_round[0]
        kept = keep_round[1:]
        increment = wire(m, "increment", round_bit & (sticky | kept[0]))
        # P+1 bits: a carry out of rounding reaches the next binade.
        rounded = kept + increment

        # Adding the significand (hidden bit included) onto (biased exponent - 1) at the
        # fraction's position folds both the hidden bit and a rounding carry into the field.
        biased_m1 = exp_scale + (fmt.bias - 1)
        magnitude = wire(m, "magnitude", (biased_m1 << fmt.man_bits) + rounded)
        inf_magnitude = fmt.exp_all_ones << fmt.man_bits

        inf_result = Cat(Const(inf_magnitude, fmt.width - 1), raw.sign)
        normal_result = Cat(magnitude[:fmt.width - 1], raw.sign)
        if self._ieee and exp_hi >= fmt.emax:
            # Only an exponent of emax or more can round past the largest finite value; after
            # the tiny clamp `magnitude` is never negative, so one compare finds it.
            normal_result = Mux(magnitude >= inf_magnitude, inf_result, normal_result)

        bypass = [(raw.is_zero, Cat(Const(0, fmt.width - 1), raw.sign))]
        if self._ieee:
            bypass = [(raw.is_nan, Const(fmt.qnan_bits, fmt.width)),
                      (raw.is_inf, inf_result)] + bypass
        for index, (condition, value) in enumerate(bypass):
            with (m.If if index == 0 else m.Elif)(condition):
                m.d.comb += self.result.eq(value)
        with m.Else():
            m.d.comb += self.result.eq(normal_result)
        return m
