"""The one validated MAC configuration: unit, block size, reduction, architecture and the
fused-exact architecture's options.

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
from .fused import check_converter, exact_acc_width
from .mac import check_reduction, tree_levels

__all__ = ["MacConfig", "ARCHITECTURES", "check_arch"]

#: Each architecture's RTL top, as "module:Class" (the class takes a :class:`MacConfig`).
ARCHITECTURES = {
    "reference": "if4mac.hdl.mac:MacUnit",
    "fused-fp32": "if4mac.hdl.fused:FusedFp32Mac",
    "fused-exact": "if4mac.hdl.fused:FusedExactMac",
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
    1..:data:`~.formats.MAX_BLOCK_SIZE`; an option the architecture does not take).

    ``reduction`` is the reference architecture's tree ("pipelined" or "shared"); the fused
    architectures have no tree and deliver every result, so they take only "pipelined".
    ``acc_width`` and ``converter`` are fused-exact's (docs/spec.md section 4): the
    accumulator's bits (None: the default, stored resolved, so equal designs compare equal)
    and the final conversion ("pipelined", or "serial" for IF4); other architectures take
    neither.
    """

    unit: str
    block_size: int = DEFAULT_BLOCK_SIZE
    reduction: str = "pipelined"
    arch: str = "reference"
    acc_width: int | None = None
    converter: str | None = None

    def __post_init__(self):
        unit_spec(self.unit)
        object.__setattr__(self, "block_size", check_block_size(self.block_size))
        check_reduction(self.reduction)
        check_arch(self.arch)
        if self.arch != "reference" and self.reduction != "pipelined":
            raise ValueError(f"reduction {self.reduction!r} is the reference architecture's; "
                             f"{self.arch} has no reduction tree (use pipelined)")
        if self.arch == "fused-exact":
            object.__setattr__(self, "acc_width",
                               exact_acc_width(self.unit, self.block_size, self.acc_width))
            object.__setattr__(self, "converter", check_converter(self.unit, self.converter))
        else:
            for option in ("acc_width", "converter"):
                if getattr(self, option) is not None:
                    raise ValueError(f"{option} is an option of fused-exact, not of {self.arch}")

    @property
    def spec(self) -> Unit:
        """The unit's :class:`~.formats.Unit` object."""
        return unit_spec(self.unit)

    @property
    def tree_levels(self) -> int:
        """Adder levels of the pairwise reduction tree: ceil(log2 B)."""
        return tree_levels(self.block_size)

    @property
    def options(self) -> dict:
        """The architecture's options as keyword arguments (``golden.fused.run_arch``'s)."""
        if self.arch == "fused-exact":
            return {"acc_width": self.acc_width, "converter": self.converter}
        return {}

    @property
    def name(self) -> str:
        """The RTL top's Verilog module name, e.g. ``if4_mac_b16_pipelined``,
        ``nvfp4_mac_b16_fused_fp32`` or ``if4_mac_b16_fused_exact_w60_serial`` (the reference
        architecture keeps its historical name; the others name theirs and their options)."""
        if self.arch == "reference":
            return f"{self.unit}_mac_b{self.block_size}_{self.reduction}"
        name = f"{self.unit}_mac_b{self.block_size}_{self.arch.replace('-', '_')}"
        if self.arch == "fused-exact":
            name += f"_w{self.acc_width}" + ("_serial" if self.converter == "serial" else "")
        return name

    def build(self):
        """The Amaranth top of this configuration (Amaranth is imported here)."""
        module, _, cls = ARCHITECTURES[self.arch].partition(":")
        return getattr(importlib.import_module(module), cls).from_config(self)
