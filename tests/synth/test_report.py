"""``if4mac report`` end to end on the smallest MAC (block size 1, ASIC only): runs, reuse
of still-valid runs, and the rendered markdown, JSON and figures."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from if4mac.cli import cli
from if4mac.synth.report import collect, render

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    work = tmp_path_factory.mktemp("report-work")
    logs = []
    data = collect(block_size=1, targets=("asic",), workdir=work, jobs=2, log=logs.append)
    return work, data, logs


def test_collect_runs_every_configuration(small_report):
    _, data, logs = small_report
    runs = {(r["design"]["unit"], r["design"]["reduction"], r["flat"]) for r in data["runs"]}
    assert runs == {(u, red, flat) for u in ("nvfp4", "if4") for red in ("pipelined", "shared")
                    for flat in (False, True)}
    assert all(r["target"] == "asic" and r["design"]["block_size"] == 1 for r in data["runs"])
    assert sum("synthesising" in m for m in logs) == 8
    assert data["git"]["commit"] and data["tools"]["opensta"].startswith("OpenSTA")
    # IF4 differs from NVFP4 only in the lane multipliers and the scale path.
    for red in ("pipelined", "shared"):
        nv, if4 = (next(r for r in data["runs"] if r["design"]["unit"] == u and not r["flat"]
                        and r["design"]["reduction"] == red) for u in ("nvfp4", "if4"))
        for block in ("lane multipliers", "scale path"):
            assert if4["area"]["blocks_um2"][block] > nv["area"]["blocks_um2"][block], block
            assert if4["area"]["rtl_sha256"][block] != nv["area"]["rtl_sha256"][block]
        for block in ("product x scale multipliers", "lane accumulators", "reduction"):
            assert if4["area"]["rtl_sha256"][block] == nv["area"]["rtl_sha256"][block]


def test_collect_reuses_matching_runs(small_report):
    work, data, _ = small_report
    logs = []
    again = collect(block_size=1, targets=("asic",), workdir=work, jobs=2, log=logs.append)
    assert sum("reusing" in m for m in logs) == 8 and not any("synthesising" in m for m in logs)
    assert again["runs"] == data["runs"]
    # A run whose record no longer matches its design is redone, not reused.
    path = work / "runs" / "if4_mac_b1_shared-asic-nangate45.json"
    rec = json.loads(path.read_text())
    rec["verilog_sha256"] = "0" * 64
    path.write_text(json.dumps(rec))
    logs.clear()
    collect(block_size=1, targets=("asic",), workdir=work, jobs=2, log=logs.append)
    assert [m for m in logs if "synthesising" in m] == [
        "report: synthesising if4_mac_b1_shared-asic-nangate45 ..."]


def test_render_writes_report_json_and_figures(small_report, tmp_path):
    _, data, _ = small_report
    files = render(data, tmp_path)
    assert sorted(f.name for f in files) == ["area.png", "delay.png", "synthesis.json",
                                             "synthesis.md"]
    for png in ("area.png", "delay.png"):
        blob = (tmp_path / png).read_bytes()
        assert blob.startswith(PNG_MAGIC) and len(blob) > 5000
    assert json.loads((tmp_path / "synthesis.json").read_text()) == data
    md = (tmp_path / "synthesis.md").read_text()
    for needle in ("block size 1", "IF4 / NVFP4", "lane multipliers", "scale path",
                   "NangateOpenCellLibrary", "typical, 1.1 V", data["git"]["commit"],
                   "+4.7 %", "![area by block](area.png)", "### shared reduction",
                   "OpenSTA", "| same |", "| **differs** |",
                   "ASIC area (whole design, flat)", "whole design flat: area"):
        assert needle in md, needle
    # The Yosys that ran, whatever version the set-up installed (Debian's), is named.
    yosys = data["tools"]["yosys"]
    assert yosys.startswith("Yosys ") and f"yosys {yosys}" in md, yosys
    # Every IF4/NVFP4 ratio in the summary table is a number, not a placeholder.
    summary = md.split("## Summary")[1].split("##")[0]
    assert "ASIC area (blocks kept apart), um^2" in summary and "n/a" not in summary


def test_report_cli_render_only(small_report, tmp_path):
    _, data, _ = small_report
    render(data, tmp_path)
    before = (tmp_path / "synthesis.md").read_text()
    (tmp_path / "synthesis.md").unlink()
    res = CliRunner().invoke(cli, ["report", "--render-only", "--output-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "synthesis.md").read_text() == before


def test_report_cli_render_only_without_json(tmp_path):
    res = CliRunner().invoke(cli, ["report", "--render-only", "--output-dir", str(tmp_path)])
    assert res.exit_code == 2 and "cannot read" in res.output
