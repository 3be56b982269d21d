"""The property registry: what ``if4mac formal`` proves, per architecture and block size.

An *architecture* is a family of MAC tops (``make(unit, block_size, reduction)``) with the
reductions it offers and the names of the registers that hold scale bytes (for one
induction lemma). Adding an architecture is one entry in :data:`ARCHITECTURES`: every
per-architecture property then applies to it. Each :class:`Property` states its claim in
one sentence (docs/formal.md repeats them) and builds its harness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from . import harness as H

__all__ = ["Architecture", "ARCHITECTURES", "Property", "properties", "Job"]


@dataclass(frozen=True)
class Architecture:
    name: str
    make: Callable            # make(unit, block_size, reduction) -> MAC top
    reductions: tuple[str, ...]
    scale_registers: tuple[str, ...]
    #: False where IF4 and NVFP4 tops differ by design beyond the unit's decode (e.g. in
    #: latency), so cycle-by-cycle equivalence is not the claim to make.
    equivalence: bool = True
    #: True for the fused-exact tops: a wide accumulator whose length `overflow` guards.
    exact_accumulator: bool = False
    #: True where hdl.compat's reference-interface wrapper applies (the reference tops).
    compat: bool = False


def _reference(unit, block_size, reduction):
    from if4mac.hdl.mac import mac_unit
    return mac_unit(unit, block_size, reduction)


def _fused(arch):
    def make(unit, block_size, reduction):
        from if4mac.hdl.fused import fused_mac
        return fused_mac(arch, unit, block_size)
    return make


ARCHITECTURES = {
    "reference": Architecture("reference", _reference, ("pipelined", "shared"),
                              ("a_sf0", "w_sf0"), compat=True),
    # Every result comes out (the fused tops' `reduction` is "pipelined").
    "fused-fp32": Architecture("fused-fp32", _fused("fused-fp32"), ("pipelined",),
                               ("a_sf0", "w_sf0")),
    # IF4's exact converter divides by 49 in two more stages than NVFP4's: latency 6 vs 4.
    "fused-exact": Architecture("fused-exact", _fused("fused-exact"), ("pipelined",),
                                ("a_sf0", "w_sf0"), equivalence=False,
                                exact_accumulator=True),
}

#: The segment length the overflow proofs state: the accumulator is the narrowest that holds
#: this many beats, so a counterexample (a segment one beat longer) is a few steps deep.
OVERFLOW_SEGMENT = 4


def overflow_acc_width(unit: str, block_size: int) -> int:
    """The narrowest accumulator whose stated length is at least :data:`OVERFLOW_SEGMENT`."""
    from if4mac.golden.fused import exact_beat_bound, exact_max_segment

    width = exact_beat_bound(unit, block_size).bit_length() + 1
    while exact_max_segment(unit, block_size, width) < OVERFLOW_SEGMENT:
        width += 1
    return width


@dataclass(frozen=True)
class Job:
    """One proof to run: its harness, induction depth and counterexample search depth."""

    harness: object
    depth: int
    cex_depth: int
    unit: str | None          # the MAC unit a counterexample's beats are for, if any
    block_size: int | None


@dataclass(frozen=True)
class Property:
    name: str
    statement: str
    build: Callable[[int], Job]     # build(block_size) -> Job
    block_sized: bool               # False: the same proof whatever the block size
    #: False: the solver gives no verdict in reasonable time (NOT_PROVEN says which and how
    #: long); run only when named with --property, never in the default set.
    closes: bool = True


def _equivalence(arch: Architecture, reduction: str) -> Property:
    def build(block_size):
        harness = H.UnitEquivalence(lambda unit: arch.make(unit, block_size, reduction),
                                    block_size, arch.scale_registers)
        # The bounded search behind an open induction covers a beat's whole way to `acc`.
        return Job(harness, 1, harness.latency + 3, "if4", block_size)
    return Property(
        f"equiv-{reduction}",
        f"The {arch.name} IF4 MAC ({reduction} reduction) with every scale byte's INT flag "
        f"forced to 0 is sequentially equivalent to the NVFP4 MAC: from reset, for every "
        f"beat stream, acc, done and overrun are equal on every cycle.",
        build, True)


def _control(arch: Architecture, reduction: str) -> Property:
    def build(block_size):
        top = arch.make("if4", block_size, reduction)
        harness = H.ControlHarness(top)
        depth = harness.induction_depth
        return Job(harness, depth, depth, "if4", block_size)
    if reduction == "pipelined":
        claim = ("raises done for exactly one cycle exactly latency edges after each closing "
                 "beat, and at no other time, so no result is ever lost; acc changes only "
                 "with done")
    else:
        claim = ("raises done exactly latency edges after each closing beat that comes at "
                 "least L cycles after the last accepted one (L tree levels) and at no other "
                 "time, and raises the sticky overrun exactly LANE_STAGE edges after the "
                 "first closing beat that does not; acc changes only with done")
    return Property(
        f"control-{reduction}",
        f"For every en/first/rst_n pattern and whatever values the FP units produce, the "
        f"{arch.name} MAC ({reduction} reduction) {claim}; a reset discards results in "
        f"flight.",
        build, True)


def _fp_modes(unit: str) -> Property:
    what = {"add": "FPAdd e8m23", "mul": "FPMul e5m10 x e8m23 -> e8m23"}[unit]
    extra = {"add": "", "mul": " and whose exact product is zero or at least 2**-126 in "
                               "magnitude (the multiplier's documented domain)"}[unit]

    def build(block_size):
        return Job(H.FPModeEquivalence(unit), 1, 0, None, None)
    return Property(
        f"fp{unit}-modes",
        f"{what} in reduced mode (ieee=False) returns the same bits as in IEEE mode for "
        f"every operand pair of zeros and normal numbers whose IEEE result is zero or "
        f"normal{extra}.",
        build, False)


def _product_range() -> Property:
    def build(block_size):
        return Job(H.ProductRange(), 1, 0, None, None)
    return Property(
        "fpmul-product",
        "The reduced FPMul e5m10 x e8m23's significand product is zero when an operand is "
        "zero and lies in [2**33, 2**35) when both are normal: what fpmul-modes assumes of "
        "the product it treats as a free value.",
        build, False)


def _overflow(arch: Architecture) -> Property:
    def build(block_size):
        from if4mac.hdl.fused import fused_mac
        top = fused_mac(arch.name, "if4", block_size,
                        acc_width=overflow_acc_width("if4", block_size))
        harness = H.OverflowHarness(top)
        return Job(harness, harness.induction_depth, harness.cex_depth, "if4", block_size)
    return Property(
        "overflow",
        f"For every beat stream with any en/first/rst_n pattern, the {arch.name} IF4 MAC "
        f"(accumulator of the narrowest width holding {OVERFLOW_SEGMENT} or more beats) raises "
        f"the sticky overflow exactly ACC_STAGE edges after the first beat that makes a "
        f"segment longer than its stated length (golden.exact_max_segment) and keeps it until "
        f"reset, marks exactly such segments' results NaN, and holds the exact unwrapped sum "
        f"of every segment within that length; assuming each beat's term is within "
        f"exact_beat_bound, which exact-term-bound proves.",
        build, True)


def _compat(arch: Architecture, reduction: str) -> Property:
    def build(block_size):
        harness = H.CompatWiring(arch.make("if4", block_size, reduction))
        return Job(harness, 1, 0, "if4", block_size)
    return Property(
        f"compat-{reduction}",
        f"The compat wrapper (hdl/compat.py, the reference interface with unpacked lane "
        f"arrays) around the {arch.name} IF4 core ({reduction} reduction) passes every input "
        f"to the core's pin of the same name, lane i of each array to bits [4i+3:4i], and "
        f"every core output to its own port, at every step and with no register: its ports "
        f"keep the core's timing edge for edge.",
        build, True)


def _exact_equivalence(arch: Architecture) -> Property:
    def build(block_size):
        harness = H.ExactUnitEquivalence(block_size, overflow_acc_width("nvfp4", block_size))
        # Depth 3: a term register's operands are fresh from the beat within it.
        return Job(harness, 3, harness.latency + 4, "if4", block_size)
    return Property(
        "equiv-accumulator",
        f"The {arch.name} IF4 MAC with every scale byte's INT flag forced to 0 and the NVFP4 "
        f"MAC (accumulators of the narrowest NVFP4 width holding {OVERFLOW_SEGMENT} or more "
        f"beats and 6 bits more for IF4, so the same stated length): from reset, for every "
        f"beat stream, overflow is equal on every cycle, the converters start on the same "
        f"cycles with the same NaN flag, and IF4's value is exactly 49 times NVFP4's; with "
        f"converter-equiv this is IF4's acc and done equal to NVFP4's two cycles later.",
        build, True, closes=False)


#: Accumulator width of the converter proof: what the solver closes in seconds (see
#: NOT_PROVEN: at the MAC's widths it gives no verdict).
CONVERTER_WIDTH = 12


def _converter_equivalence() -> Property:
    def build(block_size):
        return Job(H.ConverterEquivalence(CONVERTER_WIDTH), 5, 0, None, None)
    return Property(
        "converter-equiv",
        f"fused-exact's IF4 converter fed 49 A (a {CONVERTER_WIDTH + 6}-bit accumulator) "
        f"returns, two edges later, the same binary32 bits and valid as NVFP4's fed A (a "
        f"{CONVERTER_WIDTH}-bit accumulator), for every A but the most negative: "
        f"rne32(49 A 2^-20 / 49) == rne32(A 2^-20) through the real pipelines, at this width "
        f"only.",
        build, False)


#: What `if4mac formal --list` reports as not proven, per architecture, and why (measured
#: on the shared two-core machine at load average 13 to 18; docs/formal.md).
NOT_PROVEN = {
    "fused-exact": (
        "IF4 = NVFP4 (INT flags 0), acc and done two cycles apart. Split in three, none of "
        "which closes at the MAC's widths: converter-equiv (rne32(49 A 2^-20 / 49) == "
        "rne32(A 2^-20) through both converters) is proven at 12 bits, where neither "
        "window truncates, but gives no verdict in 900 s at 28 bits (the narrowest width at "
        "which both windows truncate and the sticky path is live) nor in 1,200 s at 47 "
        "bits (the B = 2 accumulator): a 32-step restoring /49 of a window of 49 A against "
        "A's own rounding is a division identity, which bit-blasting SMT solvers handle "
        "badly. equiv-accumulator (everything before the converters) passes its base case "
        "but its induction step gave no verdict in 900 s, and exact-term-scaled, the "
        "multiplier identity S (49 w) == 49 (S w) it assumes of ExactTerm, none in 600 s. "
        "Both run only when named (--property); the equivalence is covered by simulation "
        "against golden.",
    ),
}


def _term_bound(unit: str) -> Property:
    def build(block_size):
        return Job(H.ExactTermBound(unit, block_size), 1, 0, None, None)
    user = "overflow" if unit == "if4" else "equiv-accumulator"
    return Property(
        "exact-term-bound" + ("" if unit == "if4" else "-nvfp4"),
        f"Every beat's exact term (BlockDot, ScaleWeight, ExactTerm of the fused-exact "
        f"{unit.upper()} front end), for every element code{', INT flag' if unit == 'if4' else ''}"
        f" and scale byte, is at most golden.exact_beat_bound in magnitude: what {user} "
        f"assumes of the term it treats as a free value.",
        build, True)


def _term_scaled() -> Property:
    def build(block_size):
        return Job(H.ExactTermScaled(block_size), 1, 0, None, None)
    return Property(
        "exact-term-scaled",
        "For every beat, IF4's ExactTerm given NVFP4's S and shift and 49 times NVFP4's "
        "weight returns exactly 49 times NVFP4's term: what equiv-accumulator assumes of the "
        "IF4 term it derives from NVFP4's free one.",
        build, True, closes=False)


def properties(arch: str = "reference") -> dict[str, Property]:
    """Every property for ``arch``, by name, in the order ``if4mac formal`` runs them."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
    a = ARCHITECTURES[arch]
    found = {}
    for reduction in a.reductions:
        for prop in ((_equivalence(a, reduction),) if a.equivalence else ()) + (
                _control(a, reduction),):
            found[prop.name] = prop
    if a.compat:
        for reduction in a.reductions:
            prop = _compat(a, reduction)
            found[prop.name] = prop
    if a.exact_accumulator:
        for prop in (_overflow(a), _term_bound("if4"), _exact_equivalence(a),
                     _term_bound("nvfp4"), _term_scaled(), _converter_equivalence()):
            found[prop.name] = prop
    for prop in (_fp_modes("add"), _fp_modes("mul"), _product_range()):
        found[prop.name] = prop
    return found

