"""The reference side of the testbench: the golden model fed by the input monitor, and an
in-order checker fed by the output monitor.

:class:`SegmentModel` collects the beats that the input monitor saw; when a ``first=1`` beat
closes a segment it predicts that segment's result with :func:`if4mac.golden.run` (the
project's single source of truth) and hands an :class:`Expected` to the
:class:`Scoreboard`. A reset seen on the pins discards the open segment and any result still
in flight (closed ``latency`` cycles or fewer before it), as golden and the hardware do. The scoreboard pairs results with predictions in order, checks each one bit for
bit and checks that it came exactly ``latency`` cycles after its closing beat; it keeps going
after a mismatch (so every RTL result is still collected) and reports the first one with its
context. It must be empty at the end: a prediction without a result is a missing result.

Nothing here imports cocotb: the same checker scores the plain SystemVerilog testbench's
output (:mod:`if4mac.sim.fast`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from if4mac.golden import (MacConfig, Stream, check_reduction, float32_from_bits,
                           shared_tree_refuses)
from if4mac.golden.mac import TREE_START_EDGE

from .arch import SimArch
from .plan import check_latency, unpack_lanes

__all__ = ["Expected", "Mismatch", "ScoreboardError", "Scoreboard", "SegmentModel",
           "format_bits"]


def format_bits(bits: int) -> str:
    """``0x41800000 (16.0)``: a binary32 pattern in hex and as the float it encodes."""
    value = float(float32_from_bits(np.array([bits], dtype=np.uint32))[0])
    return f"0x{bits:08x} ({value!r})"


@dataclass(frozen=True)
class Expected:
    """A predicted result: ``index`` is its position in the results list (0-based), then the
    segment's first and closing beats as clock cycles and stimulus rows (-1 where unknown)."""

    index: int
    bits: int
    start_cycle: int
    close_cycle: int
    start_row: int = -1
    close_row: int = -1
    beats: int = 0


@dataclass(frozen=True)
class Mismatch:
    """One disagreement between RTL and golden, with a report line that names it."""

    kind: str       # "value", "latency", "missing", "unexpected"
    message: str


class ScoreboardError(AssertionError):
    """RTL and golden disagree; the message is the scoreboard's report."""


@dataclass
class Scoreboard:
    """In-order checker: ``expect()`` predictions, ``observe()`` RTL results, ``finish()``.

    Predictions and results each wait in a queue until their partner arrives, so the model
    may predict in batches. ``describe_cycle`` turns a clock cycle into stimulus terms for
    the report (:meth:`~.plan.DrivePlan.describe_cycle`).
    """

    latency: int
    describe_cycle: Callable[[int], str] = field(default=lambda c: f"cycle {c}")
    expected: deque = field(default_factory=deque)
    pending: deque = field(default_factory=deque)    # RTL results not yet compared
    results: list = field(default_factory=list)      # (bits, cycle) of every RTL result
    mismatches: list = field(default_factory=list)
    checked: int = 0

    def __post_init__(self):
        self.latency = check_latency(self.latency)

    def expect(self, item: Expected) -> None:
        self.expected.append(item)
        self._match()

    def observe(self, bits: int, cycle: int) -> None:
        self.results.append((bits, cycle))
        self.pending.append((bits, cycle))
        self._match()

    def _context(self, e: Expected) -> str:
        rows = (f"stimulus beats {e.start_row}..{e.close_row - 1}, closed by beat {e.close_row}"
                if e.start_row >= 0 and e.close_row >= 0 else
                f"cycles {e.start_cycle}..{e.close_cycle - 1}, closed at cycle {e.close_cycle}")
        size = f", {e.beats} enabled beats" if e.beats else ""
        return f"segment {e.index} ({rows}{size})"

    def _match(self) -> None:
        while self.expected and self.pending:
            e = self.expected.popleft()
            bits, cycle = self.pending.popleft()
            self.checked += 1
            if bits != e.bits:
                self.mismatches.append(Mismatch(
                    "value", f"{self._context(e)}: expected {format_bits(e.bits)}, got "
                    f"{format_bits(bits)}"))
            want = e.close_cycle + self.latency
            if cycle != want:
                self.mismatches.append(Mismatch(
                    "latency", f"{self._context(e)}: result came {cycle - e.close_cycle} "
                    f"cycles after the closing beat ({self.describe_cycle(cycle)}), expected "
                    f"{self.latency} ({self.describe_cycle(want)})"))

    def finish(self) -> None:
        """Pair what is left; leftovers are missing or unexpected results."""
        self._match()
        while self.pending:
            bits, cycle = self.pending.popleft()
            self.mismatches.append(Mismatch(
                "unexpected", f"unexpected result {format_bits(bits)} at "
                f"{self.describe_cycle(cycle)}: no segment closed {self.latency} cycles "
                f"earlier (at {self.describe_cycle(cycle - self.latency)}) is waiting for one"))
        while self.expected:
            e = self.expected.popleft()
            self.mismatches.append(Mismatch(
                "missing", f"{self._context(e)}: no result; expected {format_bits(e.bits)} "
                f"at {self.describe_cycle(e.close_cycle + self.latency)}"))

    @property
    def passed(self) -> bool:
        return not self.mismatches

    def report(self) -> str:
        """The first mismatch in full, then a count; empty when everything matched."""
        if not self.mismatches:
            return ""
        first = self.mismatches[0]
        kinds: dict[str, int] = {}
        for m in self.mismatches:
            kinds[m.kind] = kinds.get(m.kind, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in kinds.items())
        return (f"RTL and golden disagree: {first.message}\n"
                f"{len(self.mismatches)} mismatches in all ({summary}); {len(self.results)} "
                f"RTL results, {self.checked} compared")

    def check(self) -> None:
        if self.mismatches:
            raise ScoreboardError(self.report())


class SegmentModel:
    """Golden, fed beat by beat from the input monitor; predicts each closed segment.

    ``beat(cycle, first, a_in, w_in, a_sf, w_sf)`` takes lanes packed as on the pins;
    ``reset(cycle)`` discards the open segment. Closed segments are predicted in batches of
    ``batch`` with one :func:`golden.run` call over the beats seen since the oldest of them
    (a call costs far more than a beat), and at :meth:`flush`. ``row_of_cycle`` maps a cycle
    to its stimulus row for the report.

    ``config``: the design's :class:`~if4mac.golden.MacConfig` (default: the reference
    architecture with ``reduction``); golden's arithmetic and latency are that
    architecture's (:class:`.arch.SimArch`).

    ``reduction="shared"`` (or fused-exact's serial converter): golden's rule for the
    refusing resource, applied to the cycles at which the closing beats were seen (on the
    pins, stream rows are cycles): a segment closed less than ``L = ceil(log2 B)`` cycles
    (the serial converter: 9) after the last *accepted* close, with no reset between, loses
    its result and sets the sticky ``overrun`` (tests check this against
    ``golden.run(stream, reduction="shared")``).

    Reset: a prediction is held back until ``latency`` cycles after its closing beat have
    passed without a reset; a reset at cycle R discards those closed at ``R - latency`` or
    later (their results were in the pipeline), and a refused close that had not yet reached
    the resource (``R - c <= TREE_START_EDGE``) is discarded rather than counted as an overrun.
    ``discarded`` lists the closing cycles of the discarded results.
    """

    def __init__(self, unit: str, block_size: int, on_expected: Callable[[Expected], None],
                 row_of_cycle: Callable[[int], int] | None = None, *,
                 reduction: str = "pipelined", batch: int = 32,
                 config: MacConfig | None = None):
        self.unit = unit
        self.block_size = block_size
        self.on_expected = on_expected
        self.row_of_cycle = row_of_cycle or (lambda cycle: -1)
        self.reduction = check_reduction(reduction)
        self.arch = SimArch(config if config is not None
                            else MacConfig(unit, block_size, self.reduction))
        # The refusing resource (shared tree, serial converter), if any: golden's rule.
        self.levels, self.start_edge = self.arch.refusal or (None, TREE_START_EDGE)
        self.latency = self.arch.latency
        self.batch = batch
        self._rows: list[tuple] = []     # beats from the oldest unpredicted segment's start
        self._closes = 0                 # closing beats among them
        self.predicted = 0               # predictions made: the next one's result index
        self.last_accepted: int | None = None
        self.overrun = False             # the sticky output's expected value now
        self.refused: list[int] = []     # cycles of refused closing beats
        self.discarded: list[int] = []   # cycles of closing beats whose result reset discarded
        self._held: deque = deque()      # (close cycle, Expected or None if refused), in order

    def reset(self, cycle: int) -> None:
        self._predict()
        while self._held:
            close, item = self._held.popleft()
            limit = self.latency if item is not None else self.start_edge
            if cycle - close <= limit:
                self.discarded.append(close)
            else:
                self._deliver(close, item)
        self._rows = []
        self.last_accepted = None
        self.overrun = False

    def beat(self, cycle: int, first: bool, a_in: int, w_in: int, a_sf: int, w_sf: int) -> None:
        if first and self._rows:
            self._closes += 1
        self._rows.append((cycle, first, a_in, w_in, a_sf, w_sf))
        if self._closes >= self.batch:
            self._predict()
        # No reset came up to this cycle: a later one can no longer reach these results.
        while self._held and cycle - self._held[0][0] >= self.latency:
            self._deliver(*self._held.popleft())

    def _deliver(self, close: int, item: Expected | None) -> None:
        if item is None:
            self.refused.append(close)
            self.overrun = True
            return
        self.on_expected(replace(item, index=self.predicted))
        self.predicted += 1

    def _accept(self, close_cycle: int) -> bool:
        # Golden's rule, applied to the cycles the closing beats were seen at.
        if self.levels is not None and self.last_accepted is not None \
                and shared_tree_refuses(close_cycle - self.last_accepted, self.levels):
            return False
        self.last_accepted = close_cycle
        return True

    def flush(self) -> None:
        """Predict every segment closed so far, and release every prediction (the end of the
        run: no reset can come any more)."""
        self._predict()
        while self._held:
            self._deliver(*self._held.popleft())

    def _predict(self) -> None:
        """Predict every segment closed so far into the held-back queue."""
        if not self._closes:
            return
        rows = self._rows
        n = len(rows)
        cycles, first, a_in, w_in, a_sf, w_sf = zip(*rows)
        stream = Stream(
            self.unit, np.ones(n, dtype=bool), np.array(first, dtype=bool),
            unpack_lanes(a_in, self.block_size), unpack_lanes(w_in, self.block_size),
            np.array(a_sf, dtype=np.uint8), np.array(w_sf, dtype=np.uint8))
        result = self.arch.run_arithmetic(stream)
        # Row 0 opens a segment (first=1, or the first beat after reset or power-up) and
        # every later first=1 row closes one, so golden closes exactly our segments.
        assert len(result) == self._closes, "golden must close exactly the segments seen"
        for bits, start, close in zip(result.bits, result.start_beat, result.close_beat):
            c0, c1 = cycles[start], cycles[close]
            if self._accept(c1):
                # The index is given on delivery, once the result is known to come out.
                self._held.append((c1, Expected(
                    -1, int(bits), c0, c1, self.row_of_cycle(c0), self.row_of_cycle(c1),
                    int(close - start))))
            else:
                self._held.append((c1, None))
        # The last closing beat opened the segment that is still open.
        self._rows = rows[int(result.close_beat[-1]):]
        self._closes = 0
