"""``if4mac report`` on the store and sweep engine: the plan, a small real report (block 1,
the reference pipelined pair, ASIC, one clock), rendering from the JSON, the dirty-tree
refusal, and the staleness check -- on that report (passes, then fails for each kind of
staleness) and on the committed reports/."""

from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner

from if4mac.cli import cli
from if4mac.synth import report as report_mod
from if4mac.synth import runs as runs_mod
from if4mac.synth.report import check_fresh, render
from if4mac.synth.runs import collect, design_id, plan
from if4mac.synth.store import RunSpec, key_parts, run_key
from if4mac.synth.tools import REPO_ROOT


def test_plan_covers_every_architecture_and_runs_nothing_twice():
    roles = plan(block_size=16, ladder_ps=(6000, 4000, 3000, 2500, 2000, 1500))
    specs = [s for _, s in roles]
    assert len(specs) == len(set(specs))
    ladder = [s for r, s in roles if r == "ladder"]
    ids = {(design_id(s), s.unit) for s in ladder}
    assert ids == {(d, u) for d in ("reference-pipelined", "reference-shared", "fused-fp32",
                                    "fused-exact") for u in ("nvfp4", "if4")} | {
        ("fused-exact-serial", "if4")}
    # Six clock targets for every design with a counterpart; the serial converter at one.
    assert sum(1 for s in ladder if design_id(s) == "fused-exact") == 12
    assert sum(1 for s in ladder if design_id(s) == "fused-exact-serial") == 1
    # ECP5: every fused design by default, once per nextpnr seed (1, 2, 3), submitted first.
    ecp5 = [i for i, (r, _) in enumerate(roles) if r == "ecp5"]
    assert ecp5 == list(range(len(ecp5)))
    placed = [(design_id(roles[i][1]), roles[i][1].unit, roles[i][1].pnr_seed) for i in ecp5]
    fused = {(d, u) for d in ("fused-fp32", "fused-exact") for u in ("nvfp4", "if4")} | {
        ("fused-exact-serial", "if4")}
    assert sorted(placed) == sorted((d, u, s) for d, u in fused for s in (1, 2, 3))
    head = [s for r, s in plan(block_size=16, ecp5="headline", ecp5_seeds=(1,)) if r == "ecp5"]
    assert {(design_id(s), s.unit) for s in head} == {("reference-pipelined", "nvfp4"),
                                                       ("reference-pipelined", "if4")}
    assert len(plan(block_size=16, ecp5="all")) > len(roles)
    assert not [r for r, _ in plan(block_size=16, ecp5="none") if r == "ecp5"]
    with pytest.raises(ValueError, match="nextpnr seed"):
        plan(block_size=16, ecp5_seeds=(2**31,))


def test_nextpnr_seed_is_in_the_key_and_the_default_keeps_old_keys():
    def key(**kw):
        return run_key(key_parts(RunSpec(target="ecp5", unit="if4", block_size=1, **kw),
                                 verilog_sha256="0" * 64))
    # Seed 1 is the flow's fixed seed: an explicit 1 is the run stored before seeds existed.
    assert key() == key(pnr_seed=1) != key(pnr_seed=2) != key(pnr_seed=3) != key()


def _ecp5_rec(unit, seed, fmax, did="fused-exact"):
    arch = {"fused-exact": {"arch": "fused-exact"}, "reference-pipelined": {}}[did]
    return {"target": "ecp5", "spec": arch, "design": {"unit": unit},
            "yosys_cells": {"LUT4": 10}, "placed": {"TRELLIS_COMB": 12}, "fmax_mhz": fmax,
            "run_key": {"parts": {"options": {"nextpnr_seed": seed}}}}


def test_ecp5_fmax_ratio_and_its_seed_range():
    from if4mac.synth.report_data import _ecp5, _ecp5_ratios

    # Worked by hand: NVFP4 40, 44, 50 MHz (median 44), IF4 30, 33, 36 (median 33):
    # 33 / 44 = 0.75; range 30 / 50 = 0.6 .. 36 / 40 = 0.9: IF4 slower at every seed pair.
    runs = ([_ecp5_rec("nvfp4", s, f) for s, f in ((1, 44.0), (2, 50.0), (3, 40.0))]
            + [_ecp5_rec("if4", s, f) for s, f in ((1, 36.0), (2, 30.0), (3, 33.0))])
    rows = _ecp5({"runs": runs})
    assert [(r["unit"], r["fmax_mhz"], r["fmax_min_mhz"], r["fmax_max_mhz"]) for r in rows] == [
        ("nvfp4", 44.0, 40.0, 50.0), ("if4", 33.0, 30.0, 36.0)]
    (x,) = _ecp5_ratios(rows)
    assert (x["ratio"], x["ratio_min"], x["ratio_max"], x["seeds"]) == (0.75, 0.6, 0.9, 3)
    assert x["verdict"] == "IF4 slower" and x["spread"]["nvfp4"] == pytest.approx(0.25)
    # Overlapping seeds: 45 MHz IF4 at one seed puts 1 inside the range.
    runs[-1] = _ecp5_rec("if4", 3, 45.0)
    (x,) = _ecp5_ratios(_ecp5({"runs": runs}))
    assert x["verdict"] == "not distinguishable" and x["ratio_max"] == pytest.approx(45 / 40)
    # One seed: a ratio, no spread, and the verdict says so.
    (x,) = _ecp5_ratios(_ecp5({"runs": [runs[0], runs[3]]}))
    assert x["ratio"] == round(36 / 44, 4) and x["verdict"] == "one seed: no spread measured"


def test_arch_and_converter_are_in_the_key():
    base = RunSpec(unit="if4", block_size=1, clock_ps=3000.0)
    keys = {run_key(key_parts(s, verilog_sha256="0" * 64)) for s in (
        base, RunSpec(unit="if4", block_size=1, clock_ps=3000.0, arch="fused-exact"),
        RunSpec(unit="if4", block_size=1, clock_ps=3000.0, arch="fused-exact",
                converter="serial"))}
    assert len(keys) == 3


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    work = tmp_path_factory.mktemp("report-work")
    out = tmp_path_factory.mktemp("report-out")
    data = collect(block_size=1, targets=("asic",), workdir=work, jobs=2,
                   ladder_ps=(6000.0,), noise_seeds=(), designs=["reference-pipelined"],
                   power=False, allow_dirty=True, command="if4mac report --test",
                   log=lambda m: None)
    render(data, out)
    return work, out, data


def test_report_has_every_section_it_ran(small_report):
    _, out, data = small_report
    assert {r["role"] for r in data["runs"]} == {"ladder", "blocks"}
    for r in data["runs"]:
        assert r["run_key"]["sha256"] == run_key(r["run_key"]["parts"])
        assert r["git"]["commit"] == data["git"]["commit"]
    md = (out / "synthesis.md").read_text()
    assert "Generated by `if4mac report --test` from commit" in md
    assert ("--allow-dirty" in md) == bool(data["git"]["dirty"])
    a = json.loads((out / "synthesis.json").read_text())["analysis"]
    # The markdown's design rows are the JSON's numbers.
    for row in a["designs"]:
        assert f"{row['area_um2']:,.1f}" in md
    assert (out / "ladder.png").is_file() and (out / "area.png").is_file()


def test_ecp5_only_report_with_seeds(tmp_path):
    """An FPGA-only report (no ASIC section to fill) of the block-1 fused-exact pair, two
    nextpnr seeds each: the ratio line is the one the seeds' Fmax give. A design's seeds
    place one ``synth_ecp5`` netlist (issue 14: no run done twice): one synthesis job per
    design, named by both seeds' records, whose own steps are nextpnr's only; and a seed
    placed from the shared netlist gives exactly the record of the one-call flow."""
    from if4mac.synth.flow import synthesize
    from if4mac.synth.store import RunStore

    work = tmp_path / "work"
    data = collect(block_size=1, targets=("ecp5",), workdir=work, jobs=2,
                   designs=["fused-exact"], ecp5_seeds=(1, 2), power=False, allow_dirty=True,
                   command="if4mac report --test", log=lambda m: None)
    render(data, tmp_path / "out")
    md = (tmp_path / "out" / "synthesis.md").read_text()
    fmax = {(r["design"]["unit"], r["run_key"]["parts"]["options"]["nextpnr_seed"]): r["fmax_mhz"]
            for r in data["runs"]}
    assert sorted(fmax) == [("if4", 1), ("if4", 2), ("nvfp4", 1), ("nvfp4", 2)]
    assert "## Designs" not in md and "## ECP5" in md
    lo = min(fmax["if4", s] for s in (1, 2)) / max(fmax["nvfp4", s] for s in (1, 2))
    hi = max(fmax["if4", s] for s in (1, 2)) / min(fmax["nvfp4", s] for s in (1, 2))
    assert f"| fused-exact | " in md and f"{lo:.3f} - {hi:.3f}" in md

    synth_keys = {}
    for r in data["runs"]:
        assert set(r["steps_s"]) == {"nextpnr"}, r["steps_s"]
        assert set(r["generic"]["steps_s"]) == {"yosys_synth_ecp5"}
        synth_keys.setdefault(r["design"]["unit"], set()).add(r["generic"]["key"])
    assert all(len(keys) == 1 for keys in synth_keys.values())
    stored = [r for r in RunStore(work / "store" / "generic").records()
              if r["kind"] == "ecp5-synthesis"]
    assert sorted(r["run_key"]["sha256"] for r in stored) == sorted(
        k for keys in synth_keys.values() for k in keys)
    shared = next(r for r in data["runs"] if r["design"]["unit"] == "if4"
                  and r["run_key"]["parts"]["options"]["nextpnr_seed"] == 2)
    alone = synthesize(target="ecp5", unit="if4", block_size=1, arch="fused-exact",
                       nextpnr_seed=2, workdir=tmp_path / "alone")
    assert set(alone["steps_s"]) == {"yosys_synth_ecp5", "nextpnr"}
    for field in ("yosys_cells", "wrapper_cells", "placed", "fmax_mhz", "critical_path",
                  "flow", "verilog_sha256"):
        assert shared[field] == alone[field], field


def test_render_only_gives_the_same_text(small_report, tmp_path):
    _, out, _ = small_report
    (tmp_path / "synthesis.json").write_text((out / "synthesis.json").read_text())
    res = CliRunner().invoke(cli, ["report", "--render-only", "--output-dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "synthesis.md").read_text() == (out / "synthesis.md").read_text()


def test_second_report_reuses_every_run(small_report):
    work, _, data = small_report
    again = collect(block_size=1, targets=("asic",), workdir=work, jobs=1,
                    ladder_ps=(6000.0,), noise_seeds=(), designs=["reference-pipelined"],
                    power=False, allow_dirty=True, log=lambda m: None)
    assert all(r["reused"] for r in again["runs"])


def test_dirty_tree_is_refused_unless_allowed(monkeypatch, tmp_path):
    monkeypatch.setattr(runs_mod, "git_revision", lambda: {"commit": "abc", "dirty": True})
    with pytest.raises(runs_mod.DirtyTree, match="--allow-dirty"):
        collect(block_size=1, targets=("asic",), workdir=tmp_path)
    monkeypatch.setattr(report_mod, "collect", runs_mod.collect)
    res = CliRunner().invoke(cli, ["report", "--block-size", "1", "--target", "asic",
                                   "--workdir", str(tmp_path / "w"),
                                   "--output-dir", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert res.output.strip().count("\n") == 0 and "--allow-dirty" in res.output


@pytest.mark.parametrize("seeds, message", [
    ("99999999999", "nextpnr seed must be an integer in 0..2147483647"),
    ("1,x", "'x' is not a valid seed"), ("0", "must be positive")])
def test_bad_ecp5_seeds_are_one_line_errors(tmp_path, seeds, message):
    res = CliRunner().invoke(cli, ["report", "--ecp5-seeds", seeds, "--allow-dirty",
                                   "--workdir", str(tmp_path / "w"),
                                   "--output-dir", str(tmp_path / "o")])
    # (The installed command prints the error line alone; click's runner adds its usage.)
    last = res.output.strip().splitlines()[-1]
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert last.startswith("Error:") and message in last and not (tmp_path / "o").exists()


def _clean(data):
    """``data`` as if made from one clean commit."""
    d = copy.deepcopy(data)
    for r in [d] + d["runs"] + d.get("power", []):
        r["git"] = {"commit": "c" * 40, "dirty": False}
    return d


def _write(tmp_path, data):
    (tmp_path / "synthesis.json").write_text(json.dumps(data))
    return tmp_path


def test_staleness_check_passes_and_fails(small_report, tmp_path):
    _, _, data = small_report
    clean = _clean(data)
    assert check_fresh(_write(tmp_path, clean)) == []
    # Emitting again (as after a change under hdl/) gives the same hashes: still fresh.
    assert check_fresh(_write(tmp_path, clean),
                       emit=lambda s: report_mod_design_sha(s)) == []

    two = copy.deepcopy(clean)
    two["runs"][0]["git"]["commit"] = "d" * 40
    assert any("2 commits" in p for p in check_fresh(_write(tmp_path, two)))

    dirty = copy.deepcopy(clean)
    dirty["runs"][1]["git"]["dirty"] = True
    assert any("local changes" in p for p in check_fresh(_write(tmp_path, dirty)))

    changed_rtl = copy.deepcopy(clean)
    changed_rtl["source_digest"] = "0" * 16       # the hdl/golden sources changed since
    assert any("Verilog hash differs" in p for p in check_fresh(
        _write(tmp_path, changed_rtl), emit=lambda s: "f" * 64))

    flow = copy.deepcopy(clean)
    parts = flow["runs"][0]["run_key"]["parts"]
    parts["flow_sha256"]["synth/asic.py"] = "0" * 64
    flow["runs"][0]["run_key"]["sha256"] = run_key(parts)
    assert any("synth/asic.py" in p for p in check_fresh(_write(tmp_path, flow)))

    forged = copy.deepcopy(clean)
    forged["runs"][0]["run_key"]["parts"]["clock_ps"] = 1.0
    assert any("does not hash" in p for p in check_fresh(_write(tmp_path, forged)))

    old = {"schema": "if4mac-report/1", "runs": []}
    assert "regenerate" in check_fresh(_write(tmp_path, old))[0]


def report_mod_design_sha(spec):
    from if4mac.synth.store import _design

    return _design(spec).sha256


def test_committed_reports_are_fresh():
    """reports/ comes from one clean commit and the current hdl/ and flow (issue 14)."""
    problems = check_fresh(REPO_ROOT / "reports")
    assert problems == [], "reports/ is stale: " + "; ".join(problems[:5])
