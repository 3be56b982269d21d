"""Content-addressed runs: every part of the key changes it, and the store never hands back
a record made under another key.

The flow-script and library cases change real files (a copy of synth/ and of the Liberty
file) and check that the key follows; the end-to-end case runs the 8 x 8 calibration
multiplier (seconds), reuses it, then edits the copied flow and sees it run again.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from if4mac.synth import store as runs
from if4mac.synth.libraries import find_library
from if4mac.synth.profile import strip_stamps, yosys_steps
from if4mac.synth.store import (RunSpec, RunStore, execute, key_parts, power_key_parts,
                               run_key)
from if4mac.synth.tools import REPO_ROOT

REGMUL = RunSpec(target="asic", design="regmul", width=4, clock_ps=2000.0)


@pytest.fixture
def flow_copy(tmp_path, monkeypatch):
    """A copy of the flow modules that the key is read from."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "synth", root / "synth")
    monkeypatch.setattr(runs, "FLOW_ROOT", root)
    return root


def test_every_key_part_changes_the_key(flow_copy, tmp_path):
    lib = find_library("nangate45")
    own_lib = tmp_path / "lib.lib"
    shutil.copy(lib.path, own_lib)
    spec = replace(REGMUL, liberty=str(own_lib))
    base = key_parts(spec)
    key = run_key(base)
    assert key == run_key(key_parts(spec))   # deterministic

    # The Verilog.
    assert run_key(key_parts(spec, verilog_sha256="0" * 64)) != key
    assert run_key(key_parts(replace(spec, width=5))) != key
    # A flow script's text (one added comment in the Yosys script templates).
    scripts = flow_copy / "synth" / "scripts.py"
    scripts.write_text(scripts.read_text() + "\n# changed\n")
    changed = key_parts(spec)
    assert changed["flow_sha256"]["synth/scripts.py"] != base["flow_sha256"]["synth/scripts.py"]
    assert run_key(changed) != key
    scripts.write_text(scripts.read_text()[:-len("\n# changed\n")])
    assert run_key(key_parts(spec)) == key
    # The library file's content (a comment appended: same cells, another file).
    with open(own_lib, "a") as f:
        f.write("\n/* edited */\n")
    assert run_key(key_parts(spec)) != key
    # The clock target, the ABC delay target, the permutation seed, flattening.
    for other in (replace(spec, clock_ps=1000.0), replace(spec, abc_delay_target=True),
                  replace(spec, abc_seed=3), replace(spec, flat=True)):
        assert run_key(key_parts(other)) != run_key(key_parts(spec))
    # A power analysis: its synthesis run, workload, power flow and clock.
    pk = run_key(power_key_parts(key, "a" * 64, 2000.0))
    assert pk != run_key(power_key_parts(key, "b" * 64, 2000.0))
    assert pk != run_key(power_key_parts(key, "a" * 64, 1000.0))
    assert pk != run_key(power_key_parts("0" * 64, "a" * 64, 2000.0))
    power_py = flow_copy / "synth" / "power.py"
    power_py.write_text(power_py.read_text() + "\n# changed\n")
    assert run_key(power_key_parts(key, "a" * 64, 2000.0)) != pk


def test_tool_versions_are_in_the_key(monkeypatch):
    parts = key_parts(REGMUL)
    assert parts["tools"]["yosys"].startswith("Yosys") and "opensta" in parts["tools"]
    fake = dict(parts["tools"], yosys="Yosys 99.0")
    monkeypatch.setattr(runs, "tool_versions", lambda: fake)
    assert run_key(key_parts(REGMUL)) != run_key(parts)


def test_store_refuses_records_of_other_keys(tmp_path):
    store = RunStore(tmp_path)
    parts = {"schema": "x", "verilog_sha256": "1"}
    key = run_key(parts)
    rec = {"run_key": {"sha256": key, "parts": parts}, "area": 1}
    store.put(rec)
    assert store.get(key)["area"] == 1
    other = run_key({"schema": "x", "verilog_sha256": "2"})
    assert store.get(other) is None
    # A record copied under another key's name is not that key's record.
    store.path(other).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(store.path(key), store.path(other))
    assert store.get(other) is None
    # Nor is one whose parts were edited after the fact.
    doc = json.loads(store.path(key).read_text())
    doc["run_key"]["parts"]["verilog_sha256"] = "3"
    store.path(key).write_text(json.dumps(doc))
    assert store.get(key) is None
    with pytest.raises(ValueError):
        store.put({"run_key": {"sha256": key, "parts": {"other": 1}}})


def test_execute_reuses_only_the_same_key(flow_copy, tmp_path):
    store, work = tmp_path / "store", tmp_path / "work"
    first = execute(REGMUL, store, work)
    assert first["reused"] is False
    path = RunStore(store).path(first["run_key"]["sha256"])
    stamp = path.stat().st_mtime_ns
    assert first["git"]["commit"] and "dirty" in first["git"]
    assert first["run_key"]["parts"]["clock_ps"] == 2000.0
    # Where the time went, from Yosys's time-stamped logs and the OpenSTA call: the mapping
    # run's own steps, and those of the generic job it mapped from (named by its key).
    steps = first["steps_s"]
    assert set(steps) >= {"abc", "yosys_other", "opensta"} and "yosys_synth" not in steps
    assert all(v >= 0 for v in steps.values()) and steps["abc"] > 0
    assert first["wall_s"] >= steps["abc"]
    generic = first["generic"]
    assert generic["reused"] is False and generic["steps_s"]["yosys_synth"] > 0
    assert RunStore(store / "generic").get(generic["key"]) is not None

    again = execute(REGMUL, store, work)
    assert again["reused"] is True and again["area"] == first["area"]
    assert path.stat().st_mtime_ns == stamp

    # Another flow (the ABC script's text changed): a new key, and the run is done again.
    asic = flow_copy / "synth" / "asic.py"
    asic.write_text(asic.read_text() + "\n# another flow\n")
    third = execute(REGMUL, store, work)
    assert third["reused"] is False
    assert third["run_key"]["sha256"] != first["run_key"]["sha256"]
    assert len(RunStore(store).records()) == 2
    # Its generic part's script did not change: that job is reused, not run again.
    assert third["generic"] == {**generic, "reused": True}


def test_yosys_steps_from_a_time_stamped_log():
    log = "\n".join([
        "[00000.000100] 1. Executing Verilog-2005 frontend: x.v",
        "[00000.500000] 2. Executing SYNTH pass.",
        "[00000.600000] 2.1. Executing ABC pass (technology mapping using ABC).",
        "[00002.000000] 3. Executing DFFLIBMAP pass",
        "[00002.250000] 4. Executing ABC pass (technology mapping using ABC).",
        "[00007.250000] 5. Executing Verilog backend.",
        "[00007.500000] End of script.",
    ])
    assert yosys_steps(log) == {"yosys_synth": 2.0, "abc": 5.0, "yosys_other": 0.5}
    assert yosys_steps("no stamps here") == {}
    # The mapping run's log (it starts from the generic part's RTLIL, no SYNTH pass):
    # everything but ABC is "other".
    mapping = "\n".join([
        "[00000.000100] 1. Executing RTLIL frontend.",
        "[00001.000100] 2. Executing DFFLIBMAP pass",
        "[00001.500100] 3. Executing ABC pass (technology mapping using ABC).",
        "[00004.500100] 4. Executing Verilog backend.",
        "[00005.000100] End of script.",
    ])
    assert yosys_steps(mapping, mapping=True) == {"abc": 3.0, "yosys_other": 2.0}
    # The generic part's log: synth's coarse passes run by name between two SYNTH passes
    # (``-run :coarse`` and ``-run fine:``) are synthesis; only what follows the last is not.
    generic = "\n".join([
        "[00000.000100] 1. Executing Verilog-2005 frontend: x.v",
        "[00000.500100] 2. Executing SYNTH pass.",
        "[00000.600100] 3. Executing PROC pass (convert processes to netlists).",
        "[00001.600100] 4. Executing SHARE pass (SAT-based resource sharing).",
        "[00003.600100] 5. Executing SYNTH pass.",
        "[00006.600100] 6. Executing RENAME pass.",
        "[00006.700100] 7. Executing RTLIL backend.",
        "[00007.100100] End of script.",
    ])
    assert yosys_steps(generic) == {"yosys_synth": 6.6, "abc": 0.0, "yosys_other": 0.5}
    assert strip_stamps("[00001.5] {\n[00001.6]  \"a\": 1\n}") == "{\n \"a\": 1\n}"
