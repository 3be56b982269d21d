"""Static timing with OpenSTA: critical path, and register-to-register delay per pipeline stage.

Delays are "minimum clock period" numbers: for a path, ``period - slack``, i.e. clock-to-Q,
the logic, and the capturing flip-flop's setup time, with ideal clocks. The critical path is
the largest of them over all register-to-register paths, so ``1 / critical`` is the Fmax of
the mapped netlist (before placement and wiring, at the library's corner).

Pipeline stages are found from the netlist alone, so the same code serves every design:
registers are grouped by name (the bits of one signal), each group's fan-in startpoints
come from OpenSTA, and a group's stage is its shortest register distance from the input
ports (the input registers are stage 1). A stage's delay is the worst path into its
registers. The asynchronous reset is a false path (in silicon it is synchronised and
buffered separately).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .scripts import STA_GROUPS, STA_PATHS, STA_TIMING
from .tools import ToolError, find_tool, run_tool

__all__ = ["run_sta", "group_key", "parse_full_path", "parse_summary", "stage_levels"]

_BIT = re.compile(r"\[\d+\]")
_LANE = re.compile(r"_\d+(?=[/.]|$)")


def group_key(instance: str) -> str:
    """The register group of a flip-flop instance: its name without bit indices."""
    return _BIT.sub("", instance)


def _generic(key: str) -> str:
    """A group name with lane/instance numbers folded: ``lane_acc_3/acc_reg`` -> ``lane_acc_*/acc_reg``."""
    return _LANE.sub("_*", key)


def _tcl_escape(name: str) -> str:
    return name.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


@dataclass
class _Path:
    startpoint: str
    endpoint: str
    arrival: float
    required: float
    slack: float
    setup: float
    pins: list[tuple[str, str]]   # (pin, cell type) along the data path


_PATH_LINE = re.compile(r"^\s*(-?[\d.]+)\s+(-?[\d.]+)\s+[\^v]\s+(\S+)\s+\((\S+)\)")


def parse_full_path(text: str) -> _Path | None:
    """Parse one ``report_checks -format full`` path (None where the report has no path)."""
    start = re.search(r"^Startpoint:\s+(\S+)", text, re.M)
    end = re.search(r"^Endpoint:\s+(\S+)", text, re.M)
    slack = re.search(r"^\s*(-?[\d.]+)\s+slack", text, re.M)
    arrival = re.search(r"^\s*(-?[\d.]+)\s+data arrival time", text, re.M)
    required = re.search(r"^\s*(-?[\d.]+)\s+data required time", text, re.M)
    setup = re.search(r"^\s*(-?[\d.]+)\s+(?:-?[\d.]+)\s+library setup time", text, re.M)
    if not (start and end and slack and arrival and required):
        return None
    pins = []
    for line in text[start.end():arrival.start()].splitlines():
        mt = _PATH_LINE.match(line)
        if mt:
            pins.append((mt.group(3), mt.group(4)))
    return _Path(start.group(1), end.group(1), float(arrival.group(1)),
                 float(required.group(1)), float(slack.group(1)),
                 -float(setup.group(1)) if setup else 0.0, pins)


_SUMMARY_LINE = re.compile(r"^(\S+) \((\S+)\)\s+(\S+) \((\S+)\)\s+(-?[\d.]+)")


def parse_summary(text: str) -> list[tuple[str, str, float]]:
    """``report_checks -format summary`` rows: (startpoint pin, endpoint pin, slack)."""
    rows = []
    for line in text.splitlines():
        mt = _SUMMARY_LINE.match(line.strip())
        if mt:
            rows.append((mt.group(1), mt.group(3), float(mt.group(5))))
    return rows


def _instance(pin: str) -> str:
    return pin.rsplit("/", 1)[0] if "/" in pin else pin


def stage_levels(fanin: dict[str, set[str]], ports: set[str]) -> dict[str, int]:
    """Pipeline stage of each register group: the longest register chain from the inputs.

    ``fanin[group]`` holds the groups and input ports (names in ``ports``) that reach it.
    A group's stage is one more than the largest stage among the groups feeding it (input
    ports count as stage 0), so the input registers are stage 1 and a register that merges
    an early control bit with late data sits after the data; a register fed by no other
register (a constant, or inputs only) is stage 1. Feedback (an accumulator's own
    register, a shared tree's level register) is collapsed first: the members of one loop
    share a stage.
    """
    groups = list(fanin)
    preds = {g: {s for s in fanin[g] if s in fanin and s != g} for g in groups}
    # Tarjan's strongly connected components, iteratively (designs have thousands of groups).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    comp: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    counter = 0
    n_comp = 0
    succ = defaultdict(set)
    for g in groups:
        for p in preds[g]:
            succ[p].add(g)
    for root in groups:
        if root in index:
            continue
        work = [(root, iter(sorted(succ[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            nxt = next(it, None)
            if nxt is not None:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(succ[nxt]))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp[member] = n_comp
                    if member == node:
                        break
                n_comp += 1
    # Tarjan numbers components in reverse topological order of the successor graph.
    members = defaultdict(list)
    for g, c in comp.items():
        members[c].append(g)
    stage_of_comp: dict[int, int] = {}
    for c in range(n_comp - 1, -1, -1):
        best = 0
        for g in members[c]:
            for p in preds[g]:
                if comp[p] != c:
                    best = max(best, stage_of_comp[comp[p]])
        stage_of_comp[c] = best + 1
    return {g: stage_of_comp[comp[g]] for g in groups}


def _sections(text: str) -> dict[str, str]:
    out, name, buf = {}, None, []
    for line in text.splitlines():
        if line.startswith("@@") and line[2:].split(" ", 1)[0] in (
                "critical", "endpoints", "input", "output", "through", "groups", "end"):
            if name:
                out[name] = "\n".join(buf)
            name, buf = line[2:].split(" ", 1)[0], []
        else:
            buf.append(line)
    if name:
        out[name] = "\n".join(buf)
    return out


def _fill(template, **kw) -> str:
    return template.substitute(**kw)


def run_sta(*, netlist: Path, top: str, liberty: str, library_name: str, clock: str,
            reset: str | None, period_ns: float, wire_load: str | None, time_unit_ps: float,
            category, workdir: Path, timeout: float | None = None,
            driving_cell: tuple[str, str] | None = None, output_load: float | None = None,
            stages: bool = True) -> dict:
    """Time ``netlist`` with OpenSTA; return the critical path and the per-stage delays.

    ``category(instance_path)`` names the area block an instance belongs to (used to say
    which blocks a path crosses). Times in the result are picoseconds. ``stages`` False
    skips the endpoint and fan-in listings and the second pass (the per-stage worst
    paths): ``stages`` comes back empty, ``register_groups`` and ``register_endpoints``
    None.
    """
    sta = find_tool("sta")
    common = dict(
        top=top, liberty=liberty, library_name=library_name, netlist=str(netlist),
        clock=clock, period=f"{period_ns:.6g}",
        wire_load=f"set_wire_load_model -name {{{wire_load}}}" if wire_load else "",
        false_paths=(f"set_false_path -from [get_ports {reset}]" if reset else ""),
        reset=reset or "",
        io_drive="\n".join(
            ([f"set_driving_cell -lib_cell {driving_cell[0]} -pin {driving_cell[1]} "
              f"[delete_from_list [all_inputs] [get_ports {clock}]]"] if driving_cell else [])
            + ([f"set_load {output_load:.6g} [all_outputs]"] if output_load else [])),
    )
    script = workdir / "sta_timing.tcl"
    script.write_text(_fill(STA_TIMING, groups=STA_GROUPS if stages else "", **common))
    log = workdir / "sta_timing.log"
    run_tool([sta, "-no_init", "-exit", str(script)], log=log, cwd=workdir, timeout=timeout)
    text = log.read_text(errors="replace")
    if "@@end" not in text:
        raise ToolError(f"OpenSTA stopped before the end of {script} (log: {log})")
    errors = [ln for ln in text.splitlines() if ln.startswith("Error")]
    if errors:
        raise ToolError(f"OpenSTA: {errors[0]} (log: {log})")
    sec = _sections(text)
    crit = parse_full_path(sec.get("critical", ""))
    if crit is None:
        raise ToolError(f"OpenSTA found no register-to-register path in {top} (log: {log})")
    rows = parse_summary(sec.get("endpoints", ""))

    # Register groups and their fan-in.
    fanin: dict[str, set[str]] = {}
    ports: set[str] = set()
    current = None
    for line in sec.get("groups", "").splitlines():
        if line.startswith("@@group "):
            current = line[len("@@group "):].strip()
            fanin.setdefault(current, set())
        elif line.startswith("@@from ") and current is not None:
            pin = line[len("@@from "):].strip()
            if "/" in pin:
                fanin[current].add(group_key(_instance(pin)))
            elif _BIT.sub("", pin) not in (clock, reset):
                ports.add(pin)
                fanin[current].add(pin)
    levels = stage_levels(fanin, ports)

    ps = time_unit_ps
    period = period_ns * 1000.0 / ps  # in library time units

    def min_period(slack: float) -> float:
        return (period - slack) * ps

    # Worst endpoint per stage.
    worst: dict[int, tuple[float, str, str]] = {}
    counts: dict[int, int] = defaultdict(int)
    groups_in: dict[int, set[str]] = defaultdict(set)
    for start, end, slack in rows:
        g = group_key(_instance(end))
        key = levels.get(g, 0)
        counts[key] += 1
        groups_in[key].add(_generic(g))
        if key not in worst or slack < worst[key][0]:
            worst[key] = (slack, start, end)

    # Pass 2: the full worst path of each stage, to see which blocks it crosses.
    order = sorted(worst) if stages else []
    pairs = " ".join("{%s %s}" % (_tcl_escape(_instance(worst[k][1])), _tcl_escape(worst[k][2]))
                     for k in order)
    stage_paths = []
    if order:
        paths_script = workdir / "sta_paths.tcl"
        paths_script.write_text(_fill(STA_PATHS, paths=pairs, **common))
        paths_log = workdir / "sta_paths.log"
        run_tool([sta, "-no_init", "-exit", str(paths_script)], log=paths_log, cwd=workdir,
                 timeout=timeout)
        ptext = paths_log.read_text(errors="replace")
        if "@@end" not in ptext:
            raise ToolError(f"OpenSTA stopped before the end of {paths_script} "
                            f"(log: {paths_log})")
        chunks = ptext.split("@@path")[1:]
        stage_paths = [parse_full_path(c) for c in chunks]

    def logic(path: _Path) -> list[str]:
        # The launching and capturing flip-flops' own pins are not logic.
        ends = {_instance(path.startpoint), _instance(path.endpoint)}
        return [pin for pin, _cell in path.pins if _instance(pin) not in ends]

    def blocks_on(path: _Path) -> list[str]:
        seen = []
        for pin in logic(path):
            inst = _instance(pin)
            name = category(inst.split("/", 1)[0] if "/" in inst else "")
            if name not in seen:
                seen.append(name)
        return seen

    stages = []
    for k, path in zip(order, stage_paths):
        slack, start, end = worst[k]
        stages.append({
            "stage": k if k else None,  # None: a register the group scan did not see
            "registers": sorted(groups_in[k]),
            "endpoints": counts[k],
            "min_period_ps": round(min_period(slack), 1),
            "startpoint": start,
            "endpoint": end,
            "blocks": blocks_on(path) if path else [],
            "logic_levels": len(logic(path)) if path else None,
        })

    crit_period = min_period(crit.slack)

    def io_path(section: str) -> dict | None:
        # Input delay 0: data arrives at the clock edge (an upstream register with zero
        # clock-to-Q); output delay 0: the output is captured at the next edge. So the
        # period a path needs is again period - slack.
        path = parse_full_path(sec.get(section, ""))
        if path is None:
            return None
        return {"startpoint": path.startpoint, "endpoint": path.endpoint,
                "min_period_ps": round(min_period(path.slack), 1),
                "logic_levels": len(logic(path)), "blocks": blocks_on(path)}

    io = {"input_to_register": io_path("input"), "register_to_output": io_path("output"),
          "input_to_output": io_path("through")}
    every = max([crit_period] + [p["min_period_ps"] for p in io.values() if p])
    return {
        "clock_period_ps": round(period_ns * 1000.0, 1),
        "wire_load": wire_load or "none",
        "critical_path": {
            "startpoint": crit.startpoint,
            "endpoint": crit.endpoint,
            "min_period_ps": round(crit_period, 1),
            "arrival_ps": round(crit.arrival * ps, 1),
            "setup_ps": round(crit.setup * ps, 1),
            "slack_ps": round(crit.slack * ps, 1),
            "logic_levels": len(logic(crit)),
            "blocks": blocks_on(crit),
        },
        "fmax_mhz": round(1e6 / crit_period, 1) if crit_period > 0 else None,
        # Paths from the inputs and to the outputs, under the stated I/O constraints.
        **io,
        "io_constraints": {"input_delay_ps": 0.0, "output_delay_ps": 0.0,
                           "input_driving_cell": driving_cell[0] if driving_cell else None,
                           "output_load": output_load},
        # The period that every stage, I/O included, fits in.
        "min_period_all_paths_ps": round(every, 1),
        "register_groups": len(fanin) if stages else None,
        "register_endpoints": len(rows) if stages else None,
        "stages": stages,
    }
