"""The bit-level formats: one table per code space, imported everywhere else.

Every table is built once, at import, from the format definitions in docs/spec.md:

* ``E2M1``   -- the FP4 element: code ``s e1 e0 m``; magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6.
  Code 0x8 is -0 (a valid value).
* ``INT4``   -- the IF4 integer element: two's complement. Code 0x8 decodes to -8, which the
  format does not allow (valid values are -7..7) but the hardware computes with anyway.
* ``E4M3``   -- the scale byte's bits [6:0]: unsigned E4M3, bias 7, subnormals at exp=0, and
  exp=15/man=7 read as 448 (as man=6). Bit 7 is the IF4 INT4 flag; NVFP4 ignores it.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "UNITS", "ELEMENT_CODES", "SCALE_CODES", "SCALE_INT_FLAG", "INT4_INVALID_CODE",
    "E2M1_MAGNITUDES", "E2M1_VALUES", "INT4_VALUES", "E4M3_VALUES",
    "INT_EXPANSION", "INT_EXPANSION_SQUARED", "decode_scale", "scale_is_int",
    "float32_bits", "float32_from_bits", "check_unit",
]

#: The MAC units this toolkit models.
UNITS = ("nvfp4", "if4")

#: Element codes are 4 bits; scale codes are 8 bits.
ELEMENT_CODES = 16
SCALE_CODES = 256
#: Bit 7 of a scale byte: 1 selects INT4 elements for the block (IF4 only).
SCALE_INT_FLAG = 0x80
#: The one INT4 code outside the format (it decodes to -8).
INT4_INVALID_CODE = 0x8

E2M1_MAGNITUDES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def _e2m1_table() -> np.ndarray:
    mag = np.array(E2M1_MAGNITUDES * 2, dtype=np.float32)
    sign = np.where(np.arange(ELEMENT_CODES) & 0x8, np.float32(-1), np.float32(1))
    return (sign * mag).astype(np.float32)       # -1 * 0.0 gives -0.0 for code 0x8


def _int4_table() -> np.ndarray:
    codes = np.arange(ELEMENT_CODES)
    return np.where(codes < 8, codes, codes - 16).astype(np.float32)


def _e4m3_table() -> np.ndarray:
    """Decoded value of bits [6:0] of a scale byte, for all 128 codes (exact in binary32)."""
    codes = np.arange(128)
    exp = codes >> 3
    man = codes & 7
    man = np.where((exp == 15) & (man == 7), 6, man)       # the 448 rule: 0x7F reads as 0x7E
    normal = (8 + man) * np.exp2(exp - 10.0)                # (1 + man/8) * 2^(exp-7)
    subnormal = man * np.exp2(-9.0)                         # man/8 * 2^-6
    values = np.where(exp == 0, subnormal, normal)
    out = values.astype(np.float32)
    assert np.array_equal(out.astype(np.float64), values), "E4M3 values must be exact in binary32"
    return out


#: Value of each of the 16 E2M1 codes, binary32 (exact).
E2M1_VALUES = _e2m1_table()
#: Value of each of the 16 INT4 codes as the hardware decodes them (0x8 -> -8), binary32.
INT4_VALUES = _int4_table()
#: Value of scale bits [6:0] for each of the 128 codes, binary32 (exact).
E4M3_VALUES = _e4m3_table()

#: f32(6/7): IF4's INT expansion factor, and f32(36/49) for INT x INT. Each is the exact
#: rational rounded once to binary32 (tests check this against fractions.Fraction).
INT_EXPANSION = np.float32(6 / 7)
INT_EXPANSION_SQUARED = np.float32(36 / 49)

for _arr in (E2M1_VALUES, INT4_VALUES, E4M3_VALUES):
    _arr.setflags(write=False)


def check_unit(unit: str) -> str:
    """Return ``unit`` if it names a MAC unit, else raise a one-line ``ValueError``."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}: expected one of {', '.join(UNITS)}")
    return unit


def decode_scale(scale_bytes) -> np.ndarray:
    """Decoded E4M3 value (binary32) of scale bytes; bit 7 is ignored."""
    return E4M3_VALUES[np.asarray(scale_bytes, dtype=np.uint8) & 0x7F]


def scale_is_int(scale_bytes) -> np.ndarray:
    """True where a scale byte marks an INT4 block (only IF4 reads this)."""
    return (np.asarray(scale_bytes, dtype=np.uint8) & SCALE_INT_FLAG) != 0


def float32_bits(values) -> np.ndarray:
    """The IEEE 754 bit patterns of binary32 values, as uint32."""
    return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)


def float32_from_bits(bits) -> np.ndarray:
    """Binary32 values from their bit patterns."""
    return np.ascontiguousarray(bits, dtype=np.uint32).view(np.float32)
