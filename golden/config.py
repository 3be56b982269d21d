"""The one validated MAC configuration: unit, block size, reduction and architecture.

A :class:`MacConfig` is checked once, where it is made (the CLI or an API call); everything
downstream -- the RTL top (:meth:`MacConfig.build`), its Verilog, the simulators and the
synthesis flows -- takes the config and trusts it. Pure Python: no Amaranth until
:meth:`~MacConfig.build`.

Architectures: :data:`ARCHITECTURES` maps each name to the RTL top that implements it, as a
``"module:Class"`` path (imported on :meth:`~MacConfig.build`). Adding an architecture is one
entry there; its top takes the config as its only argument.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .formats import DEFAULT_BLOCK_SIZE, Unit, check_block_size, unit_spec
from .mac import check_reduction, tree_levels

__all__ = ["MacConfig", "ARCHITECTURES", "check_arch"]

#: Each architecture's RTL top, as "module:Class" (the class takes a :class:`MacConfig`).
ARCHITECTURES = {
    "reference": "if4mac.hdl.mac:MacUnit",
}


def check_arch(arch: str) -> str:
    """Return ``arch`` if it names an architecture, else raise a one-line ``ValueError``."""
    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of "
                         f"{', '.join(ARCHITECTURES)}")
    return arch


@dataclass(frozen=True)
class MacConfig:
    """A MAC configuration, validated on construction (one-line ``ValueError`` naming the
    field: unknown unit, reduction or architecture; a block size outside
    1..:data:`~.formats.MAX_BLOCK_SIZE`)."""

    unit: str
    block_size: int = DEFAULT_BLOCK_SIZE
    reduction: str = "pipelined"
    arch: str = "reference"

    def __post_init__(self):
        unit_spec(self.unit)
        object.__setattr__(self, "block_size", check_block_size(self.block_size))
        check_reduction(self.reduction)
        check_arch(self.arch)

    @property
    def spec(self) -> Unit:
        """The unit's :class:`~.formats.Unit` object."""
        return unit_spec(self.unit)

    @property
    def tree_levels(self) -> int:
        """Adder levels of the pairwise reduction tree: ceil(log2 B)."""
        return tree_levels(self.block_size)

    @property
    def name(self) -> str:
        """The RTL top's Verilog module name, e.g. ``if4_mac_b16_pipelined`` (the reference
        architecture keeps its historical name; others add theirs)."""
        base = f"{self.unit}_mac_b{self.block_size}_{self.reduction}"
        return base if self.arch == "reference" else f"{base}_{self.arch.replace('-', '_')}"

    def build(self):
        """The Amaranth top of this configuration (Amaranth is imported here)."""
        module, _, cls = ARCHITECTURES[self.arch].partition(":")
        return getattr(importlib.import_module(module), cls).from_config(self)
