# amaranth: UnusedElaboratable=no
"""The MAC tops (Nvfp4Mac, If4Mac) cycle by cycle against the golden model, and golden's
shared-reduction option against a plain cycle-stepping model written here.

``ref_trace`` turns golden's results into what the ports must show on every clock edge: a
``done`` pulse exactly ``latency`` edges after each closing beat, the result on ``acc`` (held
until the next one, 0 after reset) and, for the shared tree, the sticky ``overrun``.
``rtl_trace`` runs the Amaranth simulator on the same stream and records the same ports, and
the two traces must be equal edge for edge. The values are also cross-checked against the
exact-arithmetic scalar model (tests/scalar_model.py), and a few directed streams check
hand-derived bits and timing.

Pysim runs the 16-lane top at roughly 200-250 cycles/s on one core (4 lanes: ~700), so each
random configuration drives a few hundred cycles; ``test_mac_volume`` (slow) drives more.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.hdl import (
    ClockDomain, ClockSignal, Elaboratable, Fragment, Module, ResetSignal, Signal,
)

from if4mac.golden import (
    REDUCTIONS, Stream, random_stream, run, stimulus_to_json, tree_levels,
)
from if4mac.golden import closed_segments
from if4mac.golden import latency as golden_latency
from if4mac.hdl.mac import LANE_STAGE, If4Mac, MacUnit, Nvfp4Mac, mac_unit
from tests import scalar_model
from tests.hdl.port_trace import result_ports, simulate_ports, sticky
from tests.reset_streams import LATENCY, expected, reset_ladder

UNITS = ("nvfp4", "if4")
#: Zero, smallest, largest (0x7E = 448 and 0x7F, read as 448) scales, each with the INT flag.
EDGE_SCALES = np.array([0x00, 0x80, 0x01, 0x81, 0x7E, 0x7F, 0xFE, 0xFF], dtype=np.uint8)


# -- streams ----------------------------------------------------------------------------------

def edge_stream(unit: str, block_size: int, *, seed: int, segments: int, max_len: int,
                bubble_prob: float = 0.2, reset_prob: float = 0.02,
                edge_scale_prob: float = 0.25) -> Stream:
    """golden.random_stream with extra edge-case scale bytes and random resets."""
    stream = random_stream(unit, segments, seed=seed, max_len=max_len, block_size=block_size,
                           bubble_prob=bubble_prob)
    rng = np.random.default_rng(seed + 7919)
    n = len(stream)
    scales = {}
    for name in ("a_sf", "w_sf"):
        values = np.array(stream.a_sf if name == "a_sf" else stream.w_sf, dtype=np.uint8)
        pick = rng.random(n) < edge_scale_prob
        values[pick] = rng.choice(EDGE_SCALES, size=int(pick.sum()))
        scales[name] = values
    reset = rng.random(n) < reset_prob
    reset[0] = False
    return dataclasses.replace(stream, reset=reset, **scales)


def hand_stream(unit: str, rows: list[dict], block_size: int) -> Stream:
    """A stream from rows of {en, first, a, w, a_sf, w_sf, reset}, one code for all lanes.

    Defaults: en=1, first=0, a=0x0 (+0), w=0x2 (1.0), scales 0x38 (1.0, E2M1 blocks).
    """
    n = len(rows)

    def col(key, default):
        return [row.get(key, default) for row in rows]

    a = np.array([[row.get("a", 0)] * block_size for row in rows], dtype=np.uint8)
    w = np.array([[row.get("w", 0x2)] * block_size for row in rows], dtype=np.uint8)
    return Stream(unit, np.array(col("en", 1), bool), np.array(col("first", 0), bool), a, w,
                  np.array(col("a_sf", 0x38), np.uint8), np.array(col("w_sf", 0x38), np.uint8),
                  np.array(col("reset", 0), bool) if n else None)


# -- the expected port trace, from golden -----------------------------------------------------

@dataclasses.dataclass
class Trace:
    """Port values after every rising edge, and which edge sampled each stream row."""

    done: np.ndarray
    acc: np.ndarray
    overrun: np.ndarray | None
    row_edge: np.ndarray
    reset_edge: np.ndarray     # edges during which rst_n was held low


def drive_schedule(stream: Stream, latency: int, *,
                   drain: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """Edge of each row, edges held in reset, total edges, as the testbench drives them.

    Before a row marked ``reset`` the driver holds ``rst_n`` low across one edge, without
    draining first (golden models the results that reset discards in flight). ``drain``:
    idle ``latency`` edges before each reset first, for models that assume a drained
    pipeline (golden's fused architectures, for now). After the last row it idles
    ``latency + 2`` edges.
    """
    row_edge = np.zeros(len(stream), dtype=np.int64)
    reset_edge = []
    edge = 0
    resets = stream.reset if stream.reset is not None else np.zeros(len(stream), bool)
    for row in range(len(stream)):
        if resets[row]:
            edge += latency if drain else 0
            reset_edge.append(edge)
            edge += 1
        row_edge[row] = edge
        edge += 1
    return row_edge, np.array(reset_edge, dtype=np.int64), edge + latency + 2


def ref_trace(stream: Stream, top: MacUnit) -> Trace:
    """The port trace golden.run implies for ``top`` on ``stream``."""
    results = run(stream, reduction=top.reduction)
    row_edge, reset_edge, edges = drive_schedule(stream, top.latency)
    done, acc = result_ports(results, row_edge, reset_edge, edges, top.latency)
    overrun = None
    if top.reduction == "shared":
        # Sticky from the refusing edge (the lane stage of the refused closing beat) to reset.
        overrun = sticky(results.overrun_beat, row_edge, reset_edge, edges, LANE_STAGE)
    return Trace(done, acc, overrun, row_edge, reset_edge)


# -- the RTL trace ----------------------------------------------------------------------------

def rtl_trace(stream: Stream, top: MacUnit) -> Trace:
    """Drive ``stream`` into ``top`` in the Amaranth simulator; record the ports per edge."""
    row_edge, reset_edge, edges = drive_schedule(stream, top.latency)
    flags = ("overrun",) if top.reduction == "shared" else ()
    ports = simulate_ports(stream, top, row_edge, reset_edge, edges, flags)
    return Trace(ports["done"], ports["acc"], ports.get("overrun"), row_edge, reset_edge)


def assert_traces_equal(got: Trace, want: Trace):
    def first_diff(a, b):
        return int(np.flatnonzero(a != b)[0])

    if not np.array_equal(got.done, want.done):
        t = first_diff(got.done, want.done)
        raise AssertionError(f"done differs first at edge {t}: rtl {int(got.done[t])}, "
                             f"expected {int(want.done[t])} (done edges rtl "
                             f"{np.flatnonzero(got.done)[:8]}, "
                             f"golden {np.flatnonzero(want.done)[:8]})")
    if not np.array_equal(got.acc, want.acc):
        t = first_diff(got.acc, want.acc)
        raise AssertionError(f"acc differs first at edge {t}: rtl 0x{int(got.acc[t]):08x}, "
                             f"expected 0x{int(want.acc[t]):08x}")
    if want.overrun is not None and not np.array_equal(got.overrun, want.overrun):
        t = first_diff(got.overrun, want.overrun)
        raise AssertionError(f"overrun differs first at edge {t}: rtl {int(got.overrun[t])}, "
                             f"expected {int(want.overrun[t])}")


def check(stream: Stream, top: MacUnit) -> Trace:
    want = ref_trace(stream, top)
    got = rtl_trace(stream, top)
    assert_traces_equal(got, want)
    return want


# -- random streams against golden ------------------------------------------------------------

# (block size, segments, max segment length). B = 16 is the real unit; 1, 4 and 5 cover the
# degenerate tree, a power of two and an odd lane passing up.
CONFIGS = [(16, 28, 40), (16, 60, 6), (1, 60, 12), (4, 60, 12), (5, 60, 12)]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("block_size,segments,max_len", CONFIGS)
def test_mac_against_golden(unit, reduction, block_size, segments, max_len):
    seed = 1000 * block_size + 10 * max_len + UNITS.index(unit)
    stream = edge_stream(unit, block_size, seed=seed, segments=segments, max_len=max_len)
    top = mac_unit(unit, block_size, reduction)
    want = check(stream, top)

    # The stream must have exercised what it is here for.
    results = run(stream, reduction=reduction)
    assert want.done.sum() >= 5 and len(want.reset_edge) >= 1
    assert set(EDGE_SCALES.tolist()) <= set(np.concatenate([stream.a_sf, stream.w_sf]).tolist())
    if reduction == "shared" and tree_levels(block_size) > 1 and max_len <= 12:
        assert results.overrun, "the stream should have segments short enough to collide"
    if reduction == "pipelined":
        # Values, independently: the exact-arithmetic scalar model agrees with what came out.
        beats = stimulus_to_json(stream)["beats"]
        assert [f"0x{b:08x}" for b in scalar_model.run(unit, beats)] == results.hex()


@pytest.mark.slow
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("unit", UNITS)
def test_mac_volume(unit, reduction):
    """About 6000 cycles of the 16-lane top per configuration (~50 s each)."""
    stream = edge_stream(unit, 16, seed=77 + UNITS.index(unit), segments=600, max_len=16,
                         reset_prob=0.005)
    check(stream, mac_unit(unit, 16, reduction))


# -- directed streams with hand-derived expectations ------------------------------------------

def test_latency_follows_tree_depth():
    # 2 + max(1, ceil(log2 B)), worked out by hand.
    expected = {1: 3, 2: 3, 3: 4, 4: 4, 5: 5, 8: 5, 9: 6, 16: 6, 17: 7, 32: 7}
    for block_size, latency in expected.items():
        for reduction in REDUCTIONS:
            assert Nvfp4Mac(block_size, reduction).latency == latency
            assert golden_latency(block_size) == latency     # the spec's timing, in golden
            assert If4Mac(block_size, reduction).latency == latency
    assert If4Mac().latency == 6 and If4Mac().block_size == 16
    assert If4Mac().reduction == "pipelined"


@pytest.mark.parametrize("unit", UNITS)
def test_back_to_back_single_beat_segments(unit):
    """A closing beat on every cycle: the pipelined tree emits all 11 results on consecutive
    cycles; the shared tree (L = 4 levels for B = 16) accepts rows 1, 5, 9 only."""
    rows = [{"first": 1, "a": 0x2 + (r % 5), "w": 0x3, "a_sf": 0x38, "w_sf": 0x40}
            for r in range(12)]
    stream = hand_stream(unit, rows, 16)
    want = check(stream, mac_unit(unit, 16, "pipelined"))
    assert np.flatnonzero(want.done).tolist() == [r + 6 for r in range(1, 12)]
    want = check(stream, mac_unit(unit, 16, "shared"))
    assert np.flatnonzero(want.done).tolist() == [1 + 6, 5 + 6, 9 + 6]
    assert run(stream, reduction="shared").overrun_beat.tolist() == [2, 3, 4, 6, 7, 8, 10, 11]
    # Sticky from the first refused close's lane stage (row 2 at edge 2 + 3) to the end.
    assert np.flatnonzero(want.overrun)[0] == 2 + LANE_STAGE and want.overrun[-1]


def test_shared_tree_gap_exactly_levels():
    """B = 4: L = 2 levels, so closes 1 cycle apart collide and 2 apart do not."""
    rows = [{"first": 1, "a": 0x2}, {"first": 1, "a": 0x4}, {"first": 1, "a": 0x6},
            {"en": 0}, {"first": 1, "a": 0x7}, {"first": 1}]
    stream = hand_stream("nvfp4", rows, 4)
    # Closes at rows 1, 2, 4, 5: row 2 is 1 after row 1 (refused), row 4 is 3 after 1
    # (accepted), row 5 is 1 after 4 (refused).
    assert run(stream, reduction="shared").overrun_beat.tolist() == [2, 5]
    want = check(stream, mac_unit("nvfp4", 4, "shared"))
    latency = 4
    assert np.flatnonzero(want.done).tolist() == [1 + latency, 4 + latency]
    # Row 0's segment: 4 lanes of 1.0 * 1.0 -> 4.0; row 2's (0x6 is 4.0): 4 lanes -> 16.0.
    assert want.acc[1 + latency] == 0x40800000 and want.acc[4 + latency] == 0x41800000


@pytest.mark.parametrize("unit", UNITS)
def test_negative_zero_survives_lanes_and_tree(unit):
    """E2M1 0x8 is -0: -0 * 0.5 is -0 in every lane, and -0 + -0 stays -0 up the tree;
    -0 * -0.5 is +0."""
    rows = [{"first": 1, "a": 0x8, "w": 0x1}, {"first": 1, "a": 0x8, "w": 0x9}, {"first": 1}]
    want = check(hand_stream(unit, rows, 16), mac_unit(unit, 16))
    assert [int(want.acc[t]) for t in np.flatnonzero(want.done)] == [0x80000000, 0x00000000]


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_segment_opened_without_first(reduction):
    """The first beat after reset has first=0: it adds onto the +0 lane registers."""
    # The bubble before the last row keeps its close clear of the shared tree's busy cycle.
    rows = [{"first": 0, "a": 0x2, "w": 0x2}, {"en": 0, "first": 1}, {"a": 0x2, "w": 0x2},
            {"first": 1}, {"en": 0}, {"first": 1}]
    want = check(hand_stream("if4", rows, 4), mac_unit("if4", 4, reduction))
    # Two beats of 1.0 * 1.0 per lane -> 2.0 per lane -> 8.0; then the one-beat row 3 -> 0.
    assert [int(want.acc[t]) for t in np.flatnonzero(want.done)] == [0x41000000, 0x00000000]


def test_reset_discards_open_segment_and_clears_outputs():
    rows = [{"first": 1, "a": 0x2}, {"first": 1, "a": 0x2},
            {"first": 1, "a": 0x2},                    # refused by the busy shared tree
            {"a": 0x2},
            # Bubbles: the reset below comes more than latency (4) rows after the closes, so
            # row 1's result is out and row 2's refusal has raised overrun before it.
            {"en": 0}, {"en": 0}, {"en": 0}, {"en": 0},
            {"first": 1, "a": 0x7, "w": 0x7, "reset": 1},   # closes nothing: reset came first
            {"first": 1, "a": 0x2}, {"en": 0}, {"first": 1}]
    stream = hand_stream("nvfp4", rows, 4)
    assert run(stream, reduction="shared").overrun_beat.tolist() == [2]
    want = check(stream, mac_unit("nvfp4", 4, "shared"))
    # Row 0 -> 4 lanes of 1.0 = 4.0; rows 2-3 are lost; row 8 (0x7 * 0x7 = 36) -> 144; row 9
    # -> 4.0.
    assert [int(want.acc[t]) for t in np.flatnonzero(want.done)] == [
        0x40800000, 0x43100000, 0x40800000]
    reset = want.reset_edge[0]
    assert want.acc[reset] == 0 and want.acc[reset - 1] == 0x40800000
    assert want.overrun[reset - 1] and not want.overrun[reset:].any()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("block_size", [2, 16])
def test_reset_with_a_result_in_flight_per_edge(block_size, reduction):
    """rst_n asserted 1, 2, .., latency + 2 edges after a closing beat (no drain): the RTL
    discards the result for 1 .. latency (its reset clears the whole pipeline), delivers it
    from latency + 1 on, and the port trace equals golden's edge for edge."""
    top = mac_unit("if4", block_size, reduction)
    assert top.latency == LATENCY[block_size]
    stream, cases = reset_ladder("if4", block_size, range(1, top.latency + 3))
    want = check(stream, top)           # RTL trace == the trace golden implies, every edge
    # And by hand, from the RTL side: which edges raised done, with what.
    done_edges = np.flatnonzero(want.done).tolist()
    assert done_edges == [int(want.row_edge[c["close"]]) + top.latency
                          for c in cases if c["survives"]]
    assert [int(want.acc[t]) for t in done_edges] == expected(cases)
    # Each reset edge comes exactly k edges after its closing beat's edge (nothing drained).
    for c in cases[:-1]:
        nxt = int(want.reset_edge[want.reset_edge > want.row_edge[c["close"]]][0])
        assert nxt - int(want.row_edge[c["close"]]) == c["k"]


# -- parameters -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"unit": "fp8"}, "unknown unit 'fp8'"),
    ({"unit": "if4", "block_size": 0}, "block_size must be a positive integer"),
    ({"unit": "if4", "block_size": True}, "block_size must be a positive integer"),
    ({"unit": "if4", "block_size": 2.0}, "block_size must be a positive integer"),
    ({"unit": "if4", "reduction": "tree"}, "unknown reduction 'tree'"),
])
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MacUnit(**kwargs)


def test_ports_follow_reduction():
    assert "overrun" in If4Mac(16, "shared").signature.members
    assert "overrun" not in If4Mac(16, "pipelined").signature.members
    assert set(Nvfp4Mac().signature.members) == {
        "clk", "rst_n", "en", "first", "a_in", "a_sf", "w_in", "w_sf", "acc", "done"}


def test_mac_unit_picks_the_class():
    for unit, cls in (("nvfp4", Nvfp4Mac), ("if4", If4Mac)):
        top = mac_unit(unit, 2, "shared")
        assert type(top) is cls and top.unit == unit and top.reduction == "shared"
        Fragment.get(top, None)          # elaborates (and so counts as used)


def test_top_embeds_in_a_design_with_its_own_sync():
    """The top's clock domain is private: a parent with its own `sync` can hold two tops."""

    class Parent(Elaboratable):
        def elaborate(self, platform):
            m = Module()
            m.domains.sync = ClockDomain()
            for k in range(2):
                m.submodules[f"mac{k}"] = mac = Nvfp4Mac(2, "shared")
                m.d.comb += [mac.clk.eq(ClockSignal()), mac.rst_n.eq(~ResetSignal())]
            count = Signal(4)
            m.d.sync += count.eq(count + 1)
            return m

    assert "module" in rtlil.convert(Parent(), ports=[])


# -- golden's shared-reduction option against a cycle-stepping model --------------------------

def ref_shared_accepts(stream: Stream, close_rows: np.ndarray) -> np.ndarray:
    """Walk the rows one clock at a time: an accepted close keeps the tree busy for the next
    L - 1 rows; a reset frees it."""
    levels = tree_levels(stream.block_size)
    closing = set(close_rows.tolist())
    accept = {}
    busy_until = -1          # last row on which the tree is still busy
    for row in range(len(stream)):
        if stream.reset is not None and stream.reset[row]:
            busy_until = -1
        if row in closing:
            accept[row] = row > busy_until
            if accept[row]:
                busy_until = row + levels - 1
    return np.array([accept[r] for r in close_rows.tolist()], dtype=bool)


@pytest.mark.parametrize("block_size", [1, 2, 3, 4, 5, 16, 33])
def test_golden_shared_matches_cycle_model(block_size):
    for seed in range(20):
        stream = edge_stream("if4", block_size, seed=seed, segments=80, max_len=7,
                             bubble_prob=0.3, reset_prob=0.03)
        full = closed_segments(stream)        # every closed segment, timing aside
        shared = run(stream, reduction="shared")
        accept = ref_shared_accepts(stream, full.close_beat)
        # A reset r rows after a close discards its result when r <= latency (in flight), and
        # a refused close only raises overrun if it reached the tree (r > 3) first.
        latency = 2 + max(1, tree_levels(block_size))
        resets = np.flatnonzero(stream.reset)
        dist = np.array([(resets[resets > c][0] - c) if (resets > c).any() else 10**9
                         for c in full.close_beat.tolist()], dtype=np.int64)
        kept = accept & (dist > latency)
        refused = ~accept & (dist > 3)
        assert np.array_equal(shared.bits, full.bits[kept])
        assert np.array_equal(shared.start_beat, full.start_beat[kept])
        assert np.array_equal(shared.close_beat, full.close_beat[kept])
        assert np.array_equal(shared.overrun_beat, full.close_beat[refused])
        assert np.array_equal(shared.discarded_beat, full.close_beat[~kept & ~refused])
        assert shared.overrun == bool(refused.any())
        if block_size <= 2:
            assert not shared.overrun      # one level: the tree is never busy


def test_golden_default_reduction_unchanged():
    stream = edge_stream("nvfp4", 16, seed=3, segments=50, max_len=4)
    default, pipelined = run(stream), run(stream, reduction="pipelined")
    for field in ("bits", "start_beat", "close_beat", "overrun_beat"):
        assert np.array_equal(getattr(default, field), getattr(pipelined, field))
    assert len(default.overrun_beat) == 0 and not default.overrun
    with pytest.raises(ValueError, match="unknown reduction 'fast'"):
        run(stream, reduction="fast")
