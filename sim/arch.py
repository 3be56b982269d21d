"""What the testbenches need to know about a design's architecture, in one place.

Every testbench (cocotb, the plain Verilog one, the native harness) drives the same pins and
checks the same things; what differs between the architectures (``reference``,
``fused-fp32``, ``fused-exact``) is golden's arithmetic, the latency golden states for a
result in flight, the sticky flags the top has (the shared tree's or the serial converter's
``overrun``, fused-exact's ``overflow``) and the edge at which each rises. :class:`SimArch`
answers those from the :class:`~if4mac.golden.MacConfig`, with golden's own rules and
constants (never the RTL's), so a testbench checks the RTL against golden and not against
itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from if4mac.golden import MacConfig, Results, Stream, run
from if4mac.golden.fused import ACCUMULATOR_EDGE, SERIAL_CONVERTER_BUSY, fused_latency
from if4mac.golden.mac import TREE_START_EDGE, latency, tree_levels
from if4mac.hdl.design import Design

__all__ = ["SimArch", "design_config", "flag_changes", "FLAGS"]

#: The sticky output flags a top may have, in the order testbenches report them.
FLAGS = ("overrun", "overflow")


def design_config(design: Design) -> MacConfig:
    """The configuration a MAC :class:`~if4mac.hdl.design.Design` was made from (its
    ``params`` name the architecture and its options, see ``hdl.design.mac_design``)."""
    params = design.params or {}
    options = {k: params[k] for k in ("acc_width", "converter") if params.get(k) is not None}
    return MacConfig(design.unit, design.block_size, design.reduction,
                     params.get("arch", "reference"), **options)


@dataclass(frozen=True)
class SimArch:
    """Golden's view of one configuration's timing and flags (see the module docstring)."""

    config: MacConfig

    @classmethod
    def of(cls, design_or_config) -> SimArch:
        if isinstance(design_or_config, MacConfig):
            return cls(design_or_config)
        return cls(design_config(design_or_config))

    @property
    def latency(self) -> int:
        """Golden's latency: a reset at most this many rows after a close discards it."""
        c = self.config
        if c.arch == "reference":
            return latency(c.block_size)
        return fused_latency(c.arch, c.unit, c.converter)

    @property
    def flags(self) -> tuple[str, ...]:
        """The sticky flags this top has (a subset of :data:`FLAGS`)."""
        c = self.config
        has = {"overrun": c.reduction == "shared" or c.converter == "serial",
               "overflow": c.arch == "fused-exact"}
        return tuple(f for f in FLAGS if has[f])

    @property
    def refusal(self) -> tuple[int, int] | None:
        """``(busy_levels, start_edge)`` of the shared resource that refuses crowded closes
        (golden's rule, ``golden.mac.in_flight_fate``), or None when every close is taken."""
        c = self.config
        if c.reduction == "shared":
            return tree_levels(c.block_size), TREE_START_EDGE
        if c.converter == "serial":
            return SERIAL_CONVERTER_BUSY + 1, ACCUMULATOR_EDGE
        return None

    @property
    def keeps_rows(self) -> bool:
        """Whether the results depend on the exact row timing between closes (a refusing
        resource): then a testbench must play the stimulus without extra gaps."""
        return self.refusal is not None

    def flag_edge(self, flag: str) -> int:
        """Edges from the row a flag's event is listed at to the edge where the flag rises."""
        if flag == "overflow" or self.config.arch != "reference":
            return ACCUMULATOR_EDGE
        return TREE_START_EDGE

    @staticmethod
    def flag_rows(results: Results, flag: str) -> np.ndarray:
        """The rows golden lists for a flag: refused closes, or beats too many."""
        if flag == "overrun":
            return results.overrun_beat
        return getattr(results, "overflow_beat", np.zeros(0, dtype=np.int64))

    def run(self, stream: Stream) -> Results:
        """golden.run of the whole stream under this configuration."""
        c = self.config
        return run(stream, reduction=c.reduction, arch=c.arch, **c.options)

    def run_arithmetic(self, stream: Stream) -> Results:
        """golden.run without the refusing resource (the caller applies its rule to the
        cycles it saw): the architecture and the accumulator width only."""
        c = self.config
        options = {"acc_width": c.acc_width} if c.arch == "fused-exact" else {}
        return run(stream, arch=c.arch, **options)


def flag_changes(plan, rows, edge: int) -> list[tuple[int, str]]:
    """Every change of a sticky flag that golden implies, as ``(cycle, "0"/"1")`` sampled
    after each rising edge: it rises ``edge`` edges after each listed row's cycle and falls
    at the next reset cycle of the plan."""
    rises = sorted(int(plan.cycle_of_row[r]) + edge for r in rows)
    resets = np.flatnonzero(~plan.rst_n).tolist()
    events = sorted([(c, 1) for c in rises] + [(c, 0) for c in resets])
    changes, state = [], 0
    for cycle, value in events:
        if value != state:
            changes.append((cycle, str(value)))
            state = value
    return changes
