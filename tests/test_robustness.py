"""Issue 15: each numbered defect, as a new user would hit it, through the real entry point.

Every test here failed on the code before the fix (see the issue for the old behaviour). The
commands run in this process (tests/cli_harness.py) so that the long work a command would
start can be replaced by a stand-in that records it was reached: a path or option problem
must stop the command *before* that.
"""

from __future__ import annotations

import gc
import json
import warnings
import zipfile

import numpy as np
import pytest

from if4mac.golden import load_stimulus, random_stream, run
from if4mac.golden.quantize import FORMATS, dequantize, quantize
from tests.cli_harness import Reached, assert_one_line_error, invoke


def _reached(*args, **kwargs):
    raise Reached


@pytest.fixture
def tensor(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32))
    return path


@pytest.fixture
def quantized(tmp_path, tensor):
    out = tmp_path / "xq.npz"
    assert invoke("quantize", "--format", "if4", "--input", tensor, "-o", out)[0] == 0
    return out


# --- 2. output equal to input ---------------------------------------------------------------

def test_quantize_refuses_to_overwrite_its_input(tmp_path, quantized):
    before = quantized.read_bytes()
    code, out, err = invoke("quantize", "--format", "if4", "--input", quantized, "-o", quantized)
    assert_one_line_error(code, out, err)
    assert "same file as --input" in err and quantized.read_bytes() == before
    link = tmp_path / "link.npz"
    link.symlink_to(quantized)
    assert_one_line_error(*invoke("quantize", "--format", "if4", "--input", quantized,
                                  "-o", link))
    assert quantized.read_bytes() == before


def test_stimulus_refuses_to_overwrite_an_operand(quantized):
    before = quantized.read_bytes()
    code, out, err = invoke("stimulus", "--unit", "if4", "--activations", quantized,
                            "--weights", quantized, "-o", quantized)
    assert_one_line_error(code, out, err)
    assert "same file as --activations" in err and quantized.read_bytes() == before


# --- 3. synth numeric options ---------------------------------------------------------------

@pytest.mark.parametrize("option, value", [
    ("--clock-ps", "inf"), ("--clock-ps", "nan"), ("--clock-ps", "1e300"),
    ("--clock-ps", "1e-300"), ("--clock-ps", "-5"), ("--timeout", "inf"), ("--timeout", "0"),
    ("--width", "100000"), ("--block-size", "1000"),
])
def test_synth_rejects_bad_numbers_before_any_tool(monkeypatch, tmp_path, option, value):
    from if4mac.synth import cli as synth_cli

    monkeypatch.setattr(synth_cli, "synthesize", _reached)
    code, out, err = invoke("synth", "--target", "asic", "--workdir", tmp_path, option, value)
    assert_one_line_error(code, out, err)
    assert option in err


def test_synth_rejects_bad_frequency(monkeypatch, tmp_path):
    from if4mac.synth import cli as synth_cli

    monkeypatch.setattr(synth_cli, "synthesize", _reached)
    for value in ("inf", "0", "1e9"):
        assert_one_line_error(*invoke("synth", "--target", "ecp5", "--workdir", tmp_path,
                                      "--freq-mhz", value))
    with pytest.raises(Reached):           # a sane value gets to the work
        invoke("synth", "--target", "asic", "--workdir", tmp_path, "--clock-ps", "2500")


def test_synthesize_api_checks_numbers_too(tmp_path):
    from if4mac.synth import synthesize

    with pytest.raises(ValueError, match="clock period must be a finite number"):
        synthesize(target="asic", design="regmul", clock_ps=float("inf"), workdir=tmp_path)
    with pytest.raises(ValueError, match="timeout must be a finite number"):
        synthesize(target="ecp5", design="regmul", timeout=float("nan"), workdir=tmp_path)


# --- 4. output paths checked before the work ------------------------------------------------

def test_sim_checks_waves_and_build_dir_before_running(monkeypatch, tmp_path):
    from if4mac.sim import runner

    monkeypatch.setattr(runner, "design_verilog", _reached)
    stim = tmp_path / "s.json"
    assert invoke("stimulus", "--unit", "if4", "--random", "3", "-o", stim)[0] == 0
    code, out, err = invoke("sim", "--unit", "if4", "--stimulus", stim,
                            "--waves", tmp_path / "nodir" / "w.fst")
    assert_one_line_error(code, out, err)
    assert err.strip() == f"Error: cannot write {tmp_path / 'nodir' / 'w.fst'}: No such file or directory"
    (tmp_path / "afile").write_text("")
    code, out, err = invoke("sim", "--unit", "if4", "--stimulus", stim,
                            "--build-dir", tmp_path / "afile" / "b")
    assert_one_line_error(code, out, err)
    assert "--build-dir" in err
    with pytest.raises(Reached):
        invoke("sim", "--unit", "if4", "--stimulus", stim, "--waves", tmp_path / "w.fst",
               "--build-dir", tmp_path / "b")


def test_synth_checks_output_and_workdir_before_running(monkeypatch, tmp_path):
    from if4mac.synth import cli as synth_cli

    monkeypatch.setattr(synth_cli, "synthesize", _reached)
    (tmp_path / "good.json").write_text("{}")
    for args in (["-o", tmp_path / "good.json" / "x.json"],
                 ["--workdir", tmp_path / "good.json" / "w"],
                 ["-o", tmp_path / "r.txt"]):                 # the summary would overwrite it
        code, out, err = invoke("synth", "--target", "ecp5", *args)
        assert_one_line_error(code, out, err)
    lib = tmp_path / "my.txt"
    lib.write_text("library (x) { }")
    code, out, err = invoke("synth", "--target", "asic", "--liberty", lib,
                            "-o", tmp_path / "my.json")       # summary my.txt = the Liberty file
    assert_one_line_error(code, out, err)
    assert "same file as --liberty" in err and lib.read_text() == "library (x) { }"


def test_report_checks_dirs_before_running(monkeypatch, tmp_path):
    from if4mac.synth import report

    monkeypatch.setattr(report, "collect", _reached)
    (tmp_path / "f").write_text("")
    assert_one_line_error(*invoke("report", "--output-dir", tmp_path / "f" / "r"))
    assert_one_line_error(*invoke("report", "--workdir", tmp_path / "f" / "w",
                                  "--output-dir", tmp_path / "r"))


# --- 5. tensors beyond 1.2e35 ---------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("fmt", FORMATS)
def test_huge_tensors_quantize_as_the_reference_does(fmt):
    from if4mac.golden.quantize import max_amax
    from if4mac.golden.tensors import example_tensor
    from tests.test_quantize import assert_same, ref_quantize

    x = example_tensor("gaussian", (4, 64), seed=1)
    big = (x * np.float32(2.0**120)).astype(np.float32)          # amax about 3.8e36
    q = quantize(big, fmt)
    assert q.amax > max_amax(fmt)
    assert_same(q, ref_quantize(big, fmt))                      # the independent scalar model
    if fmt != "if4":
        # The static rule: scaling by a power of two scales amax and nothing else.
        assert np.array_equal(q.codes, quantize(x, fmt).codes)
        assert np.array_equal(q.scales, quantize(x, fmt).scales)
    else:
        assert q.int_fraction == 0          # IF4's squared errors overflow and tie: FP4 kept
    # The recipe's binary32 dequantization overflows here: refused, not infinities.
    with pytest.raises(ValueError, match="overflows; use float64=True"):
        dequantize(q)
    d = dequantize(q, float64=True)
    assert d.dtype == np.float64 and np.isfinite(d).all() and np.abs(d).max() <= q.amax
    # Just below the limit the binary32 recipe still works, and its result is finite.
    limit = max_amax(fmt)
    at_limit = np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32) * limit
    at_limit[1, 7] = limit
    assert np.isfinite(dequantize(quantize(at_limit, fmt))).all()
    m448 = np.float32({"nvfp4": 6, "if4": 6, "nvint4": 7}[fmt] * 448)
    with np.errstate(over="ignore"):
        assert np.isfinite(m448 * limit)
        assert not np.isfinite(m448 * np.nextafter(limit, np.float32(np.inf)))


def test_quantize_cli_on_a_huge_tensor(tmp_path, tensor):
    x = np.load(tensor)
    np.save(tmp_path / "big.npy", (x * np.float32(2.0**120)).astype(np.float32))
    lines = []
    for name in ("x.npy", "big.npy"):
        src = tensor if name == "x.npy" else tmp_path / name
        code, out, err = invoke("quantize", "--format", "nvfp4", "--input", src,
                                "-o", tmp_path / f"{name}.npz")
        assert code == 0 and err == "", err
        lines.append(out)
    # The same codes, and the same SNR (the error scales with the tensor).
    snr = [line.split("SNR ")[1].split(" dB")[0] for line in lines]
    assert snr[0] == snr[1]
    with np.load(tmp_path / "x.npy.npz") as a, np.load(tmp_path / "big.npy.npz") as b:
        assert np.array_equal(a["codes"], b["codes"]) and np.array_equal(a["scales"], b["scales"])


# --- 6. shared-tree overrun -----------------------------------------------------------------

def _short_segments_stimulus(path, block_size=4):
    """20 segments of one beat each: the shared tree (2 levels at B = 4) refuses half."""
    beat = {"first": 1, "a_sf": 0x38, "w_sf": 0x38, "a": [2] * block_size,
            "w": [2] * block_size}
    path.write_text(json.dumps({"unit": "if4", "block_size": block_size,
                                "beats": [beat] * 21}))
    return load_stimulus(path)


def test_sim_reports_overrun_and_exits_3(monkeypatch, tmp_path):
    from if4mac.sim import runner

    stream = _short_segments_stimulus(tmp_path / "s.json")
    shared = run(stream, reduction="shared")
    assert len(run(stream)) == 20 and shared.overrun and len(shared) < 20
    lost = len(shared.overrun_beat)
    outcome = runner.TestOutcome("run_stimulus", "passed", "", shared.hex(), "",
                                 detail={"overrun": True, "lost_results": lost})
    assert outcome.overrun and outcome.lost_results == lost              # the Python API
    monkeypatch.setattr(runner, "design_verilog", lambda *a: runner.Design(
        "if4", 4, "shared", "top", 5, ""))
    monkeypatch.setattr(runner, "build", lambda *a, **k: None)
    monkeypatch.setattr(runner, "run_job", lambda *a, **k: {"run_stimulus": outcome})
    args = ("sim", "--unit", "if4", "--stimulus", tmp_path / "s.json", "--reduction", "shared",
            "--simulator", "icarus", "--build-dir", tmp_path / "b")
    code, out, err = invoke(*args)
    assert code == 3 and json.loads(out) == shared.hex()        # results still printed
    assert f"lost {lost} of 20 segment results" in err and "--allow-overrun" in err
    code, out, err = invoke(*args, "--allow-overrun")
    assert code == 0 and f"lost {lost} of 20" in err and json.loads(out) == shared.hex()


def test_sim_overrun_on_real_rtl(tmp_path):
    """The whole path on the RTL (Icarus, the SV testbench, B = 4): exit 3, nothing silent."""
    stream = _short_segments_stimulus(tmp_path / "s.json")
    shared = run(stream, reduction="shared")
    args = ("sim", "--unit", "if4", "--stimulus", tmp_path / "s.json", "--reduction", "shared",
            "--simulator", "icarus", "--testbench", "sv", "--build-dir", tmp_path / "b")
    code, out, err = invoke(*args)
    assert code == 3, err
    assert json.loads(out) == shared.hex() and len(shared) < 20
    assert f"lost {len(shared.overrun_beat)} of 20 segment results" in err


# --- 7. tracebacks --------------------------------------------------------------------------

def test_outputs_into_missing_directory(tmp_path, tensor, quantized):
    assert_one_line_error(*invoke("quantize", "--format", "if4", "--input", tensor,
                                  "-o", tmp_path / "no" / "x.npz"))
    assert_one_line_error(*invoke("stimulus", "--unit", "if4", "--random", "2",
                                  "-o", tmp_path / "no" / "s.json"))


def test_plain_npy_as_quantized_operand(tensor):
    code, out, err = invoke("stimulus", "--unit", "if4", "--activations", tensor,
                            "--weights", tensor, "-o", tensor.with_suffix(".json"))
    assert_one_line_error(code, out, err)
    assert "not an `if4mac quantize` output" in err


def test_deeply_nested_json(tmp_path, monkeypatch):
    from if4mac.sim import runner

    monkeypatch.setattr(runner, "design_verilog", _reached)
    path = tmp_path / "deep.json"
    path.write_text('{"unit": "if4", "beats": ' + "[" * 100_000 + "]" * 100_000 + "}")
    for args in (("golden", "--stimulus", path),
                 ("sim", "--unit", "if4", "--stimulus", path, "--build-dir", tmp_path / "b")):
        code, out, err = invoke(*args)
        assert_one_line_error(code, out, err)
        assert "nested too deeply" in err


def test_huge_stimuli_are_refused_up_front(tmp_path):
    code, out, err = invoke("stimulus", "--unit", "if4", "--random", "1000000000",
                            "-o", tmp_path / "s.json")
    assert_one_line_error(code, out, err)
    # 2048 x 2048 outputs: 4 million segments, refused before any is built.
    q = tmp_path / "q.npz"
    np.savez(q, codes=np.zeros((2048, 16), np.uint8), scales=np.zeros((2048, 1), np.uint8),
             amax=np.float32(1), format="if4")
    code, out, err = invoke("stimulus", "--unit", "if4", "--activations", q, "--weights", q,
                            "-o", tmp_path / "s.json")
    assert_one_line_error(code, out, err)
    assert "4,194,305 beats" in err and not (tmp_path / "s.json").exists()


# --- 8. the path reported is the path written -----------------------------------------------

def test_quantize_writes_exactly_the_path_given(tmp_path, tensor):
    code, out, err = invoke("quantize", "--format", "if4", "--input", tensor,
                            "-o", tmp_path / "out.bin")
    assert_one_line_error(code, out, err)
    assert not list(tmp_path.glob("out.bin*"))
    code, out, _ = invoke("quantize", "--format", "if4", "--input", tensor,
                          "-o", tmp_path / "out.npz")
    assert code == 0 and out.strip().endswith(f"-> {tmp_path / 'out.npz'}")
    assert zipfile.is_zipfile(tmp_path / "out.npz")


# --- 9. the smaller ones --------------------------------------------------------------------

def test_big_endian_npy_is_converted(tmp_path, tensor):
    x = np.load(tensor)
    np.save(tmp_path / "be.npy", x.astype(">f4"))
    assert invoke("quantize", "--format", "if4", "--input", tmp_path / "be.npy",
                  "-o", tmp_path / "be.npz")[0] == 0
    with np.load(tmp_path / "be.npz") as got:
        assert np.array_equal(got["codes"], quantize(x, "if4").codes)
    assert np.array_equal(quantize(x.astype(">f4"), "nvfp4").codes, quantize(x, "nvfp4").codes)


def test_text_file_as_npy(tmp_path):
    (tmp_path / "t.npy").write_text("1 2 3\n")
    code, out, err = invoke("quantize", "--format", "if4", "--input", tmp_path / "t.npy",
                            "-o", tmp_path / "t.npz")
    assert_one_line_error(code, out, err)
    assert "not a .npy file" in err and "pickle" not in err


def test_messages_name_the_file(tmp_path):
    bad = tmp_path / "latin1.json"
    bad.write_bytes('{"unit": "if4", "beats": [] , "x": "\u00e9"}'.encode("latin-1"))
    code, out, err = invoke("golden", "--stimulus", bad)
    assert_one_line_error(code, out, err)
    assert str(bad) in err and "UTF-8" in err


def test_liberty_that_is_not_a_file(tmp_path):
    code, out, err = invoke("synth", "--target", "asic", "--liberty", "/dev/null",
                            "--workdir", tmp_path)
    assert_one_line_error(code, out, err)
    assert "not a regular file" in err and "not found" not in err


@pytest.mark.parametrize("doc, message", [
    ('{"unit": "if4", "unit": "nvfp4", "beats": []}', "duplicate key 'unit'"),
    ('{"unit": "if4", "beats": [{"first": 1, "first": 0}]}', "duplicate key 'first'"),
    ('{"unit": "if4", "beats": [], "block": 16}', "unknown field 'block'"),
])
def test_duplicate_and_unknown_keys(tmp_path, doc, message):
    path = tmp_path / "s.json"
    path.write_text(doc)
    code, out, err = invoke("golden", "--stimulus", path)
    assert_one_line_error(code, out, err)
    assert message in err


def test_cli_messages_spell_options(tmp_path, quantized):
    code, out, err = invoke("quantize", "--format", "if4", "--input", quantized,
                            "-o", tmp_path / "y.npz")
    assert_one_line_error(code, out, err)
    assert "pass --key one of" in err and "key=" not in err
    code, out, err = invoke("quantize", "--format", "if4", "--input", quantized,
                            "--tensor", "codes", "-o", tmp_path / "y.npz")
    assert "(use --key)" in err and "tensor=" not in err


def test_one_block_size_limit_everywhere(tmp_path, monkeypatch):
    from if4mac.golden import MAX_BLOCK_SIZE, MacConfig
    from if4mac.hdl import mac
    from if4mac.synth import cli as synth_cli, report

    for module, name in ((MacConfig, "build"), (synth_cli, "synthesize"), (report, "collect")):
        monkeypatch.setattr(module, name, _reached)
    too_big = str(MAX_BLOCK_SIZE + 1)
    for args in (("verilog", "--unit", "if4", "-o", tmp_path / "v.v", "--block-size", too_big),
                 ("synth", "--target", "asic", "--block-size", too_big),
                 ("report", "--block-size", too_big)):
        code, out, err = invoke(*args)
        assert_one_line_error(code, out, err)
        assert f"outside 1..{MAX_BLOCK_SIZE}" in err and "docs/errors.md" in err
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"unit": "if4", "block_size": MAX_BLOCK_SIZE + 1, "beats": []}))
    code, out, err = invoke("golden", "--stimulus", path)
    assert_one_line_error(code, out, err)
    assert f"outside 1..{MAX_BLOCK_SIZE}" in err
    with warnings.catch_warnings():          # the refused MacUnit is never elaborated
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=f"outside 1..{MAX_BLOCK_SIZE}") as refused:
            mac.MacUnit("if4", MAX_BLOCK_SIZE + 1)
        del refused
        gc.collect()
    with pytest.raises(Reached):
        invoke("verilog", "--unit", "if4", "-o", tmp_path / "v.v", "--block-size",
               str(MAX_BLOCK_SIZE))


def test_interrupt_says_whether_the_output_is_complete(tmp_path, tensor, monkeypatch):
    import click

    real_echo = click.echo

    def echo_then_interrupt(message=None, *args, **kwargs):
        if message and "->" in str(message):         # the command's last line: file written
            raise KeyboardInterrupt
        return real_echo(message, *args, **kwargs)

    monkeypatch.setattr(click, "echo", echo_then_interrupt)
    out_path = tmp_path / "xq.npz"
    code, out, err = invoke("quantize", "--format", "if4", "--input", tensor, "-o", out_path)
    assert code == 130
    assert f"interrupted after writing {out_path} (complete)" in err
    assert zipfile.is_zipfile(out_path)


def test_interrupt_before_any_output(tmp_path, tensor, monkeypatch):
    from if4mac.golden import quantize as quantize_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(quantize_module, "quantize", interrupted)
    code, out, err = invoke("quantize", "--format", "if4", "--input", tensor,
                            "-o", tmp_path / "xq.npz")
    assert code == 130 and "before any output was written" in err
    assert not (tmp_path / "xq.npz").exists()


def test_random_stream_cap_fits_a_stimulus_file():
    from if4mac.cli import MAX_RANDOM_SEGMENTS, RANDOM_MAX_LEN
    from if4mac.golden.stimulus import MAX_STIMULUS_BEATS

    # Worst case: every segment as long as allowed; bubbles (10 %) fit in the margin left.
    assert MAX_RANDOM_SEGMENTS * RANDOM_MAX_LEN * 1.25 <= MAX_STIMULUS_BEATS
    s = random_stream("if4", 200, seed=3, max_len=RANDOM_MAX_LEN, bubble_prob=0.1)
    assert len(s) < 200 * RANDOM_MAX_LEN * 1.25
