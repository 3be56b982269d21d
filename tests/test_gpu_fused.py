"""The fused architectures' GPU cross-check (gpu_ref/fused.cu), from a machine without a GPU.

As tests/test_gpu_ref.py does for the reference architecture, golden re-proves here what a GPU
run recorded in tests/data/gpu_crosscheck_fused.json, for fused-fp32 and fused-exact and both
units: every exhaustive digest (all 2**24 one-beat segments), the random sweep's leading
segments, and the smaller stream cases (the first random stream with bubbles and resets, and
fused-exact's narrow-accumulator stream where most segments overflow). Every file the record
depends on (crosscheck.FUSED_RECORD_SOURCES) must be byte for byte the one the record names.
The canonical exhaustive order is checked against the independent scalar model
(tests/scalar_model.py), and fused.cu must still compile where nvcc exists.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from if4mac.golden import UNITS
from if4mac.golden.fused import QNAN_BITS, exact_acc_width, exact_max_segment, run_fused
from if4mac.gpu_ref import crosscheck, generator
from if4mac.gpu_ref.cli import gpu_check
from tests import scalar_model
from tests.gpu_record import (assert_clean_sweeps, assert_source_unchanged,
                              assert_sources_listed, compile_cuda)

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "gpu_ref" / "fused.cu"
FUSED_RECORD_PATH = ROOT / "tests" / "data" / "gpu_crosscheck_fused.json"
CASES = [(arch, unit) for arch in crosscheck.FUSED_ARCHS for unit in UNITS]


@pytest.fixture(scope="module")
def fused_record():
    assert FUSED_RECORD_PATH.exists(), (f"{FUSED_RECORD_PATH} is missing: run `if4mac gpu-check` "
                                        f"on a GPU")
    doc = crosscheck.load_fused_record(FUSED_RECORD_PATH)
    assert set(doc["archs"]) == set(crosscheck.FUSED_ARCHS)
    for arch in crosscheck.FUSED_ARCHS:
        assert set(doc["archs"][arch]) == set(UNITS), arch
    return doc


@pytest.mark.parametrize("arch, unit", CASES)
def test_fused_record_reports_a_clean_full_run(fused_record, arch, unit):
    entry = fused_record["archs"][arch][unit]
    run = entry["run"]
    assert run["arch"] == arch and run["device"]["name"]
    assert "--fmad=false" in run["nvrtc_options"]
    if arch == "fused-exact":
        width = exact_acc_width(unit, 16)
        assert (run["acc_width"], run["max_segment"]) == (width, exact_max_segment(unit, 16, width))
        # The default accumulator takes every generated segment: no random result is the NaN.
        assert run["max_segment"] >= generator.MAX_SEGMENT_LENGTH
    rnd = entry["random"]
    assert_clean_sweeps(entry, crosscheck.FUSED_EXHAUSTIVE_ORDER,
                        crosscheck.stream_cases(rnd["seed"], arch, unit),
                        ("kind", "seed", "pattern_rows", "acc_width"))
    assert rnd["length_counts"]["9-264"] > 0           # long segments were in it


@pytest.mark.parametrize("arch, unit", CASES)
def test_golden_reproduces_gpu_fused_exhaustive_digest(fused_record, arch, unit):
    bits = crosscheck.exhaustive_golden(unit, arch)
    assert crosscheck.digest(bits) == fused_record["archs"][arch][unit]["exhaustive"]["sha256"], (
        f"golden no longer agrees with the GPU on the {arch} {unit} exhaustive sweep")


@pytest.mark.parametrize("arch, unit", CASES)
def test_golden_reproduces_gpu_fused_random_prefix_digest(fused_record, arch, unit):
    rnd = fused_record["archs"][arch][unit]["random"]
    bits, _ = crosscheck.random_golden((unit, rnd["seed"], 0, rnd["prefix_segments"], arch))
    assert crosscheck.digest(bits) == rnd["prefix_sha256"]


@pytest.mark.parametrize("arch, unit", CASES)
def test_golden_reproduces_gpu_fused_stream_digests(fused_record, arch, unit):
    """The first random stream case (bubbles, resets) and fused-exact's overflow case; the
    others take longer and are recomputed by every GPU run."""
    cases = fused_record["archs"][arch][unit]["stream"]["cases"]
    picked = [cases[0]] + [c for c in cases if "acc_width" in c]
    assert len(picked) == (2 if arch == "fused-exact" else 1)
    for case in picked:
        options = {"acc_width": case["acc_width"]} if "acc_width" in case else {}
        # The kernel checks arithmetic: every closed segment, before the timing (a reset
        # discarding a result in flight) decides which come out, as crosscheck does.
        results = run_fused(crosscheck.build_stream_case(unit, case), arch, timing=False,
                            **options)
        assert crosscheck.stream_digest(results) == case["sha256"], (
            f"golden no longer agrees with the GPU on {arch} {unit} stream case {case['seed']}")
        if options:       # the narrow accumulator did overflow, in most segments
            assert np.mean(results.bits == QNAN_BITS) > 0.3


@pytest.mark.parametrize("path", crosscheck.FUSED_RECORD_SOURCES)
def test_fused_record_source_is_unchanged(fused_record, path):
    """Each file the fused GPU record depends on is byte for byte the one the run checked."""
    assert_source_unchanged(path, _runs(fused_record), "fused GPU record",
                            "tests/data/gpu_crosscheck_fused.json")


def test_fused_record_names_exactly_its_sources(fused_record):
    assert_sources_listed(_runs(fused_record), crosscheck.FUSED_RECORD_SOURCES,
                          "the source list")


def _runs(fused_record) -> dict[str, dict]:
    return {f"{arch} {unit}": fused_record["archs"][arch][unit]["run"] for arch, unit in CASES}


# ---------------------------------------------------------------------------------------------
# The canonical exhaustive order against the independent scalar model.

@pytest.mark.parametrize("arch, unit", CASES)
def test_fused_exhaustive_order_against_scalar_model(arch, unit):
    rng = np.random.default_rng(13)
    picks = [int(i) for i in rng.integers(0, 1 << 24, size=150)]
    # Corners: zero scales, the 448 rule, subnormal scales, INT4 0x8, -0, every INT/FP mix.
    for a_sf in (0x00, 0x01, 0x7F, 0x80, 0xFF):
        for w_sf in (0x00, 0x07, 0xFF, 0x88):
            for a, w in ((0, 0), (8, 3), (8, 8), (7, 15)):
                picks.append(((a_sf * 256 + w_sf) * 16 + a) * 16 + w)
    bits = np.concatenate([crosscheck._fused_exhaustive_chunk((unit, arch, i, 1)) for i in picks])
    for index, got in zip(picks, bits):
        w, a, w_sf, a_sf = index & 15, (index >> 4) & 15, (index >> 8) & 255, index >> 16
        beat = {"en": 1, "first": 1, "a": [a] * 16, "w": [w] * 16, "a_sf": a_sf, "w_sf": w_sf}
        close = {**beat, "a": [0] * 16, "w": [0] * 16}
        expected = scalar_model.run_fused(arch, unit, [beat, close])
        assert [int(got)] == expected, (arch, unit, a, w, a_sf, w_sf)


# ---------------------------------------------------------------------------------------------
# Records, CLI and build.

def test_merge_fused_record_keeps_other_archs_and_units(fused_record):
    only = {"fused-exact": {"if4": fused_record["archs"]["fused-exact"]["if4"]}}
    merged = crosscheck.merge_fused_record(fused_record, only)
    assert merged["archs"]["fused-fp32"] == fused_record["archs"]["fused-fp32"]
    assert merged["archs"]["fused-exact"]["nvfp4"] == fused_record["archs"]["fused-exact"]["nvfp4"]
    fresh = crosscheck.merge_fused_record(None, only)
    assert list(fresh["archs"]) == ["fused-exact"] and list(fresh["archs"]["fused-exact"]) == ["if4"]


def test_record_sources_per_arch():
    assert crosscheck.record_sources("reference") == crosscheck.RECORD_SOURCES
    for arch in crosscheck.FUSED_ARCHS:
        assert set(crosscheck.record_sources(arch)) == set(crosscheck.RECORD_SOURCES) | {
            "gpu_ref/fused.cu", "golden/fused.py"}


def test_cli_rejects_bad_arch():
    result = CliRunner().invoke(gpu_check, ["--arch", "fused"])
    assert result.exit_code == 2 and "'fused' is not one of" in result.output


def test_fused_cuda_source_compiles_with_nvcc(tmp_path):
    obj = compile_cuda(SOURCE, tmp_path)
    # The kernels the cross-check launches are there, unmangled.
    symbols = subprocess.run(["nm", str(obj)], capture_output=True, text=True)
    if symbols.returncode == 0:
        for kernel in ("fused_exhaustive", "fused_stream_beats", "fused_random_segments"):
            assert re.search(rf"\b{kernel}\b", symbols.stdout), kernel
