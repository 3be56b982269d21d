"""Naming intermediate results: an expression used twice in Amaranth is built twice."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value


def wire(m: Module, name: str, value) -> Signal:
    """A combinational signal named ``name`` driven by ``value``; use it to share logic
    (and to make the value visible in waveforms and in the emitted Verilog)."""
    value = Value.cast(value)
    signal = Signal(value.shape(), name=name)
    m.d.comb += signal.eq(value)
    return signal
