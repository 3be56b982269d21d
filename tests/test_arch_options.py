"""The architecture options shared by ``if4mac verilog``, ``sim`` and ``synth`` (one click
decorator, ``if4mac.command.arch_options``; one validated MacConfig): what they build, and
one-line errors for every bad combination. Run in-process through tests/cli_harness.py.

The simulated values are checked against the independent scalar model (tests/scalar_model.py,
exact Fractions), not golden.
"""

from __future__ import annotations

import json

import pytest

from if4mac.golden.fused import QNAN_BITS, exact_beat_bound
from tests import scalar_model
from tests.cli_harness import assert_one_line_error, invoke

from .sim.conftest import BUILD_ROOT

B = 2
#: The narrowest fused-exact accumulator for IF4 at B = 2 plus two bits: a few beats.
SMALL_WIDTH = exact_beat_bound("if4", B).bit_length() + 3


def test_verilog_fused_exact_serial(tmp_path):
    path = tmp_path / "mac.v"
    code, out, err = invoke("verilog", "--unit", "if4", "--block-size", B, "--arch",
                            "fused-exact", "--acc-width", SMALL_WIDTH, "--converter", "serial",
                            "-o", path)
    assert code == 0, err
    name = f"if4_mac_b{B}_fused_exact_w{SMALL_WIDTH}_serial"
    assert out.startswith(f"{name}: if4 MAC, block size {B}, fused-exact, acc width "
                          f"{SMALL_WIDTH}, converter serial, latency 12 -> ")
    text = path.read_text()
    assert f"module {name}(" in text
    for port in ("overflow", "overrun"):
        assert f"output {port};" in text


def test_verilog_reference_unchanged(tmp_path):
    code, out, err = invoke("verilog", "--unit", "nvfp4", "--block-size", B, "-o",
                            tmp_path / "r.v")
    assert code == 0, err
    assert out.startswith(f"nvfp4_mac_b{B}_pipelined: nvfp4 MAC, block size {B}, pipelined "
                          f"reduction, latency 3 -> ")


BAD = [
    (["--arch", "fused-fp32", "--reduction", "shared"],
     "reduction 'shared' is the reference architecture's"),
    (["--acc-width", "40"], "--acc-width is an option of fused-exact, not of reference"),
    (["--arch", "fused-fp32", "--converter", "serial"],
     "--converter is an option of fused-exact, not of fused-fp32"),
    (["--arch", "fused-exact", "--acc-width", "3"], "--acc-width 3 cannot hold one beat"),
    (["--arch", "fused-exact", "--acc-width", "999"], "--acc-width 999 is above 128"),
    (["--unit", "nvfp4", "--arch", "fused-exact", "--converter", "serial"],
     "NVFP4 has no division"),
    (["--arch", "fused"], "Invalid value for '--arch'"),
    (["--converter", "fast"], "Invalid value for '--converter'"),
]


@pytest.mark.parametrize("args, message", BAD)
def test_verilog_bad_configuration_is_one_line(tmp_path, args, message):
    if "--unit" not in args:
        args = ["--unit", "if4"] + args
    code, out, err = invoke("verilog", "--block-size", B, *args, "-o", tmp_path / "x.v")
    assert_one_line_error(code, out, err)
    assert message in err, err
    assert not (tmp_path / "x.v").exists()


def test_verilog_compat_is_the_reference_port_list(tmp_path):
    code, out, err = invoke("verilog", "--unit", "if4", "--arch", "fused-fp32", "--compat",
                            "-o", tmp_path / "x.v")
    assert_one_line_error(code, out, err)
    assert "--compat wraps the reference architecture's port list" in err


@pytest.mark.parametrize("args, message", BAD[:4])
def test_synth_takes_the_same_options(tmp_path, args, message):
    code, out, err = invoke("synth", "--target", "asic", "--block-size", B, *args,
                            "--workdir", tmp_path / "w")
    assert_one_line_error(code, out, err)
    assert message in err, err


def test_synth_arch_does_not_apply_to_external_rtl(tmp_path):
    # --rtl names someone else's design: an architecture option cannot change it, so it is
    # refused rather than silently ignored (the fused MACs themselves are synthesised in
    # tests/synth/test_flows.py).
    rtl = tmp_path / "top.v"
    rtl.write_text("module top(input a, output y); assign y = a; endmodule\n")
    code, out, err = invoke("synth", "--target", "asic", "--arch", "fused-fp32",
                            "--rtl", rtl, "--top", "top", "--workdir", tmp_path / "w")
    assert_one_line_error(code, out, err)
    assert "they apply to --design mac without --rtl" in err
    assert not (tmp_path / "w").exists()


# -- if4mac sim --arch ------------------------------------------------------------------------

def _beat(a, w, a_sf, w_sf, first=0):
    return {"first": first, "a_sf": a_sf, "w_sf": w_sf, "a": [a] * B, "w": [w] * B}


def stimulus(segments, gap=1) -> dict:
    """Segments of (a, w, a_sf, w_sf) beats (same code on every lane), ``gap`` bubbles after
    each, and a closing beat."""
    beats = []
    for seg in segments:
        beats += [_beat(*b, first=int(i == 0)) for i, b in enumerate(seg)]
        beats += [{"en": 0}] * gap
    beats.append(_beat(0, 0, 0, 0, first=1))
    return {"unit": "if4", "block_size": B, "beats": beats}


SEGMENTS = [
    [(0x2, 0x2, 0x38, 0x38)],                               # 2 x 1 x 1
    [(0x7, 0x9, 0xB8, 0xB8), (0x3, 0x8, 0xB8, 0x40)],        # INT.INT (36/49), INT.FP (6/7)
    [(0x7, 0x7, 0x7E, 0x7E)] * 12,                          # 12 maximal beats: overflows
    [(0x1, 0x1, 0x01, 0x01)] * 3,                           # the smallest scales
]


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("IF4MAC_SIM_BUILD", str(BUILD_ROOT))


@pytest.mark.parametrize("arch", ["fused-fp32", "fused-exact"])
def test_sim_arch_values(tmp_path, env, arch):
    """``if4mac sim --arch`` (plain Verilog testbench, Icarus): the results of the scalar
    model, including fused-exact's NaN for the segment its small accumulator overflows."""
    path = tmp_path / "stim.json"
    doc = stimulus(SEGMENTS)
    path.write_text(json.dumps(doc))
    extra = ["--acc-width", SMALL_WIDTH] if arch == "fused-exact" else []
    code, out, err = invoke("sim", "--unit", "if4", "--stimulus", path, "--simulator",
                            "icarus", "--testbench", "sv", "--arch", arch, *extra)
    assert code == 0, err
    width = SMALL_WIDTH if arch == "fused-exact" else None
    want = scalar_model.run_fused(arch, "if4", doc["beats"], acc_width=width)
    assert json.loads(out) == [f"0x{b:08x}" for b in want]
    assert (f"0x{QNAN_BITS:08x}" in json.loads(out)) == (arch == "fused-exact")


def test_sim_serial_converter_overrun_exit_3(tmp_path, env):
    """Closing beats 2 cycles apart: the serial converter refuses results; exit 3 (the
    shared tree's status) unless --allow-overrun, and the results that came out are right."""
    path = tmp_path / "stim.json"
    doc = stimulus([[(0x2, 0x2, 0x38, 0x38)]] * 4, gap=1)
    path.write_text(json.dumps(doc))
    args = ("sim", "--unit", "if4", "--stimulus", path, "--simulator", "icarus", "--arch",
            "fused-exact", "--converter", "serial")
    code, out, err = invoke(*args)
    assert code == 3, err
    assert "overrun: the serial converter lost" in err
    code, out, err = invoke(*args, "--allow-overrun")
    assert code == 0, err
    # Closes at rows 2, 4, 6, 8: 2 is accepted, 4..8 within 8 cycles of it are refused.
    assert json.loads(out) == ["0x40000000"]


@pytest.mark.parametrize("args, message", [
    (["--arch", "fused-fp32", "--reduction", "shared"],
     "reduction 'shared' is the reference architecture's"),
    (["--arch", "fused-exact", "--converter", "serial", "--testbench", "native", "--jobs", "2"],
     "--jobs needs --reduction pipelined (and no --converter serial)"),
    (["--acc-width", "50"], "--acc-width is an option of fused-exact"),
])
def test_sim_bad_configuration_is_one_line(tmp_path, env, args, message):
    path = tmp_path / "stim.json"
    path.write_text(json.dumps(stimulus(SEGMENTS[:1])))
    code, out, err = invoke("sim", "--unit", "if4", "--stimulus", path, *args)
    assert_one_line_error(code, out, err)
    assert message in err, err


def test_verilog_compat_reference(tmp_path):
    """--compat with the reference architecture: the core and the wrapper around it."""
    code, out, err = invoke("verilog", "--unit", "if4", "--block-size", B, "--compat", "-o",
                            tmp_path / "m.v")
    assert code == 0, err
    assert f"around if4_mac_b{B}_pipelined -> " in out
    assert f"if4_mac_b{B}_pipelined" in (tmp_path / "m_compat.sv").read_text()
