"""The sweep engine: specs, a real sweep on a two-worker LocalCluster, resuming after an
interrupt without re-running what finished, the results table, and the CLI's errors.

Designs are small (a block-1 MAC; the 8 x 8 calibration multiplier for the interrupt test,
whose runs take seconds) so the file stays within a couple of minutes.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from if4mac.cli import cli
from if4mac.synth.store import RunStore
from if4mac.synth.sweep import QUIET_LOCAL_CLUSTER, TABLE_COLUMNS, open_client, sweep_specs


def test_sweep_specs():
    specs = sweep_specs(units=("nvfp4", "if4"), block_sizes=(1, 2), clocks_ps=(3000.0, 2000.0, 1000.0),
                        repeats=3, repeat_at=(2000.0,))
    assert len(specs) == 2 * 2 * (3 + 2)
    assert len(set(specs)) == len(specs)
    assert {s.abc_seed for s in specs if s.clock_ps == 2000.0} == {None, 1, 2}
    assert {s.abc_seed for s in specs if s.clock_ps != 2000.0} == {None}
    assert all(s.abc_delay_target for s in specs)
    # ECP5 repeats place with nextpnr seeds after the flow's own (None: its fixed seed 1).
    ecp5 = sweep_specs(units=("if4",), clocks_ps=(25000.0,), repeats=3, targets=("ecp5",))
    assert [s.pnr_seed for s in ecp5] == [None, 2, 3]
    assert all(s.freq_mhz == pytest.approx(40.0) and s.abc_seed is None for s in ecp5)
    # The calibration multiplier has no unit: one run per clock, not one per unit.
    assert len(sweep_specs(units=("nvfp4", "if4"), clocks_ps=(1000.0,), design="regmul")) == 1
    with pytest.raises(ValueError):
        sweep_specs(repeats=0)


def _sweep(tmp_path, *args):
    return ["sweep", "--store", str(tmp_path / "runs"), "--workdir", str(tmp_path / "work"),
            "-o", str(tmp_path / "results"), "--no-progress", *args]


def test_sweep_on_two_workers(tmp_path):
    args = _sweep(tmp_path, "--units", "nvfp4,if4", "--block-sizes", "1", "--clock-ps", "3000",
                  "--workers", "2", "--plot", str(tmp_path / "ladder.png"))
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "results.json").read_text())
    rows = doc["rows"]
    assert [r["unit"] for r in rows] == ["nvfp4", "if4"] and doc["workers"] == 2
    assert not any(r["reused"] for r in rows)
    for r, rec in zip(rows, doc["records"]):
        assert r["area_um2"] == rec["area"]["total_um2"] > 0
        assert r["achieved_ps"] == rec["timing"]["critical_path"]["min_period_ps"]
        assert r["clock_ps"] == 3000.0 and r["abc_delay_target"] is True
        assert r["wall_s"] > 0 and r["abc_s"] > 0 and r["opensta_s"] > 0
    # The two runs went to the two worker processes, neither of them this one.
    pids = {rec["worker"]["pid"] for rec in doc["records"]}
    assert len(pids) == 2 and os.getpid() not in pids
    with open(tmp_path / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert tuple(table[0]) == TABLE_COLUMNS and len(table) == 2
    assert "IF4/NVFP4 area at" in res.output
    assert (tmp_path / "ladder.png").read_bytes()[:4] == b"\x89PNG"

    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    rows2 = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert all(r["reused"] for r in rows2)
    assert [r["run_key"] for r in rows2] == [r["run_key"] for r in rows]


def test_interrupted_sweep_resumes_without_rerunning(tmp_path):
    clocks = "3000,2000,1500,1200,1000,800"
    args = _sweep(tmp_path, "--design", "regmul", "--clock-ps", clocks, "--workers", "1")
    proc = subprocess.Popen([sys.executable, "-m", "if4mac.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    store = RunStore(tmp_path / "runs")
    deadline = time.monotonic() + 600
    while not list(store.root.glob("??/*.json")):
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline, "no run finished in 10 minutes"
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out
    assert "interrupted after" in out and "Traceback" not in out
    done = {p.stem: p.stat().st_mtime_ns for p in store.root.glob("??/*.json")}
    assert 1 <= len(done) < 6

    res = CliRunner().invoke(cli, args[:-1] + ["2"])
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert len(rows) == 6
    for r in rows:
        assert r["reused"] == (r["run_key"] in done)
    # The finished runs' records were not rewritten.
    assert {k: store.path(k).stat().st_mtime_ns for k in done} == done
    assert len(store.records()) == 6


@pytest.mark.parametrize("args,message", [
    (["--units", "if4,fp8"], "'fp8' is not one of"),
    (["--block-sizes", "2,0"], "must be positive"),
    (["--block-sizes", "two"], "not a valid"),
    (["--clock-ps", "3000,,2000"], "comma-separated list"),
    (["--clock-ps", "3000", "--repeat-at", "2000"], "--repeat-at must name"),
    (["--target", "ecp5", "--power"], "apply to --target asic only"),
    (["--tensor", "w"], "--tensor needs --power-tensor"),
    (["--power-tensor", "/nonexistent.safetensors"], "no such file"),
    (["--liberty", "/nonexistent.lib"], "Liberty file not found"),
])
def test_sweep_cli_errors_are_one_line(tmp_path, args, message):
    res = CliRunner().invoke(cli, _sweep(tmp_path, *args))
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def _worker_settings():
    import dask
    import distributed  # noqa: F401  (loads Dask's distributed defaults)
    return {k: dask.config.get(k) for k in QUIET_LOCAL_CLUSTER}


@pytest.mark.parametrize("quiet", [True, False])
def test_local_cluster_workers_start_with_the_quiet_settings(quiet):
    """The LocalCluster's worker processes run with QUIET_LOCAL_CLUSTER (and only when asked:
    with quiet=False they keep Dask's defaults), and this process's configuration is left as
    it was."""
    import dask
    outside = _worker_settings()
    client, close = open_client(None, 1, quiet=quiet)
    try:
        (seen,) = client.run(_worker_settings).values()
    finally:
        close()
    assert _worker_settings() == outside
    if quiet:
        assert seen == QUIET_LOCAL_CLUSTER
    else:
        assert seen == outside and seen != QUIET_LOCAL_CLUSTER
    assert dask.config.get("distributed.worker.profile.enabled") is True
