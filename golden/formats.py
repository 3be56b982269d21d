"""The formats layer: every bit-level fact of the MAC's number formats and units, defined once.

Everything else in if4mac (golden, hdl, sim, synth, gpu_ref) imports these names instead of
restating them (docs/architecture.md). The layer is pure Python and numpy; the one Amaranth
object here, :attr:`FloatFormat.layout`, imports Amaranth only when it is asked for.

Code spaces (docs/spec.md, section 1):

* ``E2M1``   -- the FP4 element: code ``s e1 e0 m``; magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6.
  Code 0x8 is -0 (a valid value).
* ``INT4``   -- the IF4 integer element: two's complement. Code 0x8 decodes to -8, which the
  format does not allow (valid values are -7..7) but the hardware computes with anyway.
* ``E4M3``   -- the scale byte's bits [6:0]: unsigned E4M3, bias 7, subnormals at exp=0, and
  exp=15/man=7 read as 448 (as man=6). Bit 7 is the IF4 INT4 flag; NVFP4 ignores it.

Units (:data:`UNIT_SPECS`): what a MAC unit reads -- its element kinds, whether it reads the
scale's INT flag, and its INT expansion factors -- as one :class:`Unit` object per unit, so
code asks ``spec.reads_int_flag`` instead of comparing unit names.

Block geometry: :data:`DEFAULT_BLOCK_SIZE`, and :func:`check_block_size` with the one limit
:data:`MAX_BLOCK_SIZE` (its reason is in its comment).

Binary floating-point layouts: :class:`FloatFormat` (``BINARY16``, ``BINARY32``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from if4mac.errors import ParameterTypeError

__all__ = [
    "UNITS", "UNIT_SPECS", "Unit", "unit_spec", "check_unit",
    "DEFAULT_BLOCK_SIZE", "MAX_BLOCK_SIZE", "check_block_size",
    "ELEMENT_WIDTH", "SCALE_WIDTH", "ELEMENT_CODES", "SCALE_CODES", "SCALE_INT_FLAG",
    "INT_FLAG_BIT", "INT4_INVALID_CODE", "ELEMENT_SIGN_BIT",
    "E2M1_EXP_BITS", "E2M1_MAN_BITS", "E4M3_WIDTH", "E4M3_EXP_BITS", "E4M3_MAN_BITS",
    "E4M3_BIAS",
    "E2M1_MAGNITUDES", "E2M1_VALUES", "INT4_VALUES", "E4M3_VALUES",
    "INT_EXPANSION", "INT_EXPANSION_SQUARED", "decode_scale", "scale_is_int",
    "float32_bits", "float32_from_bits",
    "FloatFormat", "BINARY16", "BINARY32",
]

# --- Field layouts of the codes -------------------------------------------------------------

#: Element codes are 4 bits in both element formats (E2M1 and INT4).
ELEMENT_WIDTH = 4
#: A scale byte: E4M3 in bits [6:0], IF4's INT4 flag in bit 7.
SCALE_WIDTH = 8
ELEMENT_CODES = 1 << ELEMENT_WIDTH
SCALE_CODES = 1 << SCALE_WIDTH
#: The sign is the top bit of an element code in both formats (E2M1 ``s``, INT4's MSB).
ELEMENT_SIGN_BIT = ELEMENT_WIDTH - 1
#: E2M1's fields below the sign: 2 exponent bits (bias 1) and 1 mantissa bit.
E2M1_EXP_BITS = 2
E2M1_MAN_BITS = 1
#: The scale's value is unsigned E4M3 in the bits below the INT flag.
E4M3_EXP_BITS = 4
E4M3_MAN_BITS = 3
E4M3_WIDTH = E4M3_EXP_BITS + E4M3_MAN_BITS
E4M3_BIAS = 7
#: Bit 7 of a scale byte: 1 selects INT4 elements for the block (IF4 only).
INT_FLAG_BIT = E4M3_WIDTH
SCALE_INT_FLAG = 1 << INT_FLAG_BIT
#: The one INT4 code outside the format (it decodes to -8).
INT4_INVALID_CODE = 1 << ELEMENT_SIGN_BIT

E2M1_MAGNITUDES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def _e2m1_table() -> np.ndarray:
    mag = np.array(E2M1_MAGNITUDES * 2, dtype=np.float32)
    sign = np.where(np.arange(ELEMENT_CODES) & INT4_INVALID_CODE, np.float32(-1),
                    np.float32(1))
    return (sign * mag).astype(np.float32)       # -1 * 0.0 gives -0.0 for code 0x8


def _int4_table() -> np.ndarray:
    codes = np.arange(ELEMENT_CODES)
    half = ELEMENT_CODES // 2
    return np.where(codes < half, codes, codes - ELEMENT_CODES).astype(np.float32)


def _e4m3_table() -> np.ndarray:
    """Decoded value of bits [6:0] of a scale byte, for all 128 codes (exact in binary32)."""
    codes = np.arange(1 << E4M3_WIDTH)
    exp = codes >> E4M3_MAN_BITS
    man = codes & ((1 << E4M3_MAN_BITS) - 1)
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


# --- Units ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Unit:
    """What one MAC unit reads: its element kinds and what the scale's bit 7 means to it.

    ``element_kinds`` is ``("e2m1",)`` or ``("e2m1", "int4")``; a unit with INT4 elements
    reads the scale's INT flag and multiplies the scale product by ``expansion[0]`` when one
    block is INT4 and by ``expansion[1]`` when both are.
    """

    name: str
    element_kinds: tuple[str, ...]
    expansion: tuple[np.float32, np.float32] | None = None

    @property
    def reads_int_flag(self) -> bool:
        """Whether bit 7 of a scale byte selects INT4 elements for the block."""
        return "int4" in self.element_kinds

    @property
    def element_sig_max(self) -> int:
        """The largest element significand magnitude: 3 (E2M1 1.1b) or 8 (INT4's |-8|)."""
        return 8 if self.reads_int_flag else 3


#: The MAC units this toolkit models, by name.
UNIT_SPECS = {
    "nvfp4": Unit("nvfp4", ("e2m1",)),
    "if4": Unit("if4", ("e2m1", "int4"), (INT_EXPANSION, INT_EXPANSION_SQUARED)),
}
#: Their names, in a fixed order (CLI choices, report columns).
UNITS = tuple(UNIT_SPECS)


def unit_spec(unit) -> Unit:
    """The :class:`Unit` named ``unit`` (a :class:`Unit` passes through), else a one-line
    ``ValueError``."""
    if isinstance(unit, Unit):
        return unit
    spec = UNIT_SPECS.get(unit) if isinstance(unit, str) else None
    if spec is None:
        raise ValueError(f"unknown unit {unit!r}: expected one of {', '.join(UNITS)}")
    return spec


def check_unit(unit: str) -> str:
    """Return ``unit`` if it names a MAC unit, else raise a one-line ``ValueError``."""
    return unit_spec(unit).name


# --- Block geometry -------------------------------------------------------------------------

#: The NVFP4 / IF4 block: 16 elements share one scale byte.
DEFAULT_BLOCK_SIZE = 16
#: The one limit on block sizes (lanes B), everywhere: stimulus files, the RTL (``MacUnit``,
#: ``if4mac verilog``, ``sim``, ``synth``, ``report``) and golden. It is not an arithmetic
#: limit (docs/spec.md section 3 bounds a result by B * L * 2**24, far from binary32's 2**128);
#: it keeps runs bounded: the RTL has one lane multiplier, scaled-product multiplier and
#: accumulator per lane, so elaboration time and Verilog size grow with B (12 s / 1.4 MB at
#: B = 16, 19 s / 2.8 MB at 32, 48 s / 5.5 MB at 64 on the 2-core development machine), and
#: Verilator and synthesis grow faster. The formats' own block is 16; 64 leaves room for wider
#: datapaths. docs/errors.md lists this and every other limit.
MAX_BLOCK_SIZE = 64


def check_block_size(block_size, what: str = "block_size") -> int:
    """``block_size`` as an int if it is an integer in 1..:data:`MAX_BLOCK_SIZE`, else a
    one-line ``ValueError`` naming ``what`` and saying why."""
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
        raise ParameterTypeError(f"{what} must be a positive integer, got {block_size!r}")
    if block_size < 1:
        raise ValueError(f"{what}: {block_size} is outside 1..{MAX_BLOCK_SIZE} ({what} must be "
                         f"a positive integer)")
    if block_size > MAX_BLOCK_SIZE:
        raise ValueError(f"{what}: {block_size} is outside 1..{MAX_BLOCK_SIZE} (the toolkit's "
                         f"limit: RTL size and run time grow with B; see docs/errors.md)")
    return int(block_size)


# --- Scale and binary32 helpers -------------------------------------------------------------

def decode_scale(scale_bytes) -> np.ndarray:
    """Decoded E4M3 value (binary32) of scale bytes; bit 7 is ignored."""
    return E4M3_VALUES[np.asarray(scale_bytes, dtype=np.uint8) & (SCALE_INT_FLAG - 1)]


def scale_is_int(scale_bytes) -> np.ndarray:
    """True where a scale byte marks an INT4 block (only IF4 reads this)."""
    return (np.asarray(scale_bytes, dtype=np.uint8) & SCALE_INT_FLAG) != 0


def float32_bits(values) -> np.ndarray:
    """The IEEE 754 bit patterns of binary32 values, as uint32."""
    return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)


def float32_from_bits(bits) -> np.ndarray:
    """Binary32 values from their bit patterns."""
    return np.ascontiguousarray(bits, dtype=np.uint32).view(np.float32)


# --- Binary floating-point layouts ----------------------------------------------------------

@dataclass(frozen=True)
class FloatFormat:
    """An IEEE 754-style binary format with ``exp_bits`` exponent and ``man_bits`` fraction bits.

    The interchange layout ``sign | exponent | fraction`` with a biased exponent (bias
    ``2**(exp_bits-1) - 1``), the all-ones exponent reserved for infinities and NaNs and the
    all-zeros exponent for zeros and subnormals. ``FloatFormat(8, 23)`` is binary32,
    ``FloatFormat(5, 10)`` binary16, ``FloatFormat(5, 2)`` the OCP ``float8_e5m2``.

    Raises ``ValueError`` unless ``2 <= exp_bits <= 16`` and ``1 <= man_bits <= 128``
    (one fraction bit is the least that can tell a NaN from an infinity).
    """

    exp_bits: int
    man_bits: int

    def __post_init__(self):
        for field, lo, hi in (("exp_bits", 2, 16), ("man_bits", 1, 128)):
            value = getattr(self, field)
            wrong_type = not isinstance(value, int) or isinstance(value, bool)
            if wrong_type or not lo <= value <= hi:
                raise (ParameterTypeError if wrong_type else ValueError)(
                    f"FloatFormat {field} must be an integer in {lo}..{hi}, got {value!r}")

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
    def layout(self):
        """The packed interchange layout as an Amaranth ``data.StructLayout``, fraction in the
        low bits: fields ``man``, ``exp``, ``sign``."""
        from amaranth.lib import data    # the layer stays importable without Amaranth

        return data.StructLayout({"man": self.man_bits, "exp": self.exp_bits, "sign": 1})

    @property
    def qnan_bits(self) -> int:
        """The canonical quiet NaN: positive, fraction MSB set (0x7FC00000 for binary32)."""
        return (self.exp_all_ones << self.man_bits) | (1 << (self.man_bits - 1))


BINARY32 = FloatFormat(8, 23)
BINARY16 = FloatFormat(5, 10)
