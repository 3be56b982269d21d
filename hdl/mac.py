"""The NVFP4 and IF4 MAC tops: lane products, scaling, per-lane binary32 accumulation, tree sum.

The arithmetic is exactly ``golden.run`` (docs/spec.md, section 2); the interface and timing
are the reference design's (docs/microarchitecture.md has the block diagram and cycle
tables). One beat per cycle, ``B`` lanes (``block_size``, default 16)::

    edge 0   input registers capture an enabled beat (en=1)
    edge 1   p_i = a_i * w_i (LaneMul, exact binary16), sf (ScaleMul, binary32)
    edge 2   m_i = rne32(p_i * sf)  (FPMul e5m10 x e8m23 -> e8m23, reduced mode)
    edge 3   lane_i = first ? m_i : rne32(lane_i + m_i)  (FPAdd e8m23, reduced mode);
             a closing beat (first=1 with a segment open) starts the reduction tree on the
             lane registers' old values at this same edge
    edge 2+k tree level k (k = 1..L, L = ceil(log2 B)); level L is ``acc``, with ``done``

so ``latency = 2 + max(1, L)`` edges from a closing beat to ``done`` (6 for B = 16).

Pieces, one arithmetic idea each: :class:`LaneAccumulator` (one lane's running sum),
:class:`PipelinedTree` and :class:`SharedTree` (the two reduction options), and
:class:`MacUnit` (the top, with :class:`Nvfp4Mac` and :class:`If4Mac` fixing the unit). The
element, scale and FP units come from :mod:`.lane_mul`, :mod:`.scale_mul` and :mod:`.fp`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, DomainRenamer, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from if4mac.golden.config import MacConfig
from if4mac.golden.formats import (
    BINARY16, BINARY32, DEFAULT_BLOCK_SIZE, ELEMENT_WIDTH, INT_FLAG_BIT, check_block_size,
)
from if4mac.golden.mac import tree_levels

from .fp import FPAdd, FPMul
from .interface import MacSignature, beat_layout
from .lane_mul import LaneMul
from .scale_mul import ScaleMul

__all__ = [
    "WORD_WIDTH", "LANE_STAGE", "SF_MAGNITUDE_WIDTH", "LaneAccumulator", "PipelinedTree",
    "SharedTree", "MacUnit", "Nvfp4Mac", "If4Mac", "mac_unit", "mac_verilog",
]

#: Scaled products, lane registers, tree nodes and the result are all binary32.
WORD_WIDTH = BINARY32.width
#: The edge (counted from the one that samples a beat, edge 0) at which that beat reaches
#: the lane registers: the input, product and scaled-product registers come first.
LANE_STAGE = 3
#: Scales are unsigned, so sf is +0 or positive: its sign bit is never registered.
SF_MAGNITUDE_WIDTH = WORD_WIDTH - 1


def _level_sizes(lanes: int) -> list[int]:
    """Values at each tree level, the lanes first: an odd one out passes up unchanged."""
    sizes = [lanes]
    while sizes[-1] > 1:
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


class LaneAccumulator(wiring.Component):
    """One lane's binary32 running sum: ``acc = first ? m : rne32(acc + m)`` on ``load``.

    Loading ``m`` itself on ``first`` (not ``0 + m``) keeps a -0 product's sign, as the spec
    asks. The adder is :class:`~.fp.FPAdd` in reduced mode: the spec's bounds (section 3)
    keep every operand and sum zero or normal.

    Latency 1 (``acc`` is the register), throughput one ``m`` per cycle. Reset gives +0.

    Ports
    -----
    m : In(32)
        The lane's scaled product, binary32.
    load : In(1)
        Update ``acc`` at the next edge.
    first : In(1)
        With ``load``: start a new sum at ``m``.
    acc : Out(32)
        The register.
    """

    def __init__(self):
        super().__init__({
            "m": In(WORD_WIDTH),
            "load": In(1),
            "first": In(1),
            "acc": Out(WORD_WIDTH),
        })

    @property
    def latency(self) -> int:
        return 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.add = add = FPAdd(BINARY32, ieee=False)
        m.d.comb += [add.a.eq(self.acc), add.b.eq(self.m)]
        with m.If(self.load):
            m.d.sync += self.acc.eq(Mux(self.first, self.m, add.result))
        return m


class _Tree(wiring.Component):
    """Ports and parameters shared by the two reduction trees."""

    def __init__(self, lanes: int, extra_ports: dict | None = None):
        self._lanes = check_block_size(lanes, "tree lanes")
        super().__init__({
            "lanes": In(data.ArrayLayout(WORD_WIDTH, lanes)),
            "start": In(1),
            "result": Out(WORD_WIDTH),
            "valid": Out(1),
            **(extra_ports or {}),
        })

    @property
    def n_lanes(self) -> int:
        return self._lanes

    @property
    def levels(self) -> int:
        """Adder levels: ceil(log2 lanes), 0 for one lane."""
        return tree_levels(self._lanes)

    @property
    def latency(self) -> int:
        """Edges from ``start`` (sampled with ``lanes``) to ``valid``: one per level, at least
        one (the result register)."""
        return max(1, self.levels)


class PipelinedTree(_Tree):
    """Pairwise binary32 tree sum of ``lanes`` values, one registered level per cycle.

    Level k adds pairs (0,1), (2,3), ... of level k-1 (the lanes are level 0); an odd value
    out passes up unchanged; every add is :class:`~.fp.FPAdd` in reduced mode (RNE). The
    last level's register is ``result``; it holds its value until the next sum arrives.

    Latency ``max(1, ceil(log2 lanes))`` edges from ``start`` to the one-cycle ``valid``
    pulse; throughput one sum per cycle (``start`` may be high on every cycle). Area:
    ``lanes - 1`` adders and about ``lanes`` words of registers.

    Parameters
    ----------
    lanes : int
        Number of values summed (>= 1).

    Ports
    -----
    lanes : In(ArrayLayout(32, lanes))
        Sampled at the edge where ``start`` is high.
    start : In(1)
    result : Out(32)
    valid : Out(1)
        High for the one cycle after the edge that loads a new ``result``.
    """

    def elaborate(self, platform):
        m = Module()
        level = [self.lanes[i] for i in range(self._lanes)]
        valid = self.start
        if self.levels == 0:
            # One lane: nothing to add, but the result is still a register.
            m.d.sync += self.valid.eq(valid)
            with m.If(valid):
                m.d.sync += self.result.eq(level[0])
            return m
        for k in range(1, self.levels + 1):
            sums = []
            for j in range(len(level) // 2):
                add = FPAdd(BINARY32, ieee=False)
                m.submodules[f"add_l{k}_{j}"] = add
                m.d.comb += [add.a.eq(level[2 * j]), add.b.eq(level[2 * j + 1])]
                sums.append(add.result)
            if len(level) % 2:
                sums.append(level[-1])
            last = k == self.levels
            regs = ([self.result] if last else
                    [Signal(WORD_WIDTH, name=f"level{k}_{j}") for j in range(len(sums))])
            level_valid = self.valid if last else Signal(name=f"level{k}_valid")
            m.d.sync += level_valid.eq(valid)
            # Registers only move with data, which also keeps `result` held afterwards.
            with m.If(valid):
                m.d.sync += [reg.eq(value) for reg, value in zip(regs, sums)]
            level, valid = regs, level_valid
        return m


class SharedTree(_Tree):
    """Pairwise binary32 tree sum with one level's adders (``lanes // 2``) reused per level.

    The reference design's area trade-off: at the ``start`` edge the adders sum pairs of
    ``lanes`` into the level register; on each following edge they sum pairs of the level
    register back into it, until the last level loads ``result``. Same arithmetic and same
    latency as :class:`PipelinedTree`, but the tree is busy for ``levels - 1`` edges after
    a start: a ``start`` on a busy edge is refused (that sum is lost) and the sticky
    ``overrun`` output rises at the next edge; only reset clears it.

    Latency ``max(1, ceil(log2 lanes))`` edges from ``start`` to ``valid``; throughput one
    sum per ``max(1, levels)`` cycles. Area: ``lanes // 2`` adders, their input multiplexers,
    ``ceil(lanes / 2) + 1`` words of registers and a level counter.

    Parameters and ports are :class:`PipelinedTree`'s, plus:

    Ports
    -----
    overrun : Out(1)
        Sticky: a ``start`` arrived while the tree was busy.
    """

    def __init__(self, lanes: int):
        super().__init__(lanes, {"overrun": Out(1)})

    @property
    def busy_cycles(self) -> int:
        """Edges after an accepted ``start`` at which a new ``start`` is refused."""
        return max(0, self.levels - 1)

    def elaborate(self, platform):
        m = Module()
        n = self._lanes
        levels = self.levels
        sizes = _level_sizes(n)
        lanes = [self.lanes[i] for i in range(n)]
        # The level register only holds levels 1 .. L-1; level L is `result`.
        level_reg = [Signal(WORD_WIDTH, name=f"level_{j}") for j in range(sizes[1])] \
            if levels > 1 else []
        # Which level `level_reg` holds; 0 means idle.
        step = Signal(range(max(2, levels)))
        busy = step != 0

        sums = []
        for j in range(n // 2):
            add = FPAdd(BINARY32, ieee=False)
            m.submodules[f"add_{j}"] = add
            # Adders past the level register's pairs only ever serve level 1.
            if 2 * j + 1 < len(level_reg):
                m.d.comb += [add.a.eq(Mux(busy, level_reg[2 * j], lanes[2 * j])),
                             add.b.eq(Mux(busy, level_reg[2 * j + 1], lanes[2 * j + 1]))]
            else:
                m.d.comb += [add.a.eq(lanes[2 * j]), add.b.eq(lanes[2 * j + 1])]
            sums.append(add.result)

        def level_value(src, size, j):
            """Entry j of the level above ``src`` (``size`` values), or None if it has none."""
            if j < size // 2:
                return sums[j]
            if size % 2 and j == size // 2:
                return src[size - 1]
            return None

        # Plain multiplexers rather than a Switch on `step`: each register picks its next value
        # by priority among the few steps that write it.
        for j, reg in enumerate(level_reg):
            value = reg
            for s in range(1, levels - 1):          # busy steps that write the level register
                above = level_value(level_reg, sizes[s], j)
                if above is not None:
                    value = Mux(step == s, above, value)
            m.d.sync += reg.eq(Mux(busy, value, Mux(self.start, level_value(lanes, n, j), reg)))

        # The last level goes to `result`: from the level register on the last busy step, or
        # straight from the lanes when there is at most one level.
        if levels > 1:
            finishing = busy & (step == levels - 1)
            m.d.sync += step.eq(Mux(busy, Mux(finishing, 0, step + 1), self.start))
        else:
            finishing = self.start
        m.d.sync += self.valid.eq(finishing)
        with m.If(finishing):
            m.d.sync += self.result.eq(sums[0] if n > 1 else lanes[0])
        with m.If(busy & self.start):
            m.d.sync += self.overrun.eq(1)
        return m


class MacUnit(wiring.Component):
    """A NVFP4 or IF4 MAC: ``B`` lanes, per-lane binary32 accumulation, tree reduction.

    Computes exactly ``golden.run(stream, reduction=reduction)`` for the stream of its
    input cycles (docs/spec.md). Timing, as the reference design: a beat is sampled at a
    rising edge with ``en=1``; ``first=1`` opens a new segment and closes the previous one
    (if any beat came since reset). For a closing beat sampled at edge E, the previous
    segment's result is on ``acc`` with ``done=1`` for exactly the one cycle after edge
    ``E + latency``; ``acc`` then holds it. ``en=0`` cycles change nothing.

    Latency ``2 + max(1, ceil(log2 B))`` edges (6 for B = 16). Throughput one beat per
    cycle. ``reduction="pipelined"``: a segment may close on every cycle and every result
    comes out. ``reduction="shared"``: the tree reuses ``B // 2`` adders over its
    ``L = ceil(log2 B)`` levels, so a segment whose closing beat comes 1 .. L-1 cycles
    (bubbles included) after the previous accepted closing beat loses its result, and the
    sticky ``overrun`` output rises at edge ``E + LANE_STAGE`` for such a closing beat at E.

    ``rst_n`` (asynchronous, active low) clears every register: the open segment, results
    in flight, ``acc``, ``done`` and ``overrun``.

    Parameters
    ----------
    unit : "nvfp4" or "if4", or a :class:`~if4mac.golden.config.MacConfig`
        IF4 reads bit 7 of each scale byte as its block's INT4 flag; NVFP4 ignores it. A
        config carries all three parameters (the others are then ignored); otherwise they
        are validated by building one.
    block_size : int
        Lanes ``B`` (1 .. ``MAX_BLOCK_SIZE``), default 16.
    reduction : "pipelined" or "shared"

    Ports
    -----
    clk, rst_n, en, first : In(1)
    a_in, w_in : In(ArrayLayout(4, B))
        Element codes; in Verilog a packed vector, lane i at bits [4*i+3 : 4*i].
    a_sf, w_sf : In(8)
        Scale bytes.
    acc : Out(32)
        binary32 result.
    done : Out(1)
    overrun : Out(1), ``reduction="shared"`` only
        Sticky until reset: a result was lost.
    """

    #: The top's child instances by area category, in report order: a name, or a pattern
    #: with ``{}`` for the lane number. :attr:`blocks` expands it; :meth:`elaborate` names
    #: its submodules with :meth:`_instance`, so the two cannot drift apart.
    BLOCK_INSTANCES = (
        ("lane multipliers", "lane_mul_{}"),
        ("scale path", "scale_mul"),
        ("product x scale multipliers", "scaled_mul_{}"),
        ("lane accumulators", "lane_acc_{}"),
        ("reduction", "tree"),
    )

    def __init__(self, unit, block_size: int = DEFAULT_BLOCK_SIZE,
                 reduction: str = "pipelined"):
        # A MacConfig passes through; unit / block_size / reduction are validated there.
        config = unit if isinstance(unit, MacConfig) else MacConfig(unit, block_size, reduction)
        self._config = config
        super().__init__(MacSignature(config))

    @classmethod
    def from_config(cls, config: MacConfig) -> MacUnit:
        """The top of ``config`` (the class that fixes its unit, where there is one)."""
        if cls is MacUnit and config.unit in _UNIT_CLASSES:
            cls = _UNIT_CLASSES[config.unit]
        # The unit classes' own constructors take (block_size, reduction); the config carries
        # those already, so build through MacUnit's, which takes a MacConfig as it is.
        top = cls.__new__(cls)
        MacUnit.__init__(top, config)
        return top

    @property
    def config(self) -> MacConfig:
        return self._config

    # The parameters, read-only, from the one validated config.
    unit = property(lambda self: self._config.unit)
    block_size = property(lambda self: self._config.block_size)
    reduction = property(lambda self: self._config.reduction)

    @property
    def port_widths(self) -> dict[str, int]:
        """Each port's width in bits, in Verilog port order."""
        return self.signature.port_widths

    @property
    def blocks(self) -> dict[str, tuple[str, ...]]:
        """Area category -> the names of the top's child instances in it (in Verilog, module
        ``<name>.<instance>``); every child instance is in exactly one category."""
        return {category: tuple(self._instance(category, i) for i in range(self.block_size))
                if "{}" in pattern else (pattern,)
                for category, pattern in self.BLOCK_INSTANCES}

    def _instance(self, category: str, lane: int | None = None) -> str:
        pattern = dict(self.BLOCK_INSTANCES)[category]
        return pattern.format(lane) if "{}" in pattern else pattern

    @property
    def latency(self) -> int:
        """Edges from a closing beat's sampling edge to the edge that raises ``done``."""
        # The tree's first register loads at the lane stage's edge, from the lane registers'
        # values before it, so the two stages share one edge.
        return LANE_STAGE - 1 + max(1, tree_levels(self.block_size))

    @property
    def name(self) -> str:
        """Verilog module name, e.g. ``if4_mac_b16_pipelined``."""
        return self._config.name

    def elaborate(self, platform):
        m = Module()
        B = self.block_size
        reads_int_flag = self._config.spec.reads_int_flag

        # Only `clk` and `rst_n` reach the Verilog ports. The domain has its own name and is
        # local, so a parent design with its own `sync` can instantiate the top; the pieces
        # are written for `sync` and renamed into it.
        m.domains.mac = cd = ClockDomain("mac", async_reset=True, local=True)
        m.d.comb += [cd.clk.eq(self.clk), cd.rst.eq(~self.rst_n)]

        # Edge 0: the input registers. Data registers move only with an enabled beat.
        valid0, first0 = Signal(name="valid0"), Signal(name="first0")
        beat = beat_layout(B)
        a0, w0 = Signal(beat["a_in"].shape, name="a0"), Signal(beat["w_in"].shape, name="w0")
        a_sf0 = Signal(beat["a_sf"].shape, name="a_sf0")
        w_sf0 = Signal(beat["w_sf"].shape, name="w_sf0")
        m.d.mac += valid0.eq(self.en)
        with m.If(self.en):
            m.d.mac += [first0.eq(self.first), a0.eq(self.a_in), w0.eq(self.w_in),
                         a_sf0.eq(self.a_sf), w_sf0.eq(self.w_sf)]

        # Edge 1: lane products and the scale product.
        valid1, first1 = Signal(name="valid1"), Signal(name="first1")
        p1 = [Signal(BINARY16.width, name=f"p_{i}") for i in range(B)]
        sf1_magnitude = Signal(SF_MAGNITUDE_WIDTH)
        scale_mul = ScaleMul(self._config.spec)
        m.submodules[self._instance("scale path")] = scale_mul
        m.d.comb += [scale_mul.a_sf.eq(a_sf0), scale_mul.w_sf.eq(w_sf0)]
        m.d.mac += valid1.eq(valid0)
        with m.If(valid0):
            m.d.mac += [first1.eq(first0), sf1_magnitude.eq(scale_mul.sf[:SF_MAGNITUDE_WIDTH])]
        for i in range(B):
            lane_mul = LaneMul(self._config.spec)
            m.submodules[self._instance("lane multipliers", i)] = lane_mul
            m.d.comb += [lane_mul.a.eq(a0[i]), lane_mul.w.eq(w0[i])]
            if reads_int_flag:
                m.d.comb += [lane_mul.a_int.eq(a_sf0[INT_FLAG_BIT]),
                             lane_mul.w_int.eq(w_sf0[INT_FLAG_BIT])]
            with m.If(valid0):
                m.d.mac += p1[i].eq(lane_mul.p)

        # Edge 2: scaled products m_i = rne32(p_i * sf).
        valid2, first2 = Signal(name="valid2"), Signal(name="first2")
        m2 = [Signal(WORD_WIDTH, name=f"m_{i}") for i in range(B)]
        m.d.mac += valid2.eq(valid1)
        with m.If(valid1):
            m.d.mac += first2.eq(first1)
        for i in range(B):
            scaled = FPMul(BINARY16, BINARY32, BINARY32, ieee=False)
            m.submodules[self._instance("product x scale multipliers", i)] = scaled
            m.d.comb += [scaled.a.eq(p1[i]), scaled.b.eq(Cat(sf1_magnitude, 0))]
            with m.If(valid1):
                m.d.mac += m2[i].eq(scaled.result)

        # Edge 3: lane accumulation, and the tree starts on a closing beat.
        segment_open = Signal()
        with m.If(valid2):
            m.d.mac += segment_open.eq(1)
        tree_cls = SharedTree if self.reduction == "shared" else PipelinedTree
        tree = tree_cls(B)
        m.submodules[self._instance("reduction")] = DomainRenamer("mac")(tree)
        m.d.comb += tree.start.eq(valid2 & first2 & segment_open)
        for i in range(B):
            lane = LaneAccumulator()
            m.submodules[self._instance("lane accumulators", i)] = DomainRenamer("mac")(lane)
            m.d.comb += [lane.m.eq(m2[i]), lane.load.eq(valid2), lane.first.eq(first2),
                         tree.lanes[i].eq(lane.acc)]

        # Edges 3 .. 2 + L: the tree, whose last register is `acc`.
        m.d.comb += [self.acc.eq(tree.result), self.done.eq(tree.valid)]
        if self.reduction == "shared":
            m.d.comb += self.overrun.eq(tree.overrun)
        return m


class Nvfp4Mac(MacUnit):
    """The NVFP4 MAC top: :class:`MacUnit` with ``unit="nvfp4"`` (E2M1 elements only)."""

    def __init__(self, block_size: int = DEFAULT_BLOCK_SIZE, reduction: str = "pipelined"):
        super().__init__("nvfp4", block_size, reduction)


class If4Mac(MacUnit):
    """The IF4 MAC top: :class:`MacUnit` with ``unit="if4"`` (E2M1 or INT4 per block)."""

    def __init__(self, block_size: int = DEFAULT_BLOCK_SIZE, reduction: str = "pipelined"):
        super().__init__("if4", block_size, reduction)


#: The classes that fix a unit, by unit name (what :meth:`MacUnit.from_config` returns).
_UNIT_CLASSES = {"nvfp4": Nvfp4Mac, "if4": If4Mac}


def mac_unit(unit, block_size: int = DEFAULT_BLOCK_SIZE,
             reduction: str = "pipelined") -> MacUnit:
    """The MAC top for ``unit`` ("nvfp4" -> :class:`Nvfp4Mac`, "if4" -> :class:`If4Mac`), or
    for a :class:`MacConfig` given as it is."""
    config = unit if isinstance(unit, MacConfig) else MacConfig(unit, block_size, reduction)
    return config.build()


def mac_verilog(top: MacUnit) -> str:
    """Verilog of a MAC top, its module named ``top.name``, with a header stating the design.

    Emitted by :func:`~.design.emit_verilog`, the one emitter (every combinational process
    lowered to continuous assignments, so event-driven simulators in SystemVerilog mode start
    clean); ``if4mac verilog``, the simulators and the synthesis flows all write this text.
    """
    if not isinstance(top, MacUnit):
        raise ValueError(f"mac_verilog needs a MacUnit, got {type(top).__name__}")
    from .design import emit_verilog

    body = emit_verilog(top, top.name)
    widths = top.port_widths
    lanes = ELEMENT_WIDTH
    header = (
        f"// {top.name}: if4mac {top.unit.upper()} MAC, block size {top.block_size}, "
        f"{top.reduction} reduction tree.\n"
        f"// Ports: {', '.join(widths)}. a_in/w_in are packed: lane i at "
        f"[{lanes}*i+{lanes - 1}:{lanes}*i].\n"
        f"// rst_n is asynchronous, active low. Latency: done rises {top.latency} edges after "
        f"the closing beat's edge.\n"
        f"// See docs/microarchitecture.md. Generated by if4mac.hdl.mac.mac_verilog.\n"
    )
    return header + body
