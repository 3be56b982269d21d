"""Leading-zero counter: a log-depth tree, as used for normalisation after cancellation."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from if4mac.errors import ParameterTypeError

from .format import unsigned_width

__all__ = ["LeadingZeroCounter"]


class LeadingZeroCounter(wiring.Component):
    """Count the zeros above the most significant set bit of ``value``.

    Purely combinational (``latency = 0``, one result per cycle). The input is padded at
    the bottom to a power of two with ones, so the count of an all-zero input is ``width``
    itself.

    Parameters
    ----------
    width : int
        Bits of ``value`` (>= 1).

    Ports
    -----
    value : In(width)
    count : Out(unsigned_width(width))
        Leading zeros, ``0..width``.
    zero : Out(1)
        ``value == 0``.
    """

    def __init__(self, width: int):
        if not isinstance(width, int) or isinstance(width, bool):
            raise ParameterTypeError(f"LeadingZeroCounter width must be a positive integer, "
                                     f"got {width!r}")
        if width < 1:
            raise ValueError(f"LeadingZeroCounter width must be a positive integer, got {width!r}")
        self._width = width
        super().__init__({
            "value": In(width),
            "count": Out(unsigned_width(width)),
            "zero": Out(1),
        })

    @property
    def width(self) -> int:
        return self._width

    @property
    def latency(self) -> int:
        return 0

    @property
    def name(self) -> str:
        return f"lzc_w{self._width}"

    def elaborate(self, platform):
        m = Module()
        # The tree splits in halves, so it works on the next power of two.
        levels = (self._width - 1).bit_length()
        pad = (1 << levels) - self._width
        padded = Cat(Const((1 << pad) - 1, pad), self.value)

        def count(bits, depth):
            # Returns (all_zero, leading zeros of the non-all-zero part in `depth` bits).
            if depth == 0:
                return ~bits[0], Const(0, 0)
            half = 1 << (depth - 1)
            lo_zero, lo_count = count(bits[:half], depth - 1)
            hi_zero, hi_count = count(bits[half:], depth - 1)
            return hi_zero & lo_zero, Cat(Mux(hi_zero, lo_count, hi_count), hi_zero)

        all_zero, leading = count(padded, levels)
        # With padding, an all-zero value leaves the top padding one at position `width`, so
        # `leading` is already right; `all_zero` is then constant 0 and the mux folds away.
        m.d.comb += [
            self.count.eq(Mux(all_zero, self._width, leading)),
            self.zero.eq(self.value == 0),
        ]
        return m
