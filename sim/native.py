"""The native testbench: a compiled C++ harness around the Verilated MAC, for real-tensor volume.

The plain Verilog testbench (:mod:`.fast`) runs the Verilated model under Verilator's timing
engine and reads its plan with ``$fscanf``: about 2e5 beats/s. Here a small C++ ``main``
(``native_main.cpp``, built with ``verilator --cc --exe``) drives the model's ports directly
from a binary plan, evaluates the model twice per clock cycle (clock low with the new inputs,
then the rising edge) and writes each ``done`` cycle's ``acc`` to a binary file, which
:func:`.fast.score_results` checks against golden with the same scoreboard and report as
every other testbench. Same drive plan (:func:`.plan.drive_plan`), same cycle numbers.

What bounds it: evaluating the model. The 16-lane MAC is about 12,000 flattened ``assign``
statements and Verilator evaluates all of them on every rising edge, about 12,700 instructions
per cycle (measured with cachegrind; the harness' own work is under 2% of the samples in
``perf``). One core of the development machine does about 6e5 cycles/s. Verilator's own
multithreading (``--threads``) splits one cycle's evaluation over cores; independent pieces of
the stream (:func:`split_points`, pieces that start on a segment's first beat, each with its
own power-up reset) scale better: ``jobs`` runs that many harness processes at once, through
Dask. Only for designs that take every result: the shared tree's (or the serial converter's)
refusals depend on the closes just before a piece starts.

Builds are cached like the other testbenches' (keyed by the Verilog, the harness source, the
Verilator version and the build options, under the same build root).
"""

from __future__ import annotations

import hashlib
import json
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from if4mac.golden import Stream
from if4mac.golden.formats import ELEMENT_WIDTH

from .arch import FLAGS, SimArch
from .fast import FastOutcome, check_flags, score_results
from .plan import DrivePlan, drive_plan
from .runner import Design, find_simulator

from .cache import build_folder, compile_in
from .cache import build_root as _root

__all__ = ["NATIVE_MAIN", "NativeBuild", "NativeOutcome", "build_native", "write_native_plan",
           "read_native_results", "split_points", "prepare_pieces", "score_pieces",
           "run_native"]

#: The harness' C++ source, compiled with each design.
NATIVE_MAIN = Path(__file__).with_name("native_main.cpp")
#: Plan file header: magic, then u32 block size and u32 bytes per packed lane vector.
PLAN_MAGIC = b"IF4PLAN1"
#: One result record: u64 cycle, u32 acc, u32 padding (native_main.cpp's ``Result``).
RESULT_DTYPE = np.dtype([("cycle", "<u8"), ("acc", "<u4"), ("pad", "<u4")])
#: Verilator's C++ model holds a port of up to 64 bits in one integer (QData); wider ports
#: become word arrays, which the harness does not pack.
_ONE_INTEGER_PORT_BITS = 64
#: The widest lane port that is one integer: 16 lanes of 4 bits.
MAX_BLOCK_SIZE = _ONE_INTEGER_PORT_BITS // ELEMENT_WIDTH
#: Bumped whenever the build commands change.
_RECIPE = 1
#: Verilator options for speed, each measured on the 16-lane MAC: -O3 (Verilator's own
#: optimisations), X values fixed at build time rather than randomised per run (a 2-state
#: testbench: the MAC's registers all have reset values), C++ at -O3.
_VERILATOR_SPEED = ["-O3", "--x-assign", "fast", "--x-initial", "fast"]
_MAKE_FLAGS = ("CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O3 OPT_SLOW=-O1 OPT_GLOBAL=-O2")


@dataclass
class NativeOutcome(FastOutcome):
    """:class:`.fast.FastOutcome` plus how the harness processes used the machine."""

    cpu_seconds: float = 0.0    # user + system time of every harness process together
    pieces: int = 1

    @property
    def beats_per_cpu_second(self) -> float:
        return self.beats / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")


@dataclass(frozen=True)
class NativeBuild:
    design: Design
    directory: Path
    executable: Path
    threads: int


def _lane_bytes(block_size: int) -> int:
    return (block_size + 1) // 2


def build_native(design: Design, *, threads: int = 1,
                 build_root: Path | None = None) -> NativeBuild:
    """Compile the harness with ``design`` (cached by content, like :func:`runner.build`).

    ``threads`` > 1 builds a multithreaded model (Verilator ``--threads``)."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer; got {threads!r}")
    if design.block_size > MAX_BLOCK_SIZE:
        raise ValueError(f"the native testbench drives lane ports of up to 64 bits: block size "
                         f"{design.block_size} is over {MAX_BLOCK_SIZE}")
    version = find_simulator("verilator")
    source = NATIVE_MAIN.read_text()
    flags = SimArch.of(design).flags
    defines = [f"-DIF4MAC_BLOCK_SIZE={design.block_size}"] + [
        f"-DIF4MAC_HAS_{flag.upper()}={int(flag in flags)}" for flag in FLAGS]
    options = _VERILATOR_SPEED + (["--threads", str(threads)] if threads > 1 else [])
    key = hashlib.sha256(json.dumps([_RECIPE, design.digest, source, version, options,
                                     defines, _MAKE_FLAGS]).encode()).hexdigest()[:16]
    name = f"{design.toplevel}-verilator-native{threads}-{key}"
    with build_folder(_root(build_root), name, version) as (directory, fresh):
        executable = directory / "obj" / "native_tb"
        if not fresh:
            return NativeBuild(design, directory, executable, threads)
        (directory / "dut.v").write_text(design.verilog)
        (directory / "native_main.cpp").write_text(source)
        cmd = ["verilator", "--cc", "--exe", "--build", "-j", "0", *options,
               "-Wno-fatal", "-Wno-lint", "-Wno-style", "--prefix", "Vdut",
               "--top-module", design.toplevel, "-Mdir", "obj", "-o", "native_tb",
               "-CFLAGS", " ".join(defines), "-MAKEFLAGS", _MAKE_FLAGS,
               "dut.v", "native_main.cpp"]
        compile_in(directory, cmd, f"verilator build of the {design.toplevel} native harness")
    return NativeBuild(design, directory, executable, threads)


def _pack_nibbles(codes: np.ndarray) -> np.ndarray:
    """(C, B) codes -> (C, ceil(B/2)) bytes, lane i in bits 4i+3..4i of the little-endian
    vector (the order of :func:`.plan.pack_lanes`, without Python integers)."""
    codes = np.asarray(codes, dtype=np.uint8)
    if codes.shape[1] % 2:
        codes = np.concatenate([codes, np.zeros((len(codes), 1), np.uint8)], axis=1)
    return codes[:, 0::2] | (codes[:, 1::2] << 4)


def write_native_plan(plan: DrivePlan, path) -> None:
    """The plan as native_main.cpp reads it (see its header comment)."""
    lanes = _lane_bytes(plan.block_size)
    record = np.empty((len(plan), 3 + 2 * lanes), dtype=np.uint8)
    record[:, 0] = (plan.rst_n.astype(np.uint8) << 2 | plan.en.astype(np.uint8) << 1
                    | plan.first.astype(np.uint8))
    record[:, 1] = plan.a_sf
    record[:, 2] = plan.w_sf
    record[:, 3:3 + lanes] = _pack_nibbles(plan.a)
    record[:, 3 + lanes:] = _pack_nibbles(plan.w)
    with open(path, "wb") as fh:
        fh.write(PLAN_MAGIC + np.array([plan.block_size, lanes], dtype="<u4").tobytes())
        fh.write(record.tobytes())


def read_native_results(path) -> np.ndarray:
    """The harness' result records (``cycle``, ``acc``), whole records only."""
    raw = Path(path).read_bytes() if Path(path).exists() else b""
    usable = len(raw) - len(raw) % RESULT_DTYPE.itemsize
    return np.frombuffer(raw[:usable], dtype=RESULT_DTYPE)


def split_points(stream: Stream, pieces: int, latency: int | None = None) -> np.ndarray:
    """Rows where ``stream`` may be cut into up to ``pieces`` pieces of similar length.

    A cut goes before an enabled ``first=1`` beat with no reset before it: that beat closes
    the previous piece's last segment and opens the next piece's first one, so it is played in
    both pieces (last in one, first in the next) and every result comes out exactly once.
    ``latency``: golden's for the design (default: the reference architecture's).
    """
    n = len(stream)
    ok = np.asarray(stream.en, dtype=bool) & np.asarray(stream.first, dtype=bool)
    if stream.reset is not None:
        reset = np.asarray(stream.reset, dtype=bool)
        ok &= ~reset
        # Nor where a reset follows within latency rows: it discards that closing beat's
        # result in flight (golden.run), which the piece played alone would let out.
        if latency is None:
            from if4mac.golden import latency as reference_latency

            latency = reference_latency(stream.block_size)
        for back in range(1, latency + 1):
            ok[:-back] &= ~reset[back:]
    # A cut at row 0 would leave the piece before it empty.
    ok[:1] = False
    candidates = np.flatnonzero(ok)
    if pieces <= 1 or not len(candidates):
        return np.zeros(0, dtype=np.int64)
    targets = np.arange(1, pieces) * n / pieces
    at = np.unique(candidates[np.minimum(np.searchsorted(candidates, targets),
                                         len(candidates) - 1)])
    return at.astype(np.int64)


def _piece(stream: Stream, lo: int, hi: int) -> Stream:
    reset = None if stream.reset is None else np.asarray(stream.reset)[lo:hi]
    return Stream(stream.unit, np.asarray(stream.en)[lo:hi], np.asarray(stream.first)[lo:hi],
                  np.asarray(stream.a)[lo:hi], np.asarray(stream.w)[lo:hi],
                  np.asarray(stream.a_sf)[lo:hi], np.asarray(stream.w_sf)[lo:hi], reset)


def _joined(plans: list[DrivePlan], starts: list[int], n_rows: int):
    """One plan for the pieces played back to back (cycle numbers run on across pieces), and
    each row's cycle as a closing beat (a cut row closes in the piece before its own)."""
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in plans])])
    rows = [np.where(p.row >= 0, p.row + s, -1) for p, s in zip(plans, starts)]
    cycle_of_row = np.empty(n_rows, dtype=np.int64)
    close_cycle = np.empty(n_rows, dtype=np.int64)
    # Later pieces overwrite the shared cut row as a start; earlier ones keep it as a close.
    for p, s, off in zip(plans, starts, offsets):
        cycle_of_row[s:s + len(p.cycle_of_row)] = p.cycle_of_row + off
    for p, s, off in reversed(list(zip(plans, starts, offsets))):
        close_cycle[s:s + len(p.cycle_of_row)] = p.cycle_of_row + off
    cat = lambda name: np.concatenate([getattr(p, name) for p in plans])  # noqa: E731
    plan = DrivePlan(plans[0].unit, plans[0].latency, cat("rst_n"), cat("en"), cat("first"),
                     cat("a"), cat("w"), cat("a_sf"), cat("w_sf"), np.concatenate(rows),
                     cycle_of_row)
    return plan, close_cycle, offsets


def _check(design: Design, stream: Stream, jobs: int) -> None:
    if stream.unit != design.unit or stream.block_size != design.block_size:
        raise ValueError(f"stimulus is for {stream.unit} with block size {stream.block_size}, "
                         f"the design is {design.unit} with block size {design.block_size}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer; got {jobs!r}")
    if jobs > 1 and SimArch.of(design).keeps_rows:
        raise ValueError("jobs > 1 needs the pipelined tree (and fused-exact's pipelined "
                         "converter): the shared tree's or serial converter's refusals depend "
                         "on the closes before a cut")


def prepare_pieces(design: Design, stream: Stream, jobs: int, work: Path,
                   seed: int = 0) -> tuple[list[DrivePlan], list[int]]:
    """Cut ``stream`` for ``jobs`` harness processes and write ``plan{i}.bin`` into ``work``;
    returns each piece's drive plan and first row."""
    _check(design, stream, jobs)
    cuts = split_points(stream, jobs, SimArch.of(design).latency).tolist()
    starts = [0] + cuts
    stops = [c + 1 for c in cuts] + [len(stream)]     # each cut row ends the piece before it
    plans = [drive_plan(_piece(stream, lo, hi), design.latency, seed=seed + i)
             for i, (lo, hi) in enumerate(zip(starts, stops))]
    for i, plan in enumerate(plans):
        write_native_plan(plan, Path(work) / f"plan{i}.bin")
    return plans, starts


def score_pieces(design: Design, stream: Stream, plans: list[DrivePlan], starts: list[int],
                 work: Path, ends: list[str]):
    """Score the pieces' results (``out{i}.bin`` in ``work``; ``ends[i]``, the harness' last
    stdout line) as one run; returns the scoreboard, the joined plan and the overrun flag."""
    arch = SimArch.of(design)
    played, overrun, ended = 0, False, True
    flags_end = []          # per piece: the sticky flags at its end, in FLAGS order
    for words in (e.split() for e in ends):
        if len(words) != 2 + len(FLAGS) or words[0] != "end":
            ended = False
            continue
        played += int(words[1])
        flags_end.append(tuple(w == "1" for w in words[2:]))
        overrun |= flags_end[-1][0]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in plans])])
    events: list = []
    for i in range(len(plans)):
        rec = read_native_results(Path(work) / f"out{i}.bin")
        events.extend(zip((rec["cycle"] + offsets[i]).tolist(), rec["acc"].tolist()))
    if len(plans) == 1:
        plan, close_cycle = plans[0], None
    else:
        plan, close_cycle, _ = _joined(plans, starts, len(stream))
    whole_end = (played, *flags_end[0]) if len(plans) == 1 else (played,)
    sb = score_results(stream, plan, arch.config, events, whole_end if ended else None,
                       close_cycle_of_row=close_cycle)
    if ended and len(plans) > 1 and arch.flags:
        # Each piece starts with its own power-up reset: its flags end as golden's on it.
        stops = starts[1:] + [len(stream) - 1]
        for i, (lo, hi) in enumerate(zip(starts, stops)):
            piece = _piece(stream, lo, hi + 1)
            check_flags(sb, arch, arch.run(piece), plans[i], piece, {},
                        (len(plans[i]), *flags_end[i]))
    return sb, plan, overrun


def run_native(built: NativeBuild, stream: Stream, *, jobs: int = 1,
               progress: Callable[[int, int], None] | None = None,
               workdir: Path | None = None, seed: int = 0) -> NativeOutcome:
    """Play ``stream`` (as written: no extra gaps) on the harness and score it with golden.

    ``jobs`` > 1 (pipelined tree only) cuts the stream at segment starts into that many
    pieces and runs them at once (Dask, threads each waiting on one harness process);
    ``sim_seconds`` is then the wall time of all of them. ``progress(results, expected)`` is
    called about twice a second.
    """
    design = built.design
    _check(design, stream, jobs)
    owned = workdir is None
    work = Path(tempfile.mkdtemp(prefix="native-", dir=built.directory)) if owned \
        else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        plans, starts = prepare_pieces(design, stream, jobs, work, seed)
        outs = [work / f"out{i}.bin" for i in range(len(plans))]
        expected_results = int((np.asarray(stream.first) & np.asarray(stream.en)).sum()) \
            if progress else 0

        def play(i: int) -> tuple[int, str, str]:
            proc = subprocess.run([str(built.executable), str(work / f"plan{i}.bin"),
                                   str(outs[i])], capture_output=True, text=True)
            return proc.returncode, proc.stdout, proc.stderr

        finished: list = []
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        if len(plans) == 1:
            runner = threading.Thread(target=lambda: finished.append([play(0)]), daemon=True)
        else:
            import dask

            tasks = [dask.delayed(play)(i) for i in range(len(plans))]
            runner = threading.Thread(
                target=lambda: finished.append(list(dask.compute(
                    *tasks, scheduler="threads", num_workers=jobs))), daemon=True)
        runner.start()
        while runner.is_alive():
            runner.join(0.5)
            if progress is not None:
                seen = sum(o.stat().st_size // RESULT_DTYPE.itemsize
                           for o in outs if o.exists())
                progress(min(seen, expected_results), expected_results)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if not finished:
            raise RuntimeError("the native harness runs did not complete")
        for i, (rc, _, stderr) in enumerate(finished[0]):
            if rc != 0:
                raise RuntimeError(f"the native harness failed (exit {rc}) on piece {i}: "
                                   f"{stderr.strip()[-2000:]}")
        sb, plan, overrun = score_pieces(design, stream, plans, starts, work,
                                         [stdout for _, stdout, _ in finished[0]])
        return NativeOutcome([f"0x{b:08x}" for b, _ in sb.results], sb.report(), sb.passed,
                             int(np.asarray(stream.en).sum()), len(plan), elapsed, overrun,
                             cpu, len(plans), lost_results=len(
                                 SimArch.of(design).run(stream).overrun_beat))
    finally:
        if owned:
            shutil.rmtree(work, ignore_errors=True)
