"""Floating-point building blocks (after Berkeley HardFloat / cvfpu), purely combinational.

Every unit decodes its operands once into a raw float (:mod:`.raw`), computes an exact or
sticky-compressed wide result, and rounds once in the shared :class:`FPRound` (round to
nearest, ties to even). Each has two modes: ``ieee=True`` (subnormals, infinities, NaN,
signed zeros as IEEE 754) and ``ieee=False`` (zeros and normals only, for the MAC datapath).

Each component's ``name`` carries its widths (``fp_add_e8_m23``,
``fp_mul_e5m10_e8m23_to_e8m23``); :func:`to_verilog` emits a unit under that module name
(through :func:`if4mac.hdl.design.emit_verilog`).
"""

from __future__ import annotations

from .add import FPAdd
from .format import BINARY16, BINARY32, FloatFormat, signed_width, unsigned_width
from .lzc import LeadingZeroCounter
from .mul import FPMul
from .raw import FPDecode, decoded_exp_bounds, raw_float_layout
from .round import FPRound

__all__ = [
    "FloatFormat", "BINARY16", "BINARY32", "signed_width", "unsigned_width",
    "LeadingZeroCounter", "FPDecode", "FPRound", "FPMul", "FPAdd",
    "raw_float_layout", "decoded_exp_bounds", "to_verilog",
]


def to_verilog(component) -> str:
    """Verilog for one of these components, its top module named after ``component.name``.

    Submodules come out named by their path (``fp_add_e8_m23.round``), as Amaranth names
    every non-top module; a parent that wants the width-carrying name in its hierarchy uses
    it as the submodule name (``m.submodules[f"{unit.name}_{lane}"] = unit``).
    """
    from ..design import emit_verilog    # the one emitter (needs Yosys)
    return emit_verilog(component, component.name)
