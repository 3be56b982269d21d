"""Raw floats: the one internal representation between decode, the arithmetic and the rounder.

After Berkeley HardFloat's ``rawFloat``: a value is ``(-1)**sign * sig * 2**(exp - (W-1))``
with ``sig`` a ``W``-bit unsigned significand whose hidden bit is explicit and ``exp`` a
two's complement, unbiased exponent (so ``exp`` is the weight of ``sig``'s top bit). Flags
take precedence in the order ``is_nan > is_inf > is_zero > (is_subnormal) > finite nonzero``;
``sign``/``exp``/``sig`` carry the value only when no flag above them is set.

The same layout serves for decoded operands (``W`` = the format's precision, ``sig``
normalised so its top bit is set) and for the unrounded results handed to
:class:`~.round.FPRound` (``W`` as wide as the operation needs).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from if4mac.errors import ParameterTypeError

from .format import FloatFormat, signed_width
from ._signals import wire
from .lzc import LeadingZeroCounter

__all__ = ["raw_float_layout", "decoded_exp_bounds", "FPDecode"]


def raw_float_layout(exp_bounds: tuple[int, int], sig_width: int, *, ieee: bool,
                     subnormal_flag: bool = False) -> data.StructLayout:
    """Layout of a raw float whose exponent takes values in ``exp_bounds`` (inclusive).

    ``is_inf`` and ``is_nan`` exist only in ``ieee`` mode (reduced mode has no such
    values); ``is_subnormal`` only where ``subnormal_flag`` asks for it (decoded operands).
    """
    if not isinstance(sig_width, int) or isinstance(sig_width, bool):
        raise ParameterTypeError(f"raw float sig_width must be a positive integer, got "
                                 f"{sig_width!r}")
    if sig_width < 1:
        raise ValueError(f"raw float sig_width must be a positive integer, got {sig_width!r}")
    fields = {
        "sig": sig_width,
        "exp": signed(signed_width(*exp_bounds)),
        "sign": 1,
        "is_zero": 1,
    }
    if ieee:
        if subnormal_flag:
            fields["is_subnormal"] = 1
        fields["is_inf"] = 1
        fields["is_nan"] = 1
    return data.StructLayout(fields)


def decoded_exp_bounds(fmt: FloatFormat, *, ieee: bool) -> tuple[int, int]:
    """Every value :class:`FPDecode` can put on ``raw.exp`` for ``fmt``, specials included.

    The top is the all-ones exponent field (``emax + 1``, inf/NaN, or an out-of-domain
    operand in reduced mode). The bottom is a zero's: ``emin - precision`` after the
    normalising shift in ieee mode, ``emin - 1`` (field 0, unshifted) in reduced mode.
    """
    lo = fmt.emin - fmt.precision if ieee else fmt.emin - 1
    return lo, fmt.emax + 1


class FPDecode(wiring.Component):
    """Unpack an IEEE-packed ``fmt`` value into a raw float, once, for every consumer.

    Purely combinational: ``latency = 0``, throughput one value per cycle.

    ``ieee=True``: exponent field all ones is ``is_inf`` (fraction 0) or ``is_nan``; field 0
    is ``is_zero`` (fraction 0) or ``is_subnormal``, in which case a leading-zero count
    normalises ``sig`` to have its top bit set and lowers ``exp`` below ``emin`` to match.
    ``is_zero`` gives ``sig = 0``.

    ``ieee=False`` (reduced): only zeros and normals are in the domain. ``is_zero`` is
    ``exponent field == 0`` and the hidden bit is its complement; there is no subnormal,
    infinity or NaN logic. Out of domain, a subnormal reads as ``is_zero`` with
    ``sig = 0.f`` at ``exp = emin - 1`` (a consumer that ignores ``is_zero`` sees half its
    value), and an all-ones exponent field reads as the finite ``1.f * 2**(emax + 1)``.

    Parameters
    ----------
    fmt : FloatFormat
    ieee : bool

    Ports
    -----
    bits : In(fmt.width)
        IEEE packing: sign, exponent field, fraction.
    raw : Out(raw_float_layout(decoded_exp_bounds(fmt), fmt.precision, subnormal_flag=True))
    """

    def __init__(self, fmt: FloatFormat, *, ieee: bool):
        if not isinstance(fmt, FloatFormat):
            raise ParameterTypeError(f"FPDecode fmt must be a FloatFormat, got {fmt!r}")
        if not isinstance(ieee, bool):
            raise ParameterTypeError(f"FPDecode ieee must be a bool, got {ieee!r}")
        self._fmt = fmt
        self._ieee = ieee
        self._exp_bounds = decoded_exp_bounds(fmt, ieee=self._ieee)
        super().__init__({
            "bits": In(fmt.width),
            "raw": Out(raw_float_layout(self._exp_bounds, fmt.precision, ieee=self._ieee,
                                        subnormal_flag=True)),
        })

    @property
    def fmt(self) -> FloatFormat:
        return self._fmt

    @property
    def ieee(self) -> bool:
        return self._ieee

    @property
    def exp_bounds(self) -> tuple[int, int]:
        return self._exp_bounds

    @property
    def latency(self) -> int:
        return 0

    @property
    def name(self) -> str:
        return f"fp_decode_{self._fmt.tag}" + ("" if self._ieee else "_reduced")

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        packed = data.View(fmt.layout, self.bits)
        raw = self.raw

        hidden = wire(m, "hidden", packed.exp != 0)
        sig_plain = Cat(packed.man, hidden)
        m.d.comb += raw.sign.eq(packed.sign)
        if not self._ieee:
            m.d.comb += [
                raw.is_zero.eq(~hidden),
                raw.sig.eq(sig_plain),
                raw.exp.eq(packed.exp - fmt.bias),
            ]
            return m

        m.submodules.lzc = lzc = LeadingZeroCounter(fmt.precision)
        is_special = wire(m, "is_special", packed.exp == fmt.exp_all_ones)
        man_zero = wire(m, "man_zero", packed.man == 0)
        # A normal has no leading zero, so one shift serves both; a subnormal's count is
        # 1 + the fraction's leading zeros, exactly what puts its top one in the hidden place.
        norm_shift = lzc.count
        m.d.comb += [
            lzc.value.eq(sig_plain),
            raw.is_zero.eq(~hidden & man_zero),
            raw.is_subnormal.eq(~hidden & ~man_zero),
            raw.is_inf.eq(is_special & man_zero),
            raw.is_nan.eq(is_special & ~man_zero),
            raw.sig.eq((sig_plain << norm_shift)[:fmt.precision]),
            # Subnormals share emin's scale: field 0 counts as 1 before the shift lowers it.
            raw.exp.eq(Mux(hidden, packed.exp, 1) - fmt.bias - norm_shift),
        ]
        return m
