"""Proof harnesses: Amaranth designs that wrap the units under proof with ``Assert``/``Assume``.

Each harness is a ``wiring.Component`` whose ``In`` ports are the free inputs of the proof
(the solver picks them at every step) and whose body states the property with ``Assert``
(and the input domain with ``Assume``). Where an induction needs more than the property
itself, the harness also asserts *lemmas* about the units' registers: they are proven like
every other assertion, never assumed. The units are elaborated once into fragments
(:func:`elaborate`), so the harness can read their registers, pair them by hierarchical
name (:func:`registers`) and cut combinational FP units out (:func:`abstract_fp_units`).

Clocking: sby proves with one global clock (``multiclock off``), every register advancing
once per step, and turns asynchronous resets into ones that act within the step
(``async2sync``): with ``rst_n`` low in step t every register reads its reset value in step
t and holds it at t+1. Step t's inputs are the beat sampled at edge t. Every register starts
at its reset value (Amaranth's ``init``), i.e. the proofs start from a reset design.
"""

from __future__ import annotations


from amaranth.hdl import Assert, Assume, ClockDomain, ClockSignal, Const, Fragment, Mux, \
    Module, ResetSignal, Signal, Value, signed
from amaranth.hdl._ast import SignalSet   # the registers' set type: no public API
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from if4mac.hdl.fp import BINARY16, BINARY32, FloatFormat, FPAdd, FPMul
from if4mac.hdl.lane_mul import ELEMENT_WIDTH
from if4mac.hdl.mac import LANE_STAGE
from if4mac.hdl.scale_mul import INT_FLAG_BIT, SCALE_WIDTH

__all__ = [
    "elaborate", "registers", "find_signal", "abstract_fp_units", "zero_or_normal",
    "check", "FPModeEquivalence", "ProductRange", "product_facts", "UnitEquivalence",
    "ControlHarness", "MacInputs",
]


# --- Looking inside elaborated units --------------------------------------------------------

def elaborate(elaboratable) -> Fragment:
    """The elaborated fragment tree of a unit (its signals stay the unit's own objects)."""
    return Fragment.get(elaboratable, None)


def _walk(fragment: Fragment, path=()):
    yield path, fragment
    for sub, name, _ in fragment.subfragments:
        yield from _walk(sub, path + (name,))


def registers(fragment: Fragment) -> dict[tuple[str, ...], Signal]:
    """Every register of a fragment tree, keyed by (submodule path..., signal name)."""
    found = {}
    for path, frag in _walk(fragment):
        driven = SignalSet()
        for domain, statements in frag.statements.items():
            if domain == "comb":
                continue
            for statement in statements:
                driven |= statement._lhs_signals()
        for signal in driven:
            found[path + (signal.name,)] = signal
    return found


def find_signal(fragment: Fragment, *path: str) -> Signal:
    """A register by its path, or a ValueError naming it (a renamed RTL signal shows here)."""
    try:
        return registers(fragment)[path]
    except KeyError:
        raise ValueError(f"the unit has no register {'.'.join(path)!r}; the harness "
                         f"needs it for an induction lemma") from None


#: FP units the control proofs replace by free values, with the reason each may be: every
#: one is combinational (latency 0), so a free output of the same shape at every step is a
#: superset of what the unit can do.
ABSTRACTABLE = (FPAdd, FPMul)


def _cut_fp_units(fragment: Fragment) -> dict[tuple[str, ...], object]:
    """Remove every FP adder and multiplier from a fragment tree (in place), by path."""
    cut = {}
    for path, frag in list(_walk(fragment)):
        kept = []
        for sub, name, loc in frag.subfragments:
            unit = sub.origins[0] if sub.origins else None
            if isinstance(unit, ABSTRACTABLE):
                if unit.latency != 0:
                    raise ValueError(f"{'.'.join(path + (name,))}: latency {unit.latency}, "
                                     f"only combinational units can be cut")
                cut[path + (name,)] = unit
            else:
                kept.append((sub, name, loc))
        frag.subfragments[:] = kept
    return cut


def _ports(unit, flow):
    return [getattr(unit, name) for name, member in unit.signature.members.items()
            if member.is_port and member.flow == flow]


def abstract_fp_units(fragment: Fragment) -> list[Signal]:
    """Cut every FP adder and multiplier out of a fragment tree (in place).

    Returns the cut units' output ports: the caller drives each from a free input of the
    harness, a value the solver picks anew at every step. Sound for properties that hold
    for *every* value those outputs could take: each unit is combinational (checked:
    ``latency == 0``), and its replacement drives the same ``Out`` ports with the same
    shapes, so every behaviour of the real design is a behaviour of the abstract one.
    """
    return [port for unit in _cut_fp_units(fragment).values()
            for port in _ports(unit, wiring.Out)]


def check(m: Module, name: str, condition) -> None:
    """``Assert(condition)`` through a signal called ``name``, so a failure names it."""
    ok = Signal(name=name)
    m.d.comb += [ok.eq(condition), Assert(ok)]


def _both_tops_flags_clear(m: Module, harness, if4, nvfp4, if4_frag, nv_frag) -> None:
    """The equivalence harnesses' set-up: the harness clock and reset, the IF4 and NVFP4
    tops (as their fragments), both driven with the same beats and bit 7 of every scale
    byte (IF4's INT flag) cleared."""
    _harness_domain(m, harness)
    m.submodules.if4 = if4_frag
    m.submodules.nvfp4 = nv_frag
    flag_clear = ~Const(1 << INT_FLAG_BIT, SCALE_WIDTH)
    for top in (if4, nvfp4):
        _drive_mac(m, harness, top, a_sf=harness.a_sf & flag_clear,
                   w_sf=harness.w_sf & flag_clear)


def _sticky_after(m: Module, trigger, stages: int, name: str) -> Signal:
    """A sticky flag the harness expects: set ``stages`` edges after a step with ``trigger``
    high (so high from ``stages + 1`` steps on), cleared only by the harness's reset."""
    delayed = trigger
    for k in range(1, stages + 1):
        stage = Signal(name=f"{name}_{k}")
        m.d.sync += stage.eq(delayed)
        delayed = stage
    expect = Signal(name=f"{name}_expected")
    with m.If(delayed):
        m.d.sync += expect.eq(1)
    return expect


def zero_or_normal(fmt: FloatFormat, bits) -> "Value":
    """True for a zero or a normal number (not subnormal, infinite or NaN) in ``fmt``."""
    packed = data.View(fmt.layout, bits)
    return (packed.exp != fmt.exp_all_ones) & ((packed.exp != 0) | (packed.man == 0))


# --- FP units: reduced mode against IEEE mode ------------------------------------------------

class FPModeEquivalence(wiring.Component):
    """``ieee=False`` equals ``ieee=True`` for one FP unit on the reduced domain.

    Assumes both operands are zero or normal and the IEEE result is zero or normal (so no
    overflow to infinity and no subnormal), and for the multiplier that the exact product
    is zero or at least ``2**emin`` in magnitude (its documented domain); asserts the two
    results are equal bit for bit.
    Combinational: the assertion holds at every step, so a one-step induction proves it for
    all operand pairs.

    Cut points, to keep the solver off two copies of the same wide datapath: named wires
    of the IEEE unit are driven from the reduced unit's wire of the same name, and a lemma
    asserts that the IEEE unit's own logic computes the same value there (so the cut is
    proven, not assumed). For the adder that is the aligned smaller significand
    (``align_spread``) and the significand sum (``total``), equal for every operand pair in
    the domain (a zero operand decodes to a different exponent in the two modes, but to
    the same significand, 0). For the multiplier, ``free_product``: the significand
    product of both units is one free value and a lemma asserts the two multipliers'
    operands are equal; as for the control proofs this over-approximates a multiplier (any
    product value at all), so a PASS covers the real one, and the multiplier itself is
    left to the exhaustive-per-exponent simulation tests.
    """

    #: The adder's cut points, in dataflow order.
    ADD_CUTS = ("align_spread", "total")

    def __init__(self, unit: str, *, cuts: bool = True, domain: bool = True):
        if unit not in ("add", "mul"):
            raise ValueError(f"FPModeEquivalence unit must be 'add' or 'mul', got {unit!r}")
        self._unit = unit
        self._cuts = cuts
        # False drops the operand assumption (add) or the exact-product one (mul): a
        # deliberately wrong property, for the tests that show a proof can fail.
        self._domain = domain
        self.a_fmt = BINARY32 if unit == "add" else BINARY16
        self.b_fmt = self.out_fmt = BINARY32
        ports = {"a": In(self.a_fmt.width), "b": In(self.b_fmt.width)}
        if unit == "mul" and cuts:
            ports["free_product"] = In(self.a_fmt.precision + self.b_fmt.precision)
        super().__init__(ports)

    def _make(self, ieee: bool):
        if self._unit == "add":
            return FPAdd(BINARY32, ieee=ieee)
        return FPMul(BINARY16, BINARY32, BINARY32, ieee=ieee)

    def elaborate(self, platform):
        m = Module()
        reduced, ieee = self._make(False), self._make(True)
        red_frag, ieee_frag = elaborate(reduced), elaborate(ieee)
        m.submodules.reduced = red_frag
        m.submodules.ieee = ieee_frag
        for unit in (reduced, ieee):
            m.d.comb += [unit.a.eq(self.a), unit.b.eq(self.b)]
        m.d.comb += Assume(zero_or_normal(self.out_fmt, ieee.result))
        if self._domain or self._unit == "mul":
            m.d.comb += [Assume(zero_or_normal(self.a_fmt, self.a)),
                         Assume(zero_or_normal(self.b_fmt, self.b))]
        if self._unit == "mul" and self._domain:
            # The multiplier's documented domain also needs the exact product to be zero or
            # at least 2**emin: one just below that may round up to the smallest normal in
            # IEEE mode, which reduced mode does not do. The unrounded exponent says which.
            exact = _subunit(ieee_frag, "round").raw
            m.d.comb += Assume(exact.is_zero | (exact.exp >= self.out_fmt.emin))
        check(m, "reduced_equals_ieee", reduced.result == ieee.result)
        if self._cuts and self._unit == "add":
            for name in self.ADD_CUTS:
                red_wire = _wire_statement(red_frag, name).lhs
                ieee_wire, ieee_logic = _take_wire(ieee_frag, name)
                own = Signal.like(ieee_wire, name=f"ieee_{name}")
                m.d.comb += [own.eq(ieee_logic), ieee_wire.eq(red_wire)]
                check(m, f"lemma_{name}", own == red_wire)
        elif self._cuts:
            for frag in (red_frag, ieee_frag):
                product, _ = _take_wire(frag, "product")
                m.d.comb += product.eq(self.free_product)
            # The multipliers' operands: each unit's decoded significands.
            sigs = []
            for name in ("decode_a", "decode_b"):
                red_dec = _subunit(red_frag, name)
                ieee_dec = _subunit(ieee_frag, name)
                check(m, f"lemma_{name}_sig", red_dec.raw.sig == ieee_dec.raw.sig)
                sigs.append(red_dec.raw.sig)
            # What a real multiplier's product is known to be (ProductRange proves it).
            m.d.comb += Assume(product_facts(*sigs, self.free_product))
        return m


def product_facts(sig_a, sig_b, product):
    """What the FP multiplier's significand product is, as far as rounding needs: zero if
    an operand's significand is zero, and with one of its top two bits set if both are
    normalised (top bit set), i.e. in [2**(W-2), 2**W)."""
    top = len(product) - 1
    normalised = sig_a[-1] & sig_b[-1]
    zero = (sig_a == 0) | (sig_b == 0)
    return (~zero | (product == 0)) & (~normalised | product[top] | product[top - 1])


class ProductRange(wiring.Component):
    """The reduced FPMul e5m10 x e8m23's significand product satisfies :func:`product_facts`
    for every operand pair of zeros and normal numbers: the assumption the multiplier mode
    proof makes about it, proven on the real multiplier."""

    def __init__(self):
        super().__init__({"a": In(BINARY16.width), "b": In(BINARY32.width)})

    def elaborate(self, platform):
        m = Module()
        unit = FPMul(BINARY16, BINARY32, BINARY32, ieee=False)
        frag = elaborate(unit)
        m.submodules.mul = frag
        m.d.comb += [unit.a.eq(self.a), unit.b.eq(self.b),
                     Assume(zero_or_normal(BINARY16, self.a)),
                     Assume(zero_or_normal(BINARY32, self.b))]
        product = _wire_statement(frag, "product").lhs
        check(m, "product_facts", product_facts(_subunit(frag, "decode_a").raw.sig,
                                                _subunit(frag, "decode_b").raw.sig, product))
        return m


def _subunit(frag, name):
    return next(sub for sub, n, _ in frag.subfragments if n == name).origins[0]


def _wire_statement(frag, name):
    """The statement driving the wire ``name`` (made by ``fp._signals.wire``) in a unit."""
    for statement in frag.statements["comb"]:
        if isinstance(statement.lhs, Signal) and statement.lhs.name == name:
            return statement
    raise ValueError(f"{type(frag.origins[0]).__name__} has no wire {name!r}; the harness "
                     f"cuts there")


def _take_wire(frag, name):
    """Remove the statement driving the wire ``name``: returns the wire and its value."""
    statement = _wire_statement(frag, name)
    frag.statements["comb"].remove(statement)
    return statement.lhs, statement.rhs


# --- MAC tops --------------------------------------------------------------------------------

def MacInputs(block_size: int) -> dict:
    """The MAC's input ports, as inputs of a harness (sby ignores ``clk``: one step, one edge)."""
    return {
        "clk": In(1), "rst_n": In(1), "en": In(1), "first": In(1),
        "a_in": In(data.ArrayLayout(ELEMENT_WIDTH, block_size)), "a_sf": In(SCALE_WIDTH),
        "w_in": In(data.ArrayLayout(ELEMENT_WIDTH, block_size)), "w_sf": In(SCALE_WIDTH),
    }


def _drive_mac(m, harness, mac, *, a_sf=None, w_sf=None):
    m.d.comb += [
        mac.clk.eq(ClockSignal()), mac.rst_n.eq(harness.rst_n),
        mac.en.eq(harness.en), mac.first.eq(harness.first),
        mac.a_in.eq(harness.a_in), mac.w_in.eq(harness.w_in),
        mac.a_sf.eq(harness.a_sf if a_sf is None else a_sf),
        mac.w_sf.eq(harness.w_sf if w_sf is None else w_sf),
    ]


def _harness_domain(m, harness):
    """The harness's own registers: one clock with the MAC, the same asynchronous reset."""
    m.domains.sync = ClockDomain(async_reset=True)
    m.d.comb += [ClockSignal().eq(harness.clk), ResetSignal().eq(~harness.rst_n)]


class UnitEquivalence(wiring.Component):
    """IF4 with every INT flag forced to 0 is sequentially equivalent to NVFP4.

    Both tops get the same beats, with bit 7 of every scale byte (IF4's INT flag) cleared.
    Asserts equal ``acc``, ``done`` (and ``overrun``) at every step.

    The FP units are one uninterpreted function per position: the IF4 and the NVFP4 unit
    at the same path take one shared free output value, and a lemma asserts their inputs
    are equal. Real units are deterministic, so equal inputs give equal outputs and the
    abstract miter follows the real one step for step; the proof holds for any FP units,
    the real ones included, as long as both tops use the same (checked: same paths, types
    and signatures). What differs between the tops, the lane and scale multipliers, stays
    concrete. Lemmas: every register of one top equals the register of the same name in
    the other (both are built from the same pieces), which makes the property 1-inductive.

    ``make(unit)`` builds a top (e.g. ``lambda unit: mac_unit(unit, 16, "pipelined")``).
    ``scale_registers`` names the IF4 top's registers that hold scale bytes: one more lemma
    says their INT flag bit is 0 (else an unreachable state with a flag set there would
    break the induction).
    """

    def __init__(self, make, block_size: int, scale_registers=()):
        self._block_size = block_size
        self._scale_registers = tuple(scale_registers)
        self._if4, self._nvfp4 = make("if4"), make("nvfp4")
        self._if4_frag, self._nv_frag = elaborate(self._if4), elaborate(self._nvfp4)
        if4_units, nv_units = _cut_fp_units(self._if4_frag), _cut_fp_units(self._nv_frag)
        if set(if4_units) != set(nv_units):
            raise ValueError("the IF4 and NVFP4 tops have different FP units: "
                             + ", ".join(".".join(p) for p in set(if4_units) ^ set(nv_units)))
        self._fp_pairs = [(if4_units[p], nv_units[p]) for p in sorted(if4_units)]
        for a, b in self._fp_pairs:
            if a.signature != b.signature or type(a) is not type(b) or a.name != b.name:
                raise ValueError(f"FP units {a.name} and {b.name} differ")
        free = sum(len(Value.cast(port)) for a, _ in self._fp_pairs
                   for port in _ports(a, wiring.Out))
        super().__init__({**MacInputs(block_size), "fp_free": In(free)})

    @property
    def latency(self) -> int:
        return self._if4.latency

    def elaborate(self, platform):
        m = Module()
        if4, nvfp4, if4_frag, nv_frag = self._if4, self._nvfp4, self._if4_frag, self._nv_frag
        _both_tops_flags_clear(m, self, if4, nvfp4, if4_frag, nv_frag)
        check(m, "acc_equal", if4.acc == nvfp4.acc)
        check(m, "done_equal", if4.done == nvfp4.done)
        if hasattr(if4, "overrun"):
            check(m, "overrun_equal", if4.overrun == nvfp4.overrun)
        if4_regs, nv_regs = registers(if4_frag), registers(nv_frag)
        unpaired = set(if4_regs) ^ set(nv_regs)
        for path in sorted(set(if4_regs) & set(nv_regs)):
            a, b = if4_regs[path], nv_regs[path]
            if a.shape() == b.shape():
                check(m, "lemma_" + "_".join(path), a == b)
            else:
                unpaired.add(path)
        self.unpaired = sorted(".".join(p) for p in unpaired)
        # The FP units, as one uninterpreted function per position: both tops' units at a
        # position take the same free output value, and their inputs must be equal (lemma).
        offset = 0
        for k, (a, b) in enumerate(self._fp_pairs):
            for port_a, port_b in zip(_ports(a, wiring.Out), _ports(b, wiring.Out)):
                width = len(Value.cast(port_a))
                value = self.fp_free[offset:offset + width]
                m.d.comb += [port_a.eq(value), port_b.eq(value)]
                offset += width
            for i, (port_a, port_b) in enumerate(zip(_ports(a, wiring.In), _ports(b, wiring.In))):
                check(m, f"lemma_fp{k}_in{i}", port_a == port_b)
        for name in self._scale_registers:
            reg = find_signal(if4_frag, *name.split("."))
            check(m, f"lemma_{name.replace('.', '_')}_flag_clear", ~reg[INT_FLAG_BIT])
        return m


class ControlHarness(wiring.Component):
    """The timing contract of a MAC top, against a model of its ports only.

    The model: a beat is a *closing beat* when ``en=1``, ``first=1`` and an enabled beat
    came since reset. ``pipelined``: ``done`` is high exactly ``latency`` steps after each
    closing beat and never otherwise, and ``acc`` changes only with ``done`` (or reset).
    ``shared``: the same for the closing beats the tree *accepts*, which are those at least
    ``L`` steps after the last accepted one (L = tree levels); ``overrun`` is low until
    ``LANE_STAGE`` steps after the first refused closing beat and high from then on. A reset
    clears the model: results in flight are gone, as the RTL clears every register.

    ``abstract``: the FP units are cut (:func:`abstract_fp_units`): the contract is about
    control, and it must hold whatever values the datapath carries.

    Induction lemma: the top's ``segment_open`` register equals the model's "an enabled beat
    came since reset" delayed by ``LANE_STAGE`` steps (the only state of the top that no
    output shows until a closing beat comes, so no depth of induction would otherwise see it).
    """

    def __init__(self, top, *, abstract: bool = True):
        self._top = top
        self._frag = elaborate(top)
        self._cut = abstract_fp_units(self._frag) if abstract else []
        free = sum(len(Value.cast(port)) for port in self._cut)
        super().__init__({**MacInputs(top.block_size),
                          **({"fp_free": In(free)} if free else {})})

    @property
    def unit(self):
        return self._top.unit

    @property
    def induction_depth(self) -> int:
        """Steps after which every other register of the top is a function of the inputs."""
        return self._top.latency + self._levels + 2

    @property
    def _levels(self):
        from if4mac.golden import tree_levels
        return tree_levels(self._top.block_size)

    def elaborate(self, platform):
        m = Module()
        _harness_domain(m, self)
        top, frag = self._top, self._frag
        m.submodules.dut = frag
        offset = 0
        for port in self._cut:
            width = len(Value.cast(port))
            m.d.comb += port.eq(self.fp_free[offset:offset + width])
            offset += width
        _drive_mac(m, self, top)

        seen = Signal()                     # an enabled beat since reset
        with m.If(self.en):
            m.d.sync += seen.eq(1)
        closing = Signal()
        m.d.comb += closing.eq(self.en & self.first & seen)

        shared = top.reduction == "shared"
        L = self._levels
        if shared and L > 1:
            # Steps since the last accepted closing beat, saturating at L (idle).
            age = Signal(range(L + 1), init=L)
            accepted = Signal()
            refused = Signal()
            m.d.comb += [accepted.eq(closing & (age >= L)), refused.eq(closing & (age < L))]
            with m.If(accepted):
                m.d.sync += age.eq(1)
            with m.Elif(age < L):
                m.d.sync += age.eq(age + 1)
        else:
            accepted, refused = closing, Const(0)

        # `done` is high in the step after edge E + latency for a closing beat sampled at
        # edge E, the end of its own step: latency + 1 steps later.
        delay = [accepted]
        for k in range(1, top.latency + 2):
            stage = Signal(name=f"expect_done_{k}")
            m.d.sync += stage.eq(delay[-1])
            delay.append(stage)
        check(m, "done_timing", top.done == delay[-1])

        # `acc` changes only when `done` says so.
        acc_before = Signal.like(top.acc, name="acc_before")
        m.d.sync += acc_before.eq(top.acc)
        check(m, "acc_held", top.done | (top.acc == acc_before))

        if shared:
            # `overrun` rises at edge E + LANE_STAGE: high from LANE_STAGE + 1 steps on.
            expect_overrun = _sticky_after(m, refused, LANE_STAGE, "refused")
            check(m, "overrun_exact", top.overrun == expect_overrun)

        # Lemma: the top's segment_open is `seen`, LANE_STAGE steps late.
        seen_delay = [seen]
        for k in range(1, LANE_STAGE + 1):
            stage = Signal(name=f"seen_{k}")
            m.d.sync += stage.eq(seen_delay[-1])
            seen_delay.append(stage)
        check(m, "lemma_segment_open", find_signal(frag, "segment_open") == seen_delay[-1])
        return m


# --- fused-exact: the accumulator's stated length ---------------------------------------------

def _cut_unit(fragment: Fragment, name: str, kind: type):
    """Remove the combinational child ``name`` (of type ``kind``) of a fragment; returns the
    unit, whose ``Out`` ports the caller drives."""
    for i, (sub, sub_name, _) in enumerate(fragment.subfragments):
        unit = sub.origins[0] if sub.origins else None
        if sub_name == name:
            if not isinstance(unit, kind) or unit.latency != 0:
                raise ValueError(f"{name}: expected a combinational {kind.__name__}")
            del fragment.subfragments[i]
            return unit
    raise ValueError(f"the unit has no child {name!r}; the harness cuts there")


def _signed_abs_le(value, bound: int):
    """``|value| <= bound`` for a signed value (as integers, no wrap)."""
    return (value <= bound) & (value >= -bound)


def _signed_abs_le_var(value, bound):
    """``|value| <= bound`` for a signed value and a non-negative expression."""
    return (value <= bound) & (value >= -bound)


class ExactTermBound(wiring.Component):
    """Every beat's term is at most ``golden.exact_beat_bound(unit, B)`` in magnitude.

    The fused-exact front end as :class:`~if4mac.hdl.fused.FusedExactMac` wires it, without
    its pipeline registers: a beat's elements and scale bytes (any values at all) into
    ``BlockDot`` and ``ScaleWeight``, their ``s``, ``weight`` and ``shift`` into
    ``ExactTerm``. The top registers those three together from one registered beat (reset:
    the all-zero beat, also an input), so every term the accumulator can receive is one of
    this harness's. Combinational: a one-step induction proves it for every input.
    """

    def __init__(self, unit: str, block_size: int):
        self._unit, self._block_size = unit, block_size
        super().__init__({"a_in": In(data.ArrayLayout(ELEMENT_WIDTH, block_size)),
                          "w_in": In(data.ArrayLayout(ELEMENT_WIDTH, block_size)),
                          "a_sf": In(SCALE_WIDTH), "w_sf": In(SCALE_WIDTH)})

    def elaborate(self, platform):
        from if4mac.golden.fused import exact_beat_bound
        from if4mac.hdl.block_dot import BlockDot
        from if4mac.hdl.fused import ExactTerm, ScaleWeight

        m = Module()
        m.submodules.dot = dot = BlockDot(self._unit, self._block_size)
        m.submodules.scale_weight = sw = ScaleWeight(self._unit)
        m.submodules.term = term = ExactTerm(self._unit, self._block_size, len(sw.weight))
        m.d.comb += [dot.a.eq(self.a_in), dot.w.eq(self.w_in),
                     sw.a_sf.eq(self.a_sf), sw.w_sf.eq(self.w_sf),
                     term.s.eq(dot.s), term.weight.eq(sw.weight), term.shift.eq(sw.shift)]
        if self._unit == "if4":
            m.d.comb += [dot.a_int.eq(self.a_sf[INT_FLAG_BIT]),
                         dot.w_int.eq(self.w_sf[INT_FLAG_BIT])]
        check(m, "term_bound",
              _signed_abs_le(term.term, exact_beat_bound(self._unit, self._block_size)))
        return m


class OverflowHarness(wiring.Component):
    """fused-exact's ``overflow``: raised exactly when a segment exceeds its stated length.

    The stated length is ``M = golden.exact_max_segment(unit, B, acc_width)`` (computed by
    golden from the bound, not read from the RTL). The model, from the ports only: the
    beats of the current segment, ``n`` (0 after reset; an enabled beat with ``first=1``, or
    the first enabled beat since reset, starts a segment at 1; every other adds one). A
    beat that makes ``n`` exceed ``M`` is *too many*.

    Asserted:

    * ``overflow_exact``: ``overflow`` is low until ``ACC_STAGE`` edges after the first
      beat too many since reset (the edge that beat reaches the accumulator), and high
      from then until reset.
    * ``exact_sum``: while the segment at the accumulator has at most ``M`` beats, its
      ``acc_width``-bit register holds the exact (unwrapped) sum of the segment's terms,
      i.e. the stated length is one the accumulator really holds. The reference sum is a
      register one bit wider than the accumulator, fed the same terms.
    * ``nan_marked``: the segment's NaN flag (``segment_overflow``, which makes its result
      the quiet NaN) is set exactly when it has more than ``M`` beats.

    Abstraction: the beat's term (``ExactTerm``, combinational) is a free value of at most
    ``exact_beat_bound`` in magnitude at every step, the bound :class:`ExactTermBound`
    proves of the real front end; so every behaviour of the real top is one of this
    harness's. Induction lemmas: the accumulator's beat counter is the model's ``n``
    (capped at ``M``) ``ACC_STAGE`` steps late, the registered term is within the bound,
    and the reference sum is at most ``count * bound`` in magnitude.
    """

    def __init__(self, top, *, stated_length: int | None = None):
        from if4mac.golden.fused import exact_beat_bound, exact_max_segment
        from if4mac.hdl.fused import ExactTerm

        self._top = top
        self._frag = elaborate(top)
        self._term = _cut_unit(self._frag, "beat_term", ExactTerm)
        self._bound = exact_beat_bound(top.unit, top.block_size)
        # A deliberately wrong stated length is for the tests that show the proof can fail.
        self.stated_length = (exact_max_segment(top.unit, top.block_size, top.acc_width)
                              if stated_length is None else stated_length)
        super().__init__({**MacInputs(top.block_size),
                          "term_free": In(signed(self._term.term_width))})

    @property
    def unit(self):
        return self._top.unit

    @property
    def induction_depth(self) -> int:
        from if4mac.hdl.fused import ACC_STAGE
        return ACC_STAGE + 2

    @property
    def cex_depth(self) -> int:
        """Steps from reset to a segment one beat too long reaching the accumulator, and one."""
        from if4mac.hdl.fused import ACC_STAGE
        return self.stated_length + ACC_STAGE + 4

    def elaborate(self, platform):
        from if4mac.hdl.fused import ACC_STAGE

        m = Module()
        _harness_domain(m, self)
        top, frag, M, bound = self._top, self._frag, self.stated_length, self._bound
        m.submodules.dut = frag
        m.d.comb += [self._term.term.eq(self.term_free),
                     Assume(_signed_abs_le(self.term_free, bound))]
        _drive_mac(m, self, top)

        # The model: n, the beats of the segment (saturating at M + 1; 0 until the first
        # enabled beat since reset).
        n = Signal(range(M + 2))
        too_many = Signal()
        m.d.comb += too_many.eq(self.en & ~self.first & (n >= M))
        with m.If(self.en):
            with m.If(self.first | (n == 0)):
                m.d.sync += n.eq(1)
            with m.Elif(n <= M):
                m.d.sync += n.eq(n + 1)

        # `overflow` rises at edge E + ACC_STAGE of the first beat too many: high from
        # ACC_STAGE + 1 steps on, until reset.
        expect = _sticky_after(m, too_many, ACC_STAGE, "too_many")
        check(m, "overflow_exact", top.overflow == expect)

        # n as the accumulator sees it: its registers change at edge E + ACC_STAGE.
        n_acc = n
        for k in range(1, ACC_STAGE + 1):
            stage = Signal.like(n, name=f"n_{k}")
            m.d.sync += stage.eq(n_acc)
            n_acc = stage
        count = find_signal(frag, "accumulator", "count")
        segment_overflow = find_signal(frag, "accumulator", "segment_overflow")
        acc_reg = find_signal(frag, "accumulator", "acc")
        check(m, "nan_marked", segment_overflow == (n_acc > M))
        check(m, "lemma_count", count == Mux(n_acc > M, M, n_acc))

        # The reference sum of the segment's terms, one bit wider than the accumulator, fed
        # what the accumulator is fed; it stops with the segment's first beat too many.
        load = self._term_input(frag, "load")
        first = self._term_input(frag, "first")
        term_in = self._term_input(frag, "term")
        ref = Signal(signed(len(acc_reg) + 1))
        with m.If(load):
            with m.If(first):
                m.d.sync += ref.eq(term_in)
            with m.Elif(count < M):
                m.d.sync += ref.eq(ref + term_in)
        check(m, "exact_sum", segment_overflow | (acc_reg == ref))
        check(m, "lemma_term_bound", _signed_abs_le(term_in, bound))
        check(m, "lemma_ref_bound", (ref <= count * bound) & (ref >= -(count * bound)))
        return m

    def _term_input(self, frag, port):
        acc_unit = _subunit(frag, "accumulator")
        return getattr(acc_unit, port)


class ConverterEquivalence(wiring.Component):
    """fused-exact's IF4 conversion of ``49 * A`` equals NVFP4's conversion of ``A``, two
    edges later: ``rne32(49 A 2^-20 / 49) == rne32(A 2^-20)`` through the real pipelines
    (IF4's 32-bit window, restoring /49 and sticky remainder; NVFP4's 26-bit window).

    ``A`` is any ``width``-bit two's complement value but the most negative (the
    converters' domain); the IF4 converter is 6 bits wider (49 < 2^6), as golden's default
    widths are."""

    def __init__(self, width: int, *, lag: int | None = None):
        # ``lag``: edges IF4's result is claimed to trail NVFP4's, by default the difference
        # of the two converters' latencies; another value is a deliberately wrong property,
        # for the test that shows the proof can fail.
        from if4mac.hdl.fused import ExactToBinary32

        if lag is None:
            lag = ExactToBinary32(width + 6, 49).latency - ExactToBinary32(width, 1).latency
        self._width, self._lag = width, lag
        super().__init__({"clk": In(1), "rst_n": In(1), "value": In(signed(width)),
                          "nan": In(1), "start": In(1)})

    def elaborate(self, platform):
        from if4mac.hdl.fused import ExactToBinary32

        m = Module()
        _harness_domain(m, self)
        m.submodules.if4 = if4 = ExactToBinary32(self._width + 6, 49)
        m.submodules.nv = nv = ExactToBinary32(self._width, 1)
        # |A| <= 2^(width-1) - 1: the accumulator's beat counter keeps it there (overflow).
        m.d.comb += Assume(self.value != -(1 << (self._width - 1)))
        for conv, value in ((if4, self.value * 49), (nv, self.value)):
            m.d.comb += [conv.value.eq(value), conv.nan.eq(self.nan), conv.start.eq(self.start)]
        late_valid, late_result = nv.valid, nv.result
        for k in range(self._lag):
            valid, result = Signal(name=f"nv_valid_{k + 1}"), Signal(32, name=f"nv_result_{k + 1}")
            m.d.sync += [valid.eq(late_valid), result.eq(late_result)]
            late_valid, late_result = valid, result
        check(m, "valid_equal", if4.valid == late_valid)
        check(m, "result_equal", ~if4.valid | (if4.result == late_result))
        return m


# --- The compat wrapper (SystemVerilog, read with read_slang) ---------------------------------

class CompatWiring:
    """The compat wrapper (``hdl.compat.compat_wrapper``) keeps the core's timing: it is
    wiring only.

    Not an Amaranth design: the wrapper is SystemVerilog with unpacked array ports, which
    Yosys's own ``read_verilog -sv`` rejects; Yosys's bundled slang front end
    (``read_slang``, single-threaded under WebAssembly: ``-j 1``) reads it. The miter
    ``harness`` takes the lanes as packed vectors (lane i at ``[4i+3:4i]``, the spec's
    order), hands them to the wrapper as its unpacked arrays, and asserts at every step,
    through hierarchical references into the wrapper's core instance ``u_core``, that every
    input pin of the core carries the matching wrapper input (the lanes packed in order)
    and every wrapper output (and, for the shared core, the internal ``overrun``) is the
    core's output pin. The assertions involve no register, so they hold at every step of
    every trace: the wrapper's ports behave exactly as the core's, edge for edge, and the
    control properties proven on the core hold at the wrapper's ports.

    ``wrapper`` replaces the wrapper's text (the tests' mutants).
    """

    def __init__(self, core, *, wrapper: str | None = None):
        from if4mac.hdl.compat import compat_module_name, compat_wrapper
        from if4mac.hdl.mac import mac_verilog

        self.core = core
        self.unit = core.unit
        self.block_size = core.block_size
        self.sources = {
            "core.v": mac_verilog(core),
            "compat.sv": compat_wrapper(core) if wrapper is None else wrapper,
            "harness.sv": self._miter(core, compat_module_name(core.unit)),
        }
        self.read_script = (f"read_slang -j 1 --top harness {' '.join(self.sources)}")

    @staticmethod
    def _miter(core, name: str) -> str:
        B, ew = core.block_size, ELEMENT_WIDTH
        widths = core.port_widths
        lanes = "\n".join(
            f"  assign a_arr[{i}] = a_in[{ew * i + ew - 1}:{ew * i}];\n"
            f"  assign w_arr[{i}] = w_in[{ew * i + ew - 1}:{ew * i}];" for i in range(B))
        checks = [("clk", "clk"), ("rst_n", "rst_n"), ("en", "en"), ("first", "first"),
                  ("a_in", "a_in"), ("w_in", "w_in"), ("a_sf", "a_sf"), ("w_sf", "w_sf")]
        lines = [f"    assert (wrapped.u_core.{pin} == {ours});" for pin, ours in checks]
        lines += ["    assert (acc == wrapped.u_core.acc);",
                  "    assert (done == wrapped.u_core.done);"]
        if core.reduction == "shared":
            lines.append("    assert (wrapped.overrun == wrapped.u_core.overrun);")
        body = "\n".join(lines)
        return f"""\
// The compat wrapper's miter: packed lanes in, the wrapper's unpacked arrays, its core's pins.
module harness (
    input logic clk, input logic rst_n, input logic en, input logic first,
    input logic [{ew * B - 1}:0] a_in, input logic [{widths['a_sf'] - 1}:0] a_sf,
    input logic [{ew * B - 1}:0] w_in, input logic [{widths['w_sf'] - 1}:0] w_sf
);
  logic [{ew - 1}:0] a_arr [{B - 1}:0];
  logic [{ew - 1}:0] w_arr [{B - 1}:0];
{lanes}
  logic [{widths['acc'] - 1}:0] acc;
  logic done;
  {name} #(.BLOCK_SIZE({B})) wrapped (
    .clk(clk), .rst_n(rst_n), .en(en), .first(first), .a_in(a_arr), .a_sf(a_sf),
    .w_in(w_arr), .w_sf(w_sf), .acc(acc), .done(done));
  always_comb begin
{body}
  end
endmodule
"""


class ExactUnitEquivalence(wiring.Component):
    """fused-exact: IF4 with every INT flag forced to 0 is NVFP4 up to the conversion.

    Both tops get the same beats, scale bytes with bit 7 (IF4's INT flag) cleared. IF4's
    accumulator counts in 2^-20 / 49 and NVFP4's in 2^-20, and IF4's converter divides by 49
    in two more stages (latency 6 against 4), so cycle-by-cycle equality of ``acc`` is not the
    claim. Asserted at every step from reset: both raise ``overflow`` together, and both
    converters get the same ``start`` and ``nan`` and IF4's ``value`` is exactly 49 times
    NVFP4's. IF4's accumulator is 6 bits wider (``width + 6``; golden's default widths differ
    so too), which gives both the same stated length (checked). What remains for equal
    results two edges apart is the converters' claim ``rne32(49 A 2^-20 / 49) ==
    rne32(A 2^-20)``: :class:`ConverterEquivalence`.

    The converters are cut (their outputs are not compared; their inputs are). The terms
    are cut too: NVFP4's is a free value within ``exact_beat_bound`` (``ExactTermBound``
    for nvfp4 proves it of the real unit) and IF4's is 49 times it (:class:`ExactTermScaled`
    proves that of the real units, given the operand lemmas asserted here). Lemmas: every
    register of the input, S and term stages and the accumulator equals its NVFP4
    namesake, except the scaled ones (``weight1``, ``term2``, the accumulator's sum, the
    last only while the segment has not overflowed), which are 49 times it; NVFP4's beat
    counter is at most M, its term within the bound and its sum within count x bound;
    IF4's scale registers have their INT flag clear. Run at depth 3. The induction step
    gives no verdict in 900 s (docs/formal.md, "Not proven here").
    """

    #: IF4's registers that hold 49 times NVFP4's namesake (the FP.FP kind weight, 49).
    SCALED = (("weight1",), ("term2",), ("accumulator", "acc"))

    def __init__(self, block_size: int, nv_width: int):
        from if4mac.golden.fused import KIND_WEIGHT, exact_beat_bound
        from if4mac.hdl.fused import fused_mac

        self._nv_bound = exact_beat_bound("nvfp4", block_size)
        self._weight = KIND_WEIGHT[0]
        self._if4 = fused_mac("fused-exact", "if4", block_size, acc_width=nv_width + 6)
        self._nv = fused_mac("fused-exact", "nvfp4", block_size, acc_width=nv_width)
        if self._if4.max_segment != self._nv.max_segment:
            raise ValueError(f"accumulators of {nv_width + 6} and {nv_width} bits hold "
                             f"{self._if4.max_segment} and {self._nv.max_segment} beats")
        self._if4_frag, self._nv_frag = elaborate(self._if4), elaborate(self._nv)
        self._convs = [self._cut_converter(f) for f in (self._if4_frag, self._nv_frag)]
        from if4mac.hdl.fused import ExactTerm
        self._terms = [_cut_unit(f, "beat_term", ExactTerm) for f in (self._if4_frag, self._nv_frag)]
        super().__init__({**MacInputs(block_size),
                          "term_free": In(signed(self._terms[1].term_width))})

    @staticmethod
    def _cut_converter(frag):
        for i, (sub, name, _) in enumerate(frag.subfragments):
            if name == "convert":
                del frag.subfragments[i]
                return sub.origins[0]
        raise ValueError("the fused-exact top has no child 'convert'; the harness cuts there")

    @property
    def latency(self) -> int:
        return self._if4.latency

    def elaborate(self, platform):
        m = Module()
        if4, nv = self._if4, self._nv
        _both_tops_flags_clear(m, self, if4, nv, self._if4_frag, self._nv_frag)
        # The terms: NVFP4's a free value within its bound (exact-term-bound, nvfp4), IF4's
        # 49 times it (exact-term-scaled, given the operand lemmas below).
        term_if4, term_nv = self._terms
        m.d.comb += [term_nv.term.eq(self.term_free),
                     term_if4.term.eq(self.term_free * self._weight),
                     Assume(_signed_abs_le(self.term_free, self._nv_bound))]
        check(m, "lemma_term_s", term_if4.s == term_nv.s)
        check(m, "lemma_term_weight", term_if4.weight == term_nv.weight * self._weight)
        check(m, "lemma_term_shift", term_if4.shift == term_nv.shift)
        check(m, "overflow_equal", if4.overflow == nv.overflow)
        conv_if4, conv_nv = self._convs
        check(m, "start_equal", conv_if4.start == conv_nv.start)
        check(m, "nan_equal", conv_if4.nan == conv_nv.nan)
        # An overflowed segment's sum is the quiet NaN in both: its (wrapped) value is moot.
        check(m, "value_scaled", conv_nv.nan | (conv_if4.value == conv_nv.value * self._weight))

        if4_regs, nv_regs = registers(self._if4_frag), registers(self._nv_frag)
        nv_overflowed = nv_regs[("accumulator", "segment_overflow")]
        for path in sorted(set(if4_regs) & set(nv_regs)):
            a, b = if4_regs[path], nv_regs[path]
            if path == ("accumulator", "acc"):
                check(m, "lemma_accumulator_acc", nv_overflowed | (a == b * self._weight))
            else:
                check(m, "lemma_" + "_".join(path),
                      a == (b * self._weight if path in self.SCALED else b))
        # NVFP4's sum within its segment's bound (so neither accumulator wraps before M).
        bound = self._nv_bound
        count = nv_regs[("accumulator", "count")]
        check(m, "lemma_count_range", count <= self._nv.max_segment)
        check(m, "lemma_term2_bound", _signed_abs_le(nv_regs[("term2",)], bound))
        check(m, "lemma_sum_bound", nv_overflowed | _signed_abs_le_var(
            nv_regs[("accumulator", "acc")], count * bound))
        for name in ("a_sf0", "w_sf0"):
            check(m, f"lemma_{name}_flag_clear",
                  ~find_signal(self._if4_frag, name)[INT_FLAG_BIT])
        return m



class ExactTermScaled(wiring.Component):
    """IF4's ExactTerm given NVFP4's S and shift and 49 times NVFP4's weight returns 49
    times NVFP4's term, for every beat (NVFP4's BlockDot and ScaleWeight on any elements and
    scale bytes): what :class:`ExactUnitEquivalence` assumes of the terms it treats as free
    values, given the operand relation it proves as lemmas. Combinational."""

    def __init__(self, block_size: int):
        self._block_size = block_size
        super().__init__({"a_in": In(data.ArrayLayout(ELEMENT_WIDTH, block_size)),
                          "w_in": In(data.ArrayLayout(ELEMENT_WIDTH, block_size)),
                          "a_sf": In(SCALE_WIDTH), "w_sf": In(SCALE_WIDTH)})

    def elaborate(self, platform):
        from if4mac.golden.fused import KIND_WEIGHT
        from if4mac.hdl.block_dot import BlockDot
        from if4mac.hdl.fused import ExactTerm, ScaleWeight

        m = Module()
        B = self._block_size
        m.submodules.dot = dot = BlockDot("nvfp4", B)
        m.submodules.scale_weight = sw = ScaleWeight("nvfp4")
        m.d.comb += [dot.a.eq(self.a_in), dot.w.eq(self.w_in),
                     sw.a_sf.eq(self.a_sf), sw.w_sf.eq(self.w_sf)]
        m.submodules.nv = nv = ExactTerm("nvfp4", B, len(sw.weight))
        # IF4's weight register holds 49 times NVFP4's (equiv-accumulator's lemma).
        weight = Signal(range(((1 << len(sw.weight)) - 1) * KIND_WEIGHT[0] + 1))
        m.d.comb += weight.eq(sw.weight * KIND_WEIGHT[0])
        m.submodules.if4 = if4 = ExactTerm("if4", B, len(weight))
        m.d.comb += [nv.s.eq(dot.s), nv.weight.eq(sw.weight), nv.shift.eq(sw.shift),
                     if4.s.eq(dot.s), if4.weight.eq(weight), if4.shift.eq(sw.shift)]
        check(m, "term_scaled", if4.term == nv.term * KIND_WEIGHT[0])
        return m
