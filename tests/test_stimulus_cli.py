"""Stimulus files and the command line: round trips, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from if4mac.golden import (StimulusFormatError, load_stimulus, parse_results, parse_stimulus,
                           random_stream, run, save_stimulus, stimulus_to_json)
from tests import scalar_model as ref


def if4mac(*args, cwd=None):
    """Run the console entry point in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-c", "from if4mac.cli import main; main()", *args],
                          capture_output=True, text=True, cwd=cwd)


def beat(**kw):
    out = {"first": 1, "a_sf": 0x38, "w_sf": 0x38, "a": [2] * 16, "w": [2] * 16}
    out.update(kw)
    return out


def test_round_trip(tmp_path):
    s = random_stream("if4", 10, seed=5, bubble_prob=0.3)
    path = tmp_path / "s.json"
    save_stimulus(s, path)
    back = load_stimulus(path)
    assert np.array_equal(run(back).bits, run(s).bits)
    for field in ("en", "a", "w"):
        assert np.array_equal(getattr(back, field), getattr(s, field))
    # Bubbles' other fields are don't-cares and may be dropped, enabled beats must survive.
    assert np.array_equal(back.first[s.en], s.first[s.en])


def test_defaults_and_bare_bubbles():
    doc = {"unit": "nvfp4", "beats": [beat(), {"en": 0}, beat(first=0), beat()]}
    s = parse_stimulus(doc)
    assert s.block_size == 16 and s.en.tolist() == [True, False, True, True]
    assert run(s).hex() == ["0x42000000"]          # two beats of 16 * 1.0 = 32.0


@pytest.mark.parametrize("doc, message", [
    ([], "expected a JSON object"),
    ({"beats": []}, "missing 'unit'"),
    ({"unit": "fp8", "beats": []}, "unknown unit 'fp8'"),
    ({"unit": "if4", "beats": {}}, "'beats' must be a list"),
    ({"unit": "if4", "beats": [beat(a=[1] * 15)]}, "beat 0 a: 15 lanes, expected 16"),
    ({"unit": "if4", "beats": [beat(), beat(w=[1] * 15 + [16])]}, r"beat 1 w\[15\]: 16 is outside 0..15"),
    ({"unit": "if4", "beats": [beat(a_sf=256)]}, "beat 0 a_sf: 256 is outside 0..255"),
    ({"unit": "if4", "beats": [beat(a_sf=1.5)]}, "beat 0 a_sf: expected an integer, got 1.5"),
    ({"unit": "if4", "beats": [beat(a=[True] * 16)]}, r"beat 0 a\[0\]: expected an integer"),
    ({"unit": "if4", "beats": [beat(first=2)]}, "beat 0 first: 2 is outside 0..1"),
    ({"unit": "if4", "beats": [beat(x=1)]}, "beat 0: unknown field 'x'"),
    ({"unit": "if4", "beats": [{"first": 1}]}, "beat 0: missing 'a_sf'"),
    ({"unit": "if4", "block_size": 0, "beats": []}, "block_size: 0 is outside"),
])
def test_parse_errors(doc, message):
    with pytest.raises(StimulusFormatError, match=message):
        parse_stimulus(doc)


def test_block_size_field():
    doc = {"unit": "if4", "block_size": 4, "beats": [beat(a=[2] * 4, w=[2] * 4)] * 2}
    assert run(parse_stimulus(doc)).hex() == ["0x40800000"]


def test_parse_results():
    assert parse_results(["0x3f800000", "0x00000000"]).tolist() == [0x3F800000, 0]
    with pytest.raises(StimulusFormatError, match=r"results\[1\]"):
        parse_results(["0x3f800000", "3f800000"])


# --- CLI -------------------------------------------------------------------------------------

def test_cli_golden_matches_scalar_model(tmp_path):
    s = random_stream("nvfp4", 8, seed=9, bubble_prob=0.2)
    path = tmp_path / "s.json"
    save_stimulus(s, path)
    proc = if4mac("golden", "--stimulus", str(path))
    assert proc.returncode == 0, proc.stderr
    want = ref.run("nvfp4", stimulus_to_json(s)["beats"])
    assert json.loads(proc.stdout) == [f"0x{b:08x}" for b in want]


def test_cli_stimulus_random(tmp_path):
    out = tmp_path / "r.json"
    proc = if4mac("stimulus", "--unit", "if4", "--random", "7", "--seed", "3", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "7 segments" in proc.stdout
    assert len(run(load_stimulus(out))) == 7


def test_cli_strict(tmp_path):
    doc = {"unit": "if4", "beats": [beat(a_sf=0xB8, a=[8] * 16), beat()]}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc))
    assert if4mac("golden", "--stimulus", str(path)).returncode == 0
    proc = if4mac("golden", "--stimulus", str(path), "--strict")
    assert proc.returncode == 2            # the README: bad input exits 2
    # The message names the file (issue 15), then the beat, lane and operand.
    assert proc.stderr.strip() == (f"Error: {path}: beat 0, lane 0, operand a: code 0x8 in an "
                                   f"INT4 block is -8, outside INT4's -7..7")


@pytest.mark.parametrize("content, message", [
    ("{", "malformed JSON"),
    ('{"unit": "fp8", "beats": []}', "unknown unit 'fp8'"),
    ('{"unit": "if4", "beats": [{"first": 1, "a_sf": 1, "w_sf": 1, "a": [1], "w": [1]}]}',
     "1 lanes, expected 16"),
    # 16 lanes, so the lane count passes and the code-range check is what trips.
    ('{"unit": "if4", "beats": [{"first": 1, "a_sf": 1, "w_sf": 1, "a": [1, 99' + ', 1' * 14
     + '], "w": [' + ', '.join(['1'] * 16) + ']}]}',
     "beat 0 a[1]: 99 is outside 0..15"),
])
def test_cli_bad_input_is_one_line(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    proc = if4mac("golden", "--stimulus", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_cli_missing_file_and_unknown_unit(tmp_path):
    proc = if4mac("golden", "--stimulus", str(tmp_path / "nope.json"))
    assert proc.returncode == 2 and "cannot read" in proc.stderr and "Traceback" not in proc.stderr
    proc = if4mac("stimulus", "--unit", "fp8", "--random", "1", "-o", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and "fp8" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_demo_writes_consistent_files(tmp_path):
    proc = if4mac("demo", "--workdir", str(tmp_path), "--unit", "nvfp4")
    assert proc.returncode == 0, proc.stderr
    stim, results = tmp_path / "nvfp4_stimulus.json", tmp_path / "nvfp4_golden.json"
    # The results file is what `if4mac golden` says of the stimulus file, and 16 dot products.
    again = if4mac("golden", "--stimulus", str(stim))
    assert json.loads(again.stdout) == json.loads(results.read_text())
    assert len(json.loads(results.read_text())) == 16


# --- quantize and stimulus --activations/--weights -------------------------------------------

def _quantize_cli(tmp_path, name, x, fmt):
    src, out = tmp_path / f"{name}.npy", tmp_path / f"{name}q.npz"
    np.save(src, x)
    proc = if4mac("quantize", "--format", fmt, "--input", str(src), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    return proc, out


@pytest.mark.parametrize("fmt", ["nvfp4", "nvint4", "if4"])
def test_cli_quantize_writes_what_the_model_computes(tmp_path, fmt):
    from if4mac.golden.quantize import quantize

    x = np.random.default_rng(3).standard_t(4, size=(4, 48)).astype(np.float32)
    proc, out = _quantize_cli(tmp_path, "x", x, fmt)
    assert f"{fmt}: 12 blocks of 16" in proc.stdout and "SNR" in proc.stdout
    want = quantize(x, fmt)
    with np.load(out) as got:
        assert str(got["format"]) == fmt
        assert np.array_equal(got["codes"], want.codes) and got["codes"].shape == (4, 48)
        assert np.array_equal(got["scales"], want.scales) and got["scales"].shape == (4, 3)
        assert got["amax"] == np.float32(np.abs(x).max())


@pytest.mark.parametrize("args, message", [
    (["--format", "fp8"], "'fp8' is not one of"),
    (["--input", "{missing}"], "no such file"),
    (["--input", "{odd}"], "16"),
    (["--input", "{two}"], "holds 2 arrays"),
])
def test_cli_quantize_bad_input_is_one_line_exit_2(tmp_path, args, message):
    np.save(tmp_path / "ok.npy", np.ones((2, 16), np.float32))
    np.save(tmp_path / "odd.npy", np.ones((2, 15), np.float32))
    np.savez(tmp_path / "two.npz", a=np.ones(16, np.float32), b=np.ones(16, np.float32))
    paths = {"missing": tmp_path / "nope.npy", "odd": tmp_path / "odd.npy",
             "two": tmp_path / "two.npz"}
    base = {"--format": "if4", "--input": str(tmp_path / "ok.npy"),
            "--output": str(tmp_path / "o.npz")}
    for key, value in zip(args[::2], args[1::2]):
        base[key] = value.format(**paths)
    proc = if4mac("quantize", *[x for kv in base.items() for x in kv])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and message in lines[-1], proc.stderr
    if "not one of" not in message:          # click's usage errors add a usage line
        assert len(lines) == 1, proc.stderr


@pytest.mark.parametrize("unit", ["nvfp4", "if4"])
def test_cli_stimulus_from_quantized_tensors(tmp_path, unit):
    """quantize -> stimulus --activations/--weights -> golden: one result per (m, n), each
    the dot product of the dequantized rows (up to binary32 rounding, times the tensor
    scales), and bit for bit what the independent scalar model computes of the file."""
    from if4mac.golden.quantize import dequantize, dot_product_scale, quantize

    rng = np.random.default_rng(5)
    a = rng.standard_normal((3, 32)).astype(np.float32)
    w = rng.standard_normal((2, 32)).astype(np.float32)
    _, aq = _quantize_cli(tmp_path, "a", a, unit)
    _, wq = _quantize_cli(tmp_path, "w", w, unit)
    stim = tmp_path / "stim.json"
    proc = if4mac("stimulus", "--unit", unit, "--activations", str(aq), "--weights", str(wq),
                  "-o", str(stim))
    assert proc.returncode == 0, proc.stderr
    assert "6 segments" in proc.stdout
    golden = if4mac("golden", "--stimulus", str(stim))
    assert golden.returncode == 0, golden.stderr
    bits = json.loads(golden.stdout)
    doc = json.loads(stim.read_text())
    assert bits == [f"0x{b:08x}" for b in ref.run(unit, doc["beats"])]
    assert len(doc["beats"]) == 3 * 2 * 2 + 1
    got = np.array([int(b, 16) for b in bits], dtype=np.uint32).view(np.float32)
    qa, qw = quantize(a, unit), quantize(w, unit)
    want = dequantize(qa).astype(np.float64) @ dequantize(qw).astype(np.float64).T
    np.testing.assert_allclose(got.astype(np.float64).reshape(3, 2) * dot_product_scale(qa, qw),
                               want, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def operands(tmp_path_factory):
    """Quantized operand files made through the CLI once: IF4 (2, 32), NVFP4 (2, 32), IF4
    (2, 48), and an .npz that is not a quantize output."""
    tmp = tmp_path_factory.mktemp("operands")
    x = np.ones((2, 32), np.float32)
    names = {"aq": _quantize_cli(tmp, "a", x, "if4")[1],
             "nv": _quantize_cli(tmp, "n", x, "nvfp4")[1],
             "k48": _quantize_cli(tmp, "k", np.ones((2, 48), np.float32), "if4")[1],
             "raw": tmp / "raw.npz"}
    np.savez(names["raw"], codes=np.zeros(3))
    return names


@pytest.mark.parametrize("extra, message", [
    (["--activations", "{aq}"], "need --activations and --weights"),
    (["--activations", "{aq}", "--weights", "{aq}", "--random", "3"], "not both"),
    (["--activations", "{aq}", "--weights", "{raw}"], "not an `if4mac quantize` output"),
    (["--activations", "{aq}", "--weights", "{nv}"], "needs both operands quantized"),
    (["--activations", "{aq}", "--weights", "{k48}"], "must share K"),
])
def test_cli_stimulus_bad_operands_exit_2(tmp_path, operands, extra, message):
    args = [x.format(**operands) for x in extra]
    proc = if4mac("stimulus", "--unit", "if4", *args, "-o", str(tmp_path / "s.json"))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, \
        proc.stderr


def test_cli_gpu_check_without_gpu_exits_2(tmp_path):
    """The README promises exit status 2 for a problem the user can fix; no GPU is one."""
    from if4mac.gpu_ref import device

    if device.gpu_available():
        pytest.skip("this machine has a CUDA GPU")
    out = tmp_path / "r.json"
    proc = if4mac("gpu-check", "--segments", "10", "--output", str(out))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: no CUDA GPU found")
    assert not out.exists()
    assert if4mac("gpu-check", "--unit", "fp8").returncode == 2
