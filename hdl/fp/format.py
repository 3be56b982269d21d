"""Width arithmetic helpers, and the binary formats re-exported from the formats layer.

:class:`FloatFormat` (the IEEE 754 interchange layout described by its field widths) is
defined once in :mod:`if4mac.golden.formats`, with ``BINARY16`` and ``BINARY32``.
"""

from __future__ import annotations

from if4mac.golden.formats import BINARY16, BINARY32, FloatFormat

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
