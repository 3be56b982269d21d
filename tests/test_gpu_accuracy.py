"""gpu_ref/accuracy.py on the CPU: everything but the CUDA kernel launch, at small shapes, with
golden (or a stand-in kernel) producing the MAC results.

The GPU run (``python3 -m if4mac.gpu_ref.accuracy``) swaps in ``cuda_kernel``; the rest --
operands, quantization, the exact references, the golden cross-check, the report and the
plots -- is the code tested here. The module must import and run on a machine without Amaranth
or cocotb (the GPU machine has neither).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from if4mac.golden.fused import ARCHS
from if4mac.golden.quantize import FORMATS, dequantize, quantize
from if4mac.gpu_ref import accuracy
from if4mac.gpu_ref.crosscheck import REPO_ROOT

ROOT = Path(__file__).resolve().parent.parent
SMALL = (4, 3, 64)        # 12 dot products of 4 beats


@pytest.fixture(scope="module")
def small_result():
    return accuracy.compute(5, shape=SMALL, kernel="golden")


def test_rows_cover_every_case_format_unit_and_arch(small_result):
    rows, mac = small_result["rows"], small_result["mac_rows"]
    assert [(r["case"], r["format"]) for r in rows] == [
        (c[0], f) for c in accuracy.CASES for f in FORMATS]
    assert {(r["case"], r["unit"], r["arch"]) for r in mac} == {
        (c[0], u, a) for c in accuracy.CASES for u in ("nvfp4", "if4") for a in ARCHS}
    assert small_result["archs"] == list(ARCHS)
    assert "mac_golden_mismatches" not in small_result     # golden is not checked against itself


def test_fused_exact_is_correctly_rounded_and_never_worse(small_result):
    """fused-exact rounds each exact dot product once: per output within 2**-24 relative of the
    exact quantized product, and no other binary32 result is nearer, so no architecture has a
    smaller arithmetic error on any case."""
    mac = {(r["case"], r["unit"], r["arch"]): r for r in small_result["mac_rows"]}
    for case in accuracy.CASES:
        for unit in ("nvfp4", "if4"):
            exact = mac[(case[0], unit, "fused-exact")]["arith_rel_err"]
            assert exact <= 2.0**-24
            for arch in ("reference", "fused-fp32"):
                assert exact <= mac[(case[0], unit, arch)]["arith_rel_err"], (case, unit, arch)
    # The quantization error dominates the total; the MAC adds only its rounding to it.
    for r in small_result["mac_rows"]:
        assert abs(r["rel_err"] - r["dequantized_rel_err"]) < 1e-3 * r["dequantized_rel_err"] + 1e-6


def test_quantized_values_are_the_dequantized_values_in_mac_units():
    x = np.random.default_rng(3).standard_normal((4, 64)).astype(np.float32)
    q = quantize(x, "nvfp4")
    scale = float(q.amax) / (6 * 448)
    np.testing.assert_allclose(accuracy.quantized_values(q) * scale,
                               dequantize(q, float64=True), rtol=1e-12, atol=0)
    q = quantize(x, "if4")
    assert 0 < q.int_fraction < 1
    is_int = np.repeat((q.scales & 0x80) != 0, 16, axis=-1)
    with np.errstate(invalid="ignore"):
        ratio = accuracy.quantized_values(q) * scale / dequantize(q, float64=True)
    finite = np.isfinite(ratio)            # 0/0 where an element is zero
    # INT4 elements are worth exactly 6/7 here, f32(6/7) in dequantize.
    np.testing.assert_allclose(ratio[finite & is_int], (6 / 7) / float(np.float32(6 / 7)),
                               rtol=1e-12)
    np.testing.assert_allclose(ratio[finite & ~is_int], 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="nvint4 has no MAC unit"):
        accuracy.quantized_values(quantize(x, "nvint4"))


def test_kernel_results_are_checked_against_golden():
    """A kernel other than golden is checked bit for bit, every result: a stand-in that is
    right gives 0 mismatches, one that flips a bit in fused-fp32 IF4 results is caught (golden
    in worker processes, as on the GPU machine, and in this process)."""
    flipped = []

    def right(stream, arch):
        return accuracy.golden_kernel(stream, arch)

    def wrong(stream, arch):
        bits = accuracy.golden_kernel(stream, arch).copy()
        if arch == "fused-fp32" and stream.unit == "if4":
            bits[::5] ^= 1
            flipped.append(len(bits[::5]))
        return bits

    shape = (2, 3, 32)
    good = accuracy.compute(1, shape=shape, kernel=right, workers=1)    # the worker pool
    assert good["mac_golden_mismatches"] == 0
    assert good["mac_results_checked_against_golden"] == 6 * len(accuracy.CASES) * 2 * len(ARCHS)
    bad = accuracy.compute(1, shape=shape, kernel=wrong, workers=0)
    assert bad["mac_golden_mismatches"] == sum(flipped) > 0


def test_bad_shape_and_kernel():
    with pytest.raises(ValueError, match="multiple of the block size 16"):
        accuracy.compute(0, shape=(2, 2, 30), kernel="golden")
    with pytest.raises(ValueError, match="unknown kernel 'tpu'"):
        accuracy.compute(0, shape=(2, 2, 32), kernel="tpu")


def test_report_has_a_table_and_plot_per_arch(small_result, tmp_path):
    text = accuracy.render_markdown(small_result)
    for arch in ARCHS:
        assert f"### {arch}" in text and f"(gpu_accuracy_{arch}.png)" in text
    assert "no GPU run, so no cross-check" in text
    written = accuracy.write_outputs(small_result, tmp_path)
    names = {p.name for p in written}
    assert {"gpu_accuracy.json", "gpu_accuracy.md", "gpu_accuracy.png"} <= names
    for arch in ARCHS:
        assert (tmp_path / f"gpu_accuracy_{arch}.png").read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "gpu_accuracy.json").read_text()) == json.loads(
        json.dumps(small_result))


def test_cli_golden_kernel_and_render(tmp_path):
    runner = CliRunner()
    out = tmp_path / "r"
    result = runner.invoke(accuracy.main, ["--kernel", "golden", "--shape", "2", "2", "32",
                                           "--out-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "gpu_accuracy_fused-exact.png").exists()
    again = runner.invoke(accuracy.main, ["--render", str(out / "gpu_accuracy.json"),
                                          "--out-dir", str(tmp_path / "redrawn")])
    assert again.exit_code == 0, again.output
    assert ((tmp_path / "redrawn" / "gpu_accuracy.md").read_text()
            == (out / "gpu_accuracy.md").read_text())


def test_cli_bad_input_is_one_line(tmp_path):
    runner = CliRunner()
    result = runner.invoke(accuracy.main, ["--kernel", "golden", "--shape", "2", "2", "30",
                                           "--out-dir", str(tmp_path)])
    assert result.exit_code == 2 and "K = 30 is not a multiple of the block size 16" in result.output
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"rows": []}))
    result = runner.invoke(accuracy.main, ["--render", str(old), "--out-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {old} is not an accuracy result of this version (no per-architecture MAC rows)"]
    from if4mac.gpu_ref import device

    if not device.gpu_available():
        result = runner.invoke(accuracy.main, ["--out-dir", str(tmp_path)])
        assert result.exit_code == 1
        assert result.output.strip() == ("Error: no CUDA GPU found: accuracy needs CuPy and an "
                                         "NVIDIA GPU (--kernel golden runs without one)")


def test_imports_and_runs_without_amaranth_or_cocotb(tmp_path):
    """The GPU machine has neither: importing them must fail there and not matter here."""
    code = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("amaranth", "cocotb", "cocotb_tools"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
from if4mac.gpu_ref import accuracy
from if4mac.gpu_ref.crosscheck import REPO_ROOT
from click.testing import CliRunner
r = CliRunner().invoke(accuracy.main, ["--kernel", "golden", "--shape", "2", "2", "16",
                                       "--out-dir", {str(tmp_path)!r}])
assert r.exit_code == 0, r.output
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("amaranth", "cocotb"))
assert not bad, bad
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_committed_report_names_the_sources_it_was_made_from():
    """reports/gpu_accuracy.json pins every file its numbers depend on: a change to any of
    them (golden, the kernels, the quantizers, this report) without a GPU rerun fails here."""
    from if4mac.gpu_ref.accuracy import accuracy_source_digests, sources_digest

    committed = json.loads((REPO_ROOT / "reports" / "gpu_accuracy.json").read_text())
    recorded = committed.get("sources_sha256")
    assert recorded, "reports/gpu_accuracy.json has no sources_sha256: rerun it on the GPU"
    assert committed.get("mac_golden_mismatches") == 0 and committed.get("device")
    now = accuracy_source_digests()
    stale = sorted(f for f in set(now) | set(recorded) if now.get(f) != recorded.get(f))
    assert not stale, f"changed since the GPU run (rerun docs/gpu_ref.md's command): {stale}"
    markdown = (REPO_ROOT / "reports" / "gpu_accuracy.md").read_text()
    assert sources_digest(recorded)[:16] in markdown
