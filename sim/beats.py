"""cocotb pieces for the MAC's beat interface: a clocking helper, the beat driver, the input
(beat) monitor and the output (result) monitor.

The pin-level protocol (the MAC tops in ``if4mac.hdl.mac``): a beat is sampled on a rising
edge of ``clk`` with ``en=1``; ``first=1`` opens a segment and closes the previous one; the
closed segment's result is on ``acc`` with ``done=1`` for exactly one cycle after rising edge
E + ``latency``, E being the closing beat's edge. ``rst_n`` is an asynchronous, active-low
reset that clears everything, results in flight included.

Sampling discipline, the same on every simulator: inputs change at falling edges only, so
they are stable at the rising edge that samples them; the input monitor reads them at the
rising edge, and the output monitor reads the registered outputs at the falling edge, half a
cycle after they changed. Both monitors number cycles from simulation time (rising edge k is
cycle k), so their cycle numbers agree with the driver's plan (:class:`~.plan.DrivePlan`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import cocotb
from cocotb.clock import Clock
from cocotb.simtime import convert, get_sim_time
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from .plan import DrivePlan, pack_lanes

__all__ = ["CLOCK_PERIOD_NS", "Clocking", "Beat", "BeatDriver", "PinMonitor", "BeatMonitor",
           "ResultMonitor", "FlagMonitor", "read_uint", "uint_reader"]

#: The testbench clock: any period works for a zero-delay RTL model; 10 ns reads well in waves.
CLOCK_PERIOD_NS = 10


def read_uint(handle) -> int:
    """The unsigned value of a signal; a clear error if it holds X or Z."""
    value = handle.value
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{handle._path} is {value} (X or Z), expected a defined value") from None


def uint_reader(handle) -> Callable[[], int]:
    """A fast reader of ``handle``'s unsigned value, for signals sampled every cycle.

    ``int(handle.value)`` builds a ``LogicArray`` on every read, which is most of a monitor's
    per-cycle cost; this reads the simulator's bit string through the handle's GPI object
    (a cocotb internal, hence the fallback) and converts it directly, with the same clear
    error for X or Z.
    """
    binstr = getattr(getattr(handle, "_handle", None), "get_signal_val_binstr", None)
    if binstr is None:
        return lambda: read_uint(handle)

    def read() -> int:
        bits = binstr()
        try:
            return int(bits, 2)
        except ValueError:
            raise ValueError(f"{handle._path} is {bits} (X or Z), expected a defined "
                             f"value") from None

    return read


class Clocking:
    """The clock and a cycle numbering shared by the driver and both monitors.

    :meth:`start` drives ``clk`` low for a period, then starts it (low first) at ``t0``, so that
    rising edge k comes at ``t0 + P/2 + k*P`` and the falling edge after it at
    ``t0 + (k+1)*P``.
    """

    def __init__(self, clk, period_ns: int = CLOCK_PERIOD_NS):
        self.clk = clk
        self.period_ns = period_ns
        self._clock = Clock(clk, period_ns, unit="ns")
        self._t0 = 0
        self._period = 1

    async def start(self) -> None:
        self.clk.value = 0
        # Let the low level settle before any edge trigger is armed: an X -> 0 change must
        # not be taken for a falling edge.
        await Timer(self.period_ns, unit="ns")
        self._t0 = get_sim_time()
        self._period = convert(self.period_ns, "ns", to="step")
        self._clock.start(start_high=False)

    def rising_cycle(self) -> int:
        """Number of the rising edge at the current simulation time."""
        p = self._period
        return (get_sim_time() - self._t0 - p // 2) // p

    def falling_cycle(self) -> int:
        """Number of the rising edge that the falling edge at the current time follows."""
        p = self._period
        return (get_sim_time() - self._t0) // p - 1

    def stop(self) -> None:
        self._clock.stop()


@dataclass(frozen=True)
class Beat:
    """One beat as sampled on the pins: lanes packed as on ``a_in`` / ``w_in``."""

    cycle: int
    first: bool
    a_in: int
    w_in: int
    a_sf: int
    w_sf: int


class BeatDriver:
    """Plays a :class:`~.plan.DrivePlan` on the MAC's inputs, one cycle per falling edge.

    Cycle 0 is applied before the clock starts (call :meth:`apply_first` before
    :meth:`Clocking.start`), every later cycle at the falling edge before its rising edge.
    A signal is written only when its value changes. ``on_progress(cycles)`` is called every
    ``progress_every`` cycles.
    """

    def __init__(self, dut, plan: DrivePlan, *,
                 on_progress: Callable[[int], None] | None = None,
                 progress_every: int = 1000):
        self.dut = dut
        self.plan = plan
        self.on_progress = on_progress
        self.progress_every = progress_every
        # Python ints once, up front: per-cycle numpy indexing costs more than the write.
        self._columns = {
            "rst_n": plan.rst_n.astype(int).tolist(),
            "en": plan.en.astype(int).tolist(),
            "first": plan.first.astype(int).tolist(),
            "a_in": pack_lanes(plan.a),
            "w_in": pack_lanes(plan.w),
            "a_sf": plan.a_sf.astype(int).tolist(),
            "w_sf": plan.w_sf.astype(int).tolist(),
        }
        self._handles = {name: getattr(dut, name) for name in self._columns}
        self._last: dict[str, int] = {}

    def _apply(self, k: int) -> None:
        for name, column in self._columns.items():
            value = column[k]
            if self._last.get(name) != value:
                self._handles[name].value = value
                self._last[name] = value

    def apply_first(self) -> None:
        self._apply(0)

    async def run(self, clocking: Clocking) -> None:
        """Drive cycles 1.. of the plan; returns after the last cycle has been sampled."""
        falling = FallingEdge(clocking.clk)
        for k in range(1, len(self.plan)):
            await falling
            self._apply(k)
            if self.on_progress is not None and k % self.progress_every == 0:
                self.on_progress(k)
        await falling
        if self.on_progress is not None:
            self.on_progress(len(self.plan))


class PinMonitor(ABC):
    """A monitor of some of the DUT's pins, sampled once per cycle at one clock edge.

    ``pins`` are read with :func:`uint_reader`; at every ``edge`` (``"rising"`` or
    ``"falling"``) :meth:`sample` gets the cycle number (rising edge k is cycle k; a falling
    edge counts as the rising edge it follows) and the readers, and decides what to report.
    As cocotb's ``DataValidMonitor``: :meth:`start` and :meth:`stop` run it as a task.
    """

    def __init__(self, dut, clocking: Clocking, pins: tuple[str, ...], edge: str):
        if edge not in ("rising", "falling"):
            raise ValueError(f"edge must be 'rising' or 'falling', got {edge!r}")
        self.dut = dut
        self.clocking = clocking
        self.pins = pins
        self.edge = edge
        self._task = None

    def start(self) -> None:
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    @abstractmethod
    def sample(self, cycle: Callable[[], int], *readers: Callable[[], int]) -> None:
        """What a monitor does with one clock edge's pins: each subclass (beats, results)
        defines it; the base class only knows how to read the pins every edge."""

    async def _run(self) -> None:
        readers = [uint_reader(getattr(self.dut, name)) for name in self.pins]
        rising = self.edge == "rising"
        trigger = (RisingEdge if rising else FallingEdge)(self.clocking.clk)
        cycle = self.clocking.rising_cycle if rising else self.clocking.falling_cycle
        while True:
            await trigger
            self.sample(cycle, *readers)


class BeatMonitor(PinMonitor):
    """The input monitor: at every rising edge, reports a reset or an enabled beat.

    ``on_beat(Beat)`` for every beat sampled with ``en=1`` (and ``rst_n=1``);
    ``on_reset(cycle)`` for every rising edge that sees ``rst_n=0``.
    """

    def __init__(self, dut, clocking: Clocking, on_beat: Callable[[Beat], None],
                 on_reset: Callable[[int], None]):
        super().__init__(dut, clocking,
                         ("rst_n", "en", "first", "a_in", "w_in", "a_sf", "w_sf"), "rising")
        self.on_beat = on_beat
        self.on_reset = on_reset

    def sample(self, cycle, rst_n, en, first, a_in, w_in, a_sf, w_sf) -> None:
        if not rst_n():
            self.on_reset(cycle())
        elif en():
            self.on_beat(Beat(cycle(), bool(first()), a_in(), w_in(), a_sf(), w_sf()))


class ResultMonitor(PinMonitor):
    """The output monitor: at every falling edge, ``on_result(bits, cycle)`` if ``done=1``.

    ``cycle`` is the rising edge after which the result appeared, so for a segment closed by
    the beat sampled at cycle E it is E + latency.
    """

    def __init__(self, dut, clocking: Clocking, on_result: Callable[[int, int], None]):
        super().__init__(dut, clocking, ("done", "acc"), "falling")
        self.on_result = on_result

    def sample(self, cycle, done, acc) -> None:
        try:
            valid = done()
        except ValueError as err:
            raise ValueError(f"{err}, after rising edge {cycle()}") from None
        if valid:
            self.on_result(acc(), cycle())


class FlagMonitor(PinMonitor):
    """The sticky-flag monitor: at every falling edge, records each change of the flags
    (``overrun``, ``overflow``) in ``changes[flag]`` as ``(cycle, "0"/"1")``, the cycle being
    the rising edge after which it was seen (the plain Verilog testbench's convention)."""

    def __init__(self, dut, clocking: Clocking, flags: tuple[str, ...]):
        super().__init__(dut, clocking, tuple(flags), "falling")
        self.changes: dict[str, list[tuple[int, str]]] = {f: [] for f in flags}
        self._last = {f: 0 for f in flags}

    def start(self) -> None:
        if self.pins:
            super().start()

    def sample(self, cycle, *readers) -> None:
        for flag, read in zip(self.pins, readers):
            value = read()
            if value != self._last[flag]:
                self.changes[flag].append((cycle(), str(value)))
                self._last[flag] = value
