"""The MAC's port interface, declared once: the beat layout and the top's signature.

A *beat* is one cycle's data on the MAC's inputs: ``a_in``/``w_in`` (``B`` element codes
each, lane i at bits ``[4*i+3 : 4*i]``) and the scale bytes ``a_sf``/``w_sf``. Around it the
top has the clock, the asynchronous active-low reset, ``en`` and ``first``, and the result
``acc`` with its ``done`` strobe (plus the sticky ``overflow`` and ``overrun`` flags of the
configurations that have them).

:func:`beat_layout` is that data as an Amaranth ``data.StructLayout`` (field order = Verilog
port order); :class:`MacSignature` is the top's ``wiring.Signature`` built from it. The RTL
(:mod:`.mac`), the reference-interface wrapper (:mod:`.compat`), the Verilog testbench
(:mod:`if4mac.sim.fast`) and the cocotb testbench (:mod:`if4mac.sim.testbench`) all read
names and widths from here instead of restating them.
"""

from __future__ import annotations

from amaranth.hdl import Shape
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from if4mac.golden.config import MacConfig
from if4mac.golden.formats import BINARY32, ELEMENT_WIDTH, SCALE_WIDTH, check_block_size

__all__ = ["beat_layout", "MacSignature", "CONTROL_PORTS", "RESULT_WIDTH"]

#: One-bit inputs that are not beat data, in port order.
CONTROL_PORTS = ("clk", "rst_n", "en", "first")
#: The result ``acc`` is binary32.
RESULT_WIDTH = BINARY32.width


def beat_layout(block_size: int) -> data.StructLayout:
    """One beat's data: ``a_in``, ``a_sf``, ``w_in``, ``w_sf`` (in port order)."""
    lanes = data.ArrayLayout(ELEMENT_WIDTH, check_block_size(block_size))
    return data.StructLayout({"a_in": lanes, "a_sf": SCALE_WIDTH,
                              "w_in": lanes, "w_sf": SCALE_WIDTH})


class MacSignature(wiring.Signature):
    """The MAC top's ports for ``config``: clk, rst_n, en, first, the beat's fields, acc,
    done; then fused-exact's sticky ``overflow``, and the sticky ``overrun`` of the designs
    that can lose a result (the reference's shared tree, fused-exact's serial converter)."""

    def __init__(self, config: MacConfig):
        if not isinstance(config, MacConfig):
            raise TypeError(f"MacSignature needs a MacConfig, got {type(config).__name__}")
        self._config = config
        members = {name: In(1) for name in CONTROL_PORTS}
        for name, field in beat_layout(config.block_size):
            members[name] = In(field.shape)
        members["acc"] = Out(RESULT_WIDTH)
        members["done"] = Out(1)
        if config.arch == "fused-exact":
            members["overflow"] = Out(1)
        if config.reduction == "shared" or config.converter == "serial":
            members["overrun"] = Out(1)
        super().__init__(members)

    @property
    def config(self) -> MacConfig:
        return self._config

    @property
    def port_widths(self) -> dict[str, int]:
        """Every port's width in bits, in port order (as in the emitted Verilog)."""
        return {name: Shape.cast(member.shape).width for name, member in self.members.items()}

    def __eq__(self, other):
        return isinstance(other, MacSignature) and other._config == self._config

    def __hash__(self):
        return hash(self._config)
