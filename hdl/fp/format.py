"""Binary floating-point formats described by their field widths, and width arithmetic helpers.

A :class:`FloatFormat` is the IEEE 754 interchange layout ``sign | exponent | fraction`` with a
biased exponent (bias ``2**(exp_bits-1) - 1``), the all-ones exponent reserved for infinities
and NaNs and the all-zeros exponent for zeros and subnormals. ``FloatFormat(8, 23)`` is
binary32, ``FloatFormat(5, 10)`` binary16, ``FloatFormat(5, 2)`` the OCP ``float8_e5m2``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.lib import data

__all__ = ["FloatFormat", "BINARY16", "BINARY32", "signed_width", "unsigned_width"]


def unsigned_width(hi: int) -> int:
    """Bits of an unsigned signal that holds every integer in ``0..hi``."""
    if hi < 0:
        raise ValueError(f"unsigned_width needs a non-negative bound, got {hi}")
    return max(1, hi.bit_length())


def signed_width(lo: int, hi: int) -> int:
    """Bits of a two's complement signal that holds every integer in ``lo..hi``."""
    if lo > hi:
        raise ValueError(f"signed_width needs lo <= hi, got {lo} > {hi}")
    return max(max(lo, 0).bit_length(), hi.bit_length(), (-min(lo, 0) - 1).bit_length()) + 1


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE 754-style binary format with ``exp_bits`` exponent and ``man_bits`` fraction bits.

    Raises ``ValueError`` unless ``2 <= exp_bits <= 16`` and ``1 <= man_bits <= 128``
    (one fraction bit is the least that can tell a NaN from an infinity).
    """

    exp_bits: int
    man_bits: int

    def __post_init__(self):
        for field, lo, hi in (("exp_bits", 2, 16), ("man_bits", 1, 128)):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValueError(f"FloatFormat {field} must be an integer in {lo}..{hi}, "
                                 f"got {value!r}")

    @property
    def width(self) -> int:
        """Total bits: sign, exponent and fraction."""
        return 1 + self.exp_bits + self.man_bits

    @property
    def precision(self) -> int:
        """Significand bits including the hidden bit (IEEE's ``p``)."""
        return self.man_bits + 1

    @property
    def bias(self) -> int:
        return (1 << (self.exp_bits - 1)) - 1

    @property
    def emax(self) -> int:
        """Unbiased exponent of the largest finite binade."""
        return self.bias

    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal binade (subnormals share its scale)."""
        return 1 - self.bias

    @property
    def exp_all_ones(self) -> int:
        return (1 << self.exp_bits) - 1

    @property
    def tag(self) -> str:
        """Short name used in module names, e.g. ``e8m23``."""
        return f"e{self.exp_bits}m{self.man_bits}"

    @property
    def layout(self) -> data.StructLayout:
        """The packed interchange layout, fraction in the low bits."""
        return data.StructLayout({"man": self.man_bits, "exp": self.exp_bits, "sign": 1})

    def inf_bits(self, sign: int = 0) -> int:
        return (sign << (self.width - 1)) | (self.exp_all_ones << self.man_bits)

    def zero_bits(self, sign: int = 0) -> int:
        return sign << (self.width - 1)

    @property
    def qnan_bits(self) -> int:
        """The canonical quiet NaN: positive, fraction MSB set (0x7FC00000 for binary32)."""
        return (self.exp_all_ones << self.man_bits) | (1 << (self.man_bits - 1))


BINARY32 = FloatFormat(8, 23)
BINARY16 = FloatFormat(5, 10)
