"""Floating-point multiplier, operands and result each in their own format, RNE."""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from if4mac.errors import ParameterTypeError

from .format import BINARY32, FloatFormat
from ._signals import wire
from .raw import FPDecode
from .round import FPRound

__all__ = ["FPMul"]


class FPMul(wiring.Component):
    """``result = round(a * b)`` to ``out_fmt``, round to nearest, ties to even.

    Purely combinational: ``latency = 0``, throughput one product per cycle; the parent
    places any pipeline registers. Both operands are decoded once (:class:`FPDecode`), their
    significands multiplied exactly by a ``precision(a) x precision(b)`` multiplier (11x24 for
    binary16 x binary32), the product normalised by at most one place and handed to the
    shared :class:`FPRound`.

    ``ieee=True``: IEEE 754 behaviour, as numpy computes ``a.astype(out) * b.astype(out)``
    when that is exact: subnormal inputs and outputs, signed zeros (``0 * -y = -0``),
    ``inf * 0`` and any NaN operand give the canonical quiet NaN, overflow gives infinity,
    underflow a subnormal or a signed zero.

    ``ieee=False`` (reduced, for the MAC datapath): the domain is zero and normal operands
    whose exact product is zero or at least ``2**out.emin`` in magnitude and rounds to a
    finite value. There the result is bit-exact, signed zeros included. Outside it: a
    subnormal operand reads as a zero of its sign, an all-ones exponent field as the finite
    ``1.f * 2**(emax + 1)``, and a result exponent outside ``emin..emax`` wraps modulo
    ``2**exp_bits`` (see :class:`FPRound`), so no inf, NaN or subnormal is produced on
    purpose.

    Parameters
    ----------
    a_fmt, b_fmt, out_fmt : FloatFormat
        Default binary32 each.
    ieee : bool
        Full IEEE 754 (default) or the reduced datapath mode.

    Ports
    -----
    a : In(a_fmt.width)
    b : In(b_fmt.width)
    result : Out(out_fmt.width)
        All in IEEE packing.
    """

    def __init__(self, a_fmt: FloatFormat = BINARY32, b_fmt: FloatFormat = BINARY32,
                 out_fmt: FloatFormat = BINARY32, *, ieee: bool = True):
        for label, fmt in (("a_fmt", a_fmt), ("b_fmt", b_fmt), ("out_fmt", out_fmt)):
            if not isinstance(fmt, FloatFormat):
                raise ParameterTypeError(f"FPMul {label} must be a FloatFormat, got {fmt!r}")
        if not isinstance(ieee, bool):
            raise ParameterTypeError(f"FPMul ieee must be a bool, got {ieee!r}")
        self._a_fmt, self._b_fmt, self._out_fmt = a_fmt, b_fmt, out_fmt
        self._ieee = ieee
        super().__init__({
            "a": In(a_fmt.width),
            "b": In(b_fmt.width),
            "result": Out(out_fmt.width),
        })

    @property
    def a_fmt(self) -> FloatFormat:
        return self._a_fmt

    @property
    def b_fmt(self) -> FloatFormat:
        return self._b_fmt

    @property
    def out_fmt(self) -> FloatFormat:
        return self._out_fmt

    @property
    def ieee(self) -> bool:
        return self._ieee

    @property
    def latency(self) -> int:
        """Cycles from operands to result: 0 (combinational)."""
        return 0

    @property
    def name(self) -> str:
        """Module name carrying the widths, e.g. ``fp_mul_e5m10_e8m23_to_e8m23``."""
        return (f"fp_mul_{self._a_fmt.tag}_{self._b_fmt.tag}_to_{self._out_fmt.tag}"
                + ("" if self._ieee else "_reduced"))

    def elaborate(self, platform):
        m = Module()
        ieee = self._ieee
        m.submodules.decode_a = dec_a = FPDecode(self._a_fmt, ieee=ieee)
        m.submodules.decode_b = dec_b = FPDecode(self._b_fmt, ieee=ieee)
        a, b = dec_a.raw, dec_b.raw

        # The exact product of the two significands (hidden bits included).
        PROD_W = self._a_fmt.precision + self._b_fmt.precision
        a_lo, a_hi = dec_a.exp_bounds
        b_lo, b_hi = dec_b.exp_bounds
        # exp = exp_a + exp_b + (1 if the product reached the top bit else 0).
        exp_bounds = (a_lo + b_lo, a_hi + b_hi + 1)

        m.submodules.round = rnd = FPRound(self._out_fmt, sig_width=PROD_W,
                                           exp_bounds=exp_bounds, ieee=ieee)
        product = wire(m, "product", a.sig * b.sig)
        # Normalised operands give a product in [1, 4): at most one place to normalise.
        top = product[PROD_W - 1]
        m.d.comb += [
            dec_a.bits.eq(self.a),
            dec_b.bits.eq(self.b),
            rnd.raw.sign.eq(a.sign ^ b.sign),
            rnd.raw.exp.eq(a.exp + b.exp + top),
            rnd.raw.sig.eq(Mux(top, product, product << 1)),
            rnd.raw.is_zero.eq(a.is_zero | b.is_zero),
            self.result.eq(rnd.result),
        ]
        if ieee:
            m.d.comb += [
                rnd.raw.is_inf.eq(a.is_inf | b.is_inf),
                rnd.raw.is_nan.eq(a.is_nan | b.is_nan
                                  | (a.is_inf & b.is_zero) | (a.is_zero & b.is_inf)),
            ]
        return m
