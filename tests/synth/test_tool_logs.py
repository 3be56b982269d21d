"""The synthesis flows' parsers on real tool output (issue 17, item 7): logs and reports kept
from the tool versions the set-up installs, in tests/data/tools (README.md there says which
versions and how they were made). Each parser's answer is checked against a second, real
source: another section or file of the same run, read here with plain regular expressions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from if4mac.synth.asic import _yosys_total_area, area_breakdown
from if4mac.synth.ecp5 import parse_nextpnr_report
from if4mac.synth.libraries import find_library
from if4mac.synth.sta import _sections, parse_full_path, parse_summary

DATA = Path(__file__).resolve().parents[1] / "data" / "tools"


def read(name: str) -> str:
    return (DATA / name).read_text()


# -- OpenSTA ------------------------------------------------------------------------------------

def test_opensta_critical_path_and_endpoints():
    text = read("sta_timing.log")
    assert text.startswith("OpenSTA 2.0.17")
    sec = _sections(text)
    crit = parse_full_path(sec["critical"])
    # The report's own lines, read directly.
    arrival = float(re.search(r"^\s+(-?[\d.]+)\s+data arrival time", sec["critical"], re.M)[1])
    slack = float(re.search(r"^\s+(-?[\d.]+)\s+slack \((?:MET|VIOLATED)\)", sec["critical"],
                            re.M)[1])
    assert crit.arrival == pytest.approx(arrival) and crit.slack == pytest.approx(slack)
    assert crit.startpoint == re.search(r"^Startpoint: (\S+)", sec["critical"], re.M)[1]
    assert crit.endpoint == re.search(r"^Endpoint: (\S+)", sec["critical"], re.M)[1]
    # Ideal clock: period - slack = arrival + setup (the period is in the Tcl the flow wrote).
    assert 10.0 - crit.slack == pytest.approx(crit.arrival + crit.setup, abs=1e-3)
    rows = parse_summary(sec["endpoints"])
    lines = re.findall(r"^\S+ \(\w+\)\s+\S+ \(\w+\)\s+-?[\d.]+$", sec["endpoints"], re.M)
    assert len(rows) == len(lines) > 50
    # The critical path is the worst endpoint.
    assert min(s for _, _, s in rows) == pytest.approx(crit.slack)
    assert all(end.endswith("/D") for _, end, _ in rows)


def test_opensta_stage_paths():
    text = read("sta_paths.log")
    chunks = text.split("@@path")[1:]
    paths = [parse_full_path(c) for c in chunks]
    assert len(paths) == text.count("Startpoint:") >= 3 and all(paths)
    for p, chunk in zip(paths, chunks):
        slack = float(re.search(r"(-?[\d.]+)\s+slack \(", chunk)[1])
        assert p.slack == pytest.approx(slack) and len(p.pins) >= 2


# -- Yosys stat ---------------------------------------------------------------------------------

def test_yosys_stat_area_json_against_text():
    """The flow's area recount from ``stat -json`` equals Yosys' own ``stat -liberty`` total,
    both from the same run; the instance names stand in for the block categories."""
    txt, stat = read("yosys_stat.txt"), json.loads(read("yosys_stat.json"))
    top = "if4_mac_b2_pipelined"
    total = _yosys_total_area(txt)
    assert total == float(re.search(rf"Chip area for top module '\\{top}': ([\d.]+)", txt)[1])
    design = SimpleNamespace(name=top, category=lambda inst: inst, fingerprint=lambda inst: "")
    area = area_breakdown(stat, design, find_library("nangate45"))
    assert area["total_um2"] == pytest.approx(total, abs=0.01)
    flops = sum(int(n) for n in re.findall(r"^\s+DFFR_X\d\s+(\d+)$", txt, re.M))
    assert area["flip_flops"] > 0 and flops >= area["flip_flops"] // 8


# -- nextpnr ------------------------------------------------------------------------------------

def test_nextpnr_report_against_its_log():
    rep = json.loads(read("nextpnr_report.json"))
    log = read("nextpnr.log")
    got = parse_nextpnr_report(rep)
    fmax = [float(f) for f in re.findall(r"Max frequency for clock +'[^']*clk[^']*': ([\d.]+) MHz",
                                         log)]
    assert fmax and got["fmax_mhz"] == pytest.approx(fmax[-1], abs=0.01)
    for kind in ("TRELLIS_COMB", "TRELLIS_FF", "TRELLIS_IO"):
        used, avail = re.findall(rf"^Info:\s+{kind}:\s+(\d+)/\s*(\d+)", log, re.M)[-1]
        assert got["placed"][kind] == int(used), kind
        if f"{kind}_available" in got["placed"]:
            assert got["placed"][f"{kind}_available"] == int(avail)
    cp = got["critical_path"]
    assert cp and cp["delay_ns"] == pytest.approx(cp["logic_ns"] + cp["routing_ns"], abs=2e-3)
