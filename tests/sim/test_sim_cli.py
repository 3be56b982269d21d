"""``if4mac sim`` end to end, as a user runs it: hand-made stimulus with hand-computed results,
the files users make (`if4mac stimulus --random`, the demo's quantized dot products), waves,
and one-line errors for bad input.

The hand-made stimulus is scored against values computed here from the spec with numpy
float32, not by golden: it checks the whole chain (stimulus file, driver, RTL, monitor, JSON
out) against an independent reference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from .conftest import BUILD_ROOT

#: f32(6/7) and f32(36/49), as docs/spec.md gives their bit patterns.
F32_6_7 = np.uint32(0x3F5B6DB7).view(np.float32)
F32_36_49 = np.uint32(0x3F3C14E6).view(np.float32)
B = 16


def if4mac(*args, cwd=None):
    return subprocess.run([sys.executable, "-c", "from if4mac.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "IF4MAC_SIM_BUILD": str(BUILD_ROOT)})


def ref_element(code: int, is_int: bool) -> np.float32:
    if is_int:
        return np.float32(code - 16 if code >= 8 else code)
    exp, man = (code >> 1) & 3, code & 1
    mag = man / 2 if exp == 0 else (1 + man / 2) * 2.0 ** (exp - 1)
    return np.float32(-mag if code & 8 else mag)


def ref_scale(byte: int) -> np.float32:
    exp, man = (byte >> 3) & 15, byte & 7
    if exp == 15 and man == 7:
        man = 6
    return np.float32(man / 8 * 2.0 ** -6 if exp == 0 else (1 + man / 8) * 2.0 ** (exp - 7))


def ref_segment(unit: str, beats) -> int:
    """binary32 bits of one segment: beats are (a code, w code, a_sf, w_sf), same on all lanes."""
    lanes = None
    for a, w, a_sf, w_sf in beats:
        a_int = unit == "if4" and a_sf >= 0x80
        w_int = unit == "if4" and w_sf >= 0x80
        p = ref_element(a, a_int) * ref_element(w, w_int)      # exact
        sf = ref_scale(a_sf) * ref_scale(w_sf)                 # exact
        if a_int + w_int == 1:
            sf = sf * F32_6_7
        elif a_int and w_int:
            sf = sf * F32_36_49
        m = np.full(B, p * sf, dtype=np.float32)
        lanes = m if lanes is None else lanes + m
    while len(lanes) > 1:
        lanes = lanes[0::2] + lanes[1::2]
    return int(np.float32(lanes[0]).view(np.uint32))


SEGMENTS = [
    [(0x2, 0x2, 0x38, 0x38)],                               # 16 x 1.0 x 1.0 = 16
    [(0x7, 0x7, 0x7E, 0x7E), (0x7, 0x7, 0x7F, 0x7E)],        # 6 x 6 x 448 x 448, twice
    [(0x8, 0x2, 0x38, 0x38), (0x8, 0x2, 0x00, 0x38)],        # -0 products: result -0
    [(0x7, 0x9, 0xB8, 0xB8)],                               # IF4: INT 7 x INT -7 x 36/49
    [(0x3, 0x8, 0xB8, 0x40), (0x5, 0x5, 0x30, 0xC1)],        # one INT operand per beat: 6/7
    [(0x1, 0x1, 0x01, 0x01)] * 3,                           # the smallest scales
]


def hand_stimulus(unit: str) -> dict:
    beats = []
    for seg in SEGMENTS:
        for i, (a, w, a_sf, w_sf) in enumerate(seg):
            beats.append({"first": int(i == 0), "a_sf": a_sf, "w_sf": w_sf, "a": [a] * B,
                          "w": [w] * B})
        beats.append({"en": 0})
    beats.append({"first": 1, "a_sf": 0, "w_sf": 0, "a": [0] * B, "w": [0] * B})
    return {"unit": unit, "block_size": B, "beats": beats}


def test_reference_values_are_what_the_spec_says():
    assert ref_segment("nvfp4", SEGMENTS[0]) == 0x41800000
    assert ref_segment("if4", SEGMENTS[2]) == 0x80000000
    exact = 6 * 6 * 448 * 448 * 2 * B                        # exact in binary32
    assert ref_segment("nvfp4", SEGMENTS[1]) == int(np.float32(exact).view(np.uint32))
    assert ref_segment("nvfp4", SEGMENTS[3]) == 0xC2400000  # E2M1 6 x -0.5 x 16 = -48


RUNS = [("if4", "icarus", "cocotb"), ("nvfp4", "icarus", "cocotb"),
        ("if4", "verilator", "cocotb"), ("nvfp4", "verilator", "cocotb"),
        ("if4", "icarus", "sv"),
        # A Verilator build of its own (about a minute); the benchmark uses this path too.
        pytest.param("if4", "verilator", "sv", marks=pytest.mark.slow)]


@pytest.mark.parametrize("unit, simulator, testbench", RUNS)
def test_hand_made_stimulus(tmp_path, unit, simulator, testbench):
    path = tmp_path / "stim.json"
    path.write_text(json.dumps(hand_stimulus(unit)))
    out = if4mac("sim", "--unit", unit, "--stimulus", str(path), "--simulator", simulator,
                 "--testbench", testbench)
    assert out.returncode == 0, out.stderr
    want = [f"0x{ref_segment(unit, seg):08x}" for seg in SEGMENTS]
    assert json.loads(out.stdout) == want
    golden = if4mac("golden", "--stimulus", str(path))
    assert out.stdout == golden.stdout


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_user_files_random_and_demo(tmp_path, simulator):
    rand = tmp_path / "rand.json"
    made = if4mac("stimulus", "--unit", "nvfp4", "--random", "40" if simulator == "icarus"
                  else "400", "--seed", "3", "-o", str(rand))
    assert made.returncode == 0, made.stderr
    demo = if4mac("demo", "--workdir", str(tmp_path / "demo"))
    assert demo.returncode == 0, demo.stderr
    for unit, path in (("nvfp4", rand), ("if4", tmp_path / "demo" / "if4_stimulus.json")):
        out = if4mac("sim", "--unit", unit, "--stimulus", str(path), "--simulator", simulator)
        assert out.returncode == 0, out.stderr
        assert out.stdout == if4mac("golden", "--stimulus", str(path)).stdout


def test_waves(tmp_path):
    path = tmp_path / "stim.json"
    path.write_text(json.dumps(hand_stimulus("if4")))
    waves = tmp_path / "run.fst"
    out = if4mac("sim", "--unit", "if4", "--stimulus", str(path), "--simulator", "icarus",
                 "--waves", str(waves), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert waves.stat().st_size > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.fst", "stim.json"]


@pytest.mark.slow
def test_waves_verilator(tmp_path):
    path = tmp_path / "stim.json"
    path.write_text(json.dumps(hand_stimulus("if4")))
    waves = tmp_path / "run.fst"
    out = if4mac("sim", "--unit", "if4", "--stimulus", str(path), "--waves", str(waves))
    assert out.returncode == 0, out.stderr
    assert waves.stat().st_size > 1000


@pytest.mark.parametrize("args, message", [
    (["--unit", "nvfp4"], "is a if4 stimulus, but --unit is nvfp4"),
    (["--unit", "if4", "--waves", "x.vcd"], "name the file *.fst"),
    (["--unit", "if4", "--testbench", "sv", "--waves", "x.fst"], "--waves needs the cocotb"),
    (["--unit", "if4", "--simulator", "ghdl"], "Invalid value for '--simulator'"),
])
def test_bad_usage_is_one_line_exit_2(tmp_path, args, message):
    path = tmp_path / "stim.json"
    path.write_text(json.dumps(hand_stimulus("if4")))
    out = if4mac("sim", "--stimulus", str(path), *args)
    assert out.returncode == 2
    assert message in out.stderr and out.stdout == ""


def test_bad_stimulus_file_is_one_line_exit_2(tmp_path):
    path = tmp_path / "stim.json"
    path.write_text('{"unit": "if4", "beats": [{"first": 1}]}')
    out = if4mac("sim", "--unit", "if4", "--stimulus", str(path))
    assert out.returncode == 2 and "beat 0: missing 'a_sf'" in out.stderr
    out = if4mac("sim", "--unit", "if4", "--stimulus", str(tmp_path / "none.json"))
    assert out.returncode == 2 and out.stderr.count("\n") == 1


def test_mismatch_prints_results_and_report_exit_1(tmp_path, monkeypatch):
    """The exit path for a disagreement, with the simulation replaced by a failed outcome
    (the faulty-design tests show that real disagreements produce one)."""
    from click.testing import CliRunner

    from if4mac.sim import runner
    from if4mac.sim.cli import sim

    path = tmp_path / "stim.json"
    path.write_text(json.dumps(hand_stimulus("if4")))
    failed = runner.TestOutcome("run_stimulus", "failed", "", ["0x41800000"],
                                "RTL and golden disagree: segment 0 (...)")
    monkeypatch.setattr(runner, "design_verilog", lambda *a: runner.Design(
        "if4", B, "pipelined", "top", 6, ""))
    monkeypatch.setattr(runner, "build", lambda *a, **k: None)
    monkeypatch.setattr(runner, "run_job", lambda *a, **k: {"run_stimulus": failed})
    result = CliRunner().invoke(sim, ["--unit", "if4", "--stimulus", str(path),
                                      "--simulator", "icarus"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == ["0x41800000"]
    assert "RTL and golden disagree: segment 0" in result.stderr
