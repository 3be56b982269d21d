"""The CUDA reference (gpu_ref/) from a machine without a GPU.

CI has no GPU, so agreement with the GPU is re-proved from the provenance record that a real GPU
run wrote (tests/data/gpu_crosscheck.json): golden recomputes the exhaustive sweep's digest for
each unit (all 2**24 single-beat lane results), the random sweep's leading segments and every
stream case (bubbles, resets, every en/first/reset pattern of six rows), and each must equal
what the GPU produced. Every file the record depends on must be byte for byte the one the
record names, so a change to golden, the kernels or the sweeps fails here until the GPU run
is repeated. The rest checks the CPU halves of the cross-check: the generator against a
plain-integer SplitMix64, the canonical order against an exact rational model, and that mac.cu
still compiles where nvcc exists.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tomllib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from if4mac.golden import closed_segments, UNITS, Stream, run
from if4mac.golden.formats import DEFAULT_BLOCK_SIZE
from if4mac.gpu_ref import crosscheck, device, generator
from if4mac.gpu_ref.cli import gpu_check
from tests.gpu_record import (assert_clean_sweeps, assert_source_unchanged,
                              assert_sources_listed, compile_cuda)

ROOT = Path(__file__).resolve().parent.parent
RECORD_PATH = ROOT / "tests" / "data" / "gpu_crosscheck.json"
MASK64 = (1 << 64) - 1


# ---------------------------------------------------------------------------------------------
# Reference models, written from the definitions (docs/gpu_ref.md, docs/spec.md).

def ref_splitmix64(seed: int, counter: int) -> int:
    """SplitMix64 output ``counter`` (0-based), in Python integers."""
    z = (seed + (counter + 1) * 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def ref_e2m1(code: int) -> Fraction:
    magnitude = [Fraction(0), Fraction(1, 2), Fraction(1), Fraction(3, 2),
                 Fraction(2), Fraction(3), Fraction(4), Fraction(6)][code & 7]
    return -magnitude if code & 8 else magnitude


def ref_int4(code: int) -> Fraction:
    return Fraction(code - 16 if code >= 8 else code)


def ref_e4m3(byte: int) -> Fraction:
    exp, man = (byte >> 3) & 15, byte & 7
    if exp == 15 and man == 7:
        man = 6
    if exp == 0:
        return Fraction(man, 8) * Fraction(1, 2**6)
    return (1 + Fraction(man, 8)) * Fraction(2) ** (exp - 7)


def ref_round_f32(x: Fraction) -> np.float32:
    """binary32 rounding of ``x``, valid when ``x`` is exact in binary64 (asserted)."""
    as_double = float(x)
    assert Fraction(as_double) == x, "reference value must be exact in binary64"
    return np.float32(as_double)


def ref_scaled_product(unit: str, a: int, w: int, a_sf: int, w_sf: int) -> np.float32:
    """m = rne32(p * sf) from the spec, exact rationals with each rounding explicit."""
    a_int = unit == "if4" and a_sf >= 128
    w_int = unit == "if4" and w_sf >= 128
    p = (ref_int4(a) if a_int else ref_e2m1(a)) * (ref_int4(w) if w_int else ref_e2m1(w))
    sf = ref_e4m3(a_sf & 0x7F) * ref_e4m3(w_sf & 0x7F)            # exact
    factor = {1: Fraction(6, 7), 2: Fraction(36, 49)}.get(int(a_int) + int(w_int))
    if factor is not None:
        sf = Fraction(float(ref_round_f32(sf * Fraction(float(ref_nearest_f32(factor))))))
    m = ref_round_f32(p * sf)
    if m == 0:   # zero product: sign(a) xor sign(w)
        negative = (ref_sign(a, a_int) != ref_sign(w, w_int))
        return np.float32(-0.0) if negative else np.float32(0.0)
    return m


def ref_sign(code: int, int_block: bool) -> bool:
    return bool(code & 8) if not int_block else code >= 8


def ref_nearest_f32(x: Fraction) -> np.float32:
    """The binary32 nearest to a positive rational below 1 (ties cannot occur for 6/7, 36/49)."""
    exp = 0
    while x * 2**exp < 2**23:
        exp += 1
    scaled = x * 2**exp                 # in [2**23, 2**24): the significand's range
    low = scaled.numerator // scaled.denominator
    significand = low + (1 if scaled - low > Fraction(1, 2) else 0)
    return np.float32(significand / 2**exp)


# ---------------------------------------------------------------------------------------------
# The generator (CPU half).

def test_splitmix64_known_outputs():
    # SplitMix64 seeded with 0: the published first outputs.
    assert [int(v) for v in generator.splitmix64(0, np.arange(3))] == [
        0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_splitmix64_matches_integer_reference():
    rng = np.random.default_rng(5)
    for seed in (0, 1, 2**64 - 1, int(rng.integers(0, 2**63))):
        counters = rng.integers(0, 2**62, size=200, dtype=np.uint64)
        got = generator.splitmix64(seed, counters)
        assert [int(v) for v in got] == [ref_splitmix64(seed, int(c)) for c in counters]


def test_splitmix64_rejects_bad_seed():
    with pytest.raises(ValueError, match="seed must be an integer"):
        generator.splitmix64(-1, [0])
    with pytest.raises(ValueError, match="seed must be an integer"):
        generator.splitmix64(2**64, [0])


def test_generator_stream_follows_definition():
    seed, start, count = 99, 12345, 300
    stream = generator.random_segment_stream("if4", seed, start, count)
    beat = 0
    for s in range(start, start + count):
        header = ref_splitmix64(seed, s * 1024)
        length = 9 + ((header >> 8) & 0xFF) if header & 0xFF == 0 else 1 + ((header >> 8) & 7)
        for j in range(length):
            words = [ref_splitmix64(seed, s * 1024 + 1 + 3 * j + k) for k in range(3)]
            scales = header >> 24 if (header >> 16) & 1 else words[2]
            assert bool(stream.first[beat]) == (j == 0)
            assert [int(c) for c in stream.a[beat]] == [(words[0] >> 4 * i) & 15 for i in range(16)]
            assert [int(c) for c in stream.w[beat]] == [(words[1] >> 4 * i) & 15 for i in range(16)]
            assert (int(stream.a_sf[beat]), int(stream.w_sf[beat])) == (scales & 0xFF,
                                                                        (scales >> 8) & 0xFF)
            beat += 1
    assert len(stream) == beat + 1 and stream.first[-1] and stream.en.all()
    assert len(run(stream)) == count


def test_generator_lengths_cover_short_and_long_segments():
    lengths = generator.segment_lengths(generator.segment_headers(7, 0, 200_000))
    assert lengths.min() == 1 and lengths.max() <= generator.MAX_SEGMENT_LENGTH
    counts = np.bincount(lengths, minlength=generator.MAX_SEGMENT_LENGTH + 1)
    assert (counts[1:9] > 20_000).all()             # each short length ~ 1/8 of 255/256
    assert 500 < counts[9:].sum() < 1100            # long ones ~ 1/256 of them


# ---------------------------------------------------------------------------------------------
# The canonical exhaustive stream and mac.cu's constants.

def test_int_expansion_literals_in_cuda_source():
    source = device.COMMON_SOURCE.read_text()
    for name, value in (("INT_EXPANSION", Fraction(6, 7)),
                        ("INT_EXPANSION_SQUARED", Fraction(36, 49))):
        literal = re.search(rf"#define {name} (0x[0-9a-f.]+p-?\d+)f", source).group(1)
        assert np.float32(float.fromhex(literal)) == ref_nearest_f32(value)


@pytest.mark.parametrize("unit", UNITS)
def test_exhaustive_order_against_exact_model(unit):
    golden_bits = crosscheck.exhaustive_golden(unit)
    rng = np.random.default_rng(11)
    picks = list(rng.integers(0, 1 << 24, size=3000))
    # Corners: zero scales, the 448 rule, subnormal scales, INT4 0x8, -0.
    for a_sf in (0x00, 0x01, 0x7F, 0x80, 0x81, 0xFF):
        for w_sf in (0x00, 0x07, 0x7E, 0xFF, 0x88):
            for a, w in ((0, 0), (8, 3), (3, 8), (8, 8), (7, 15), (15, 9)):
                picks.append(((a_sf * 256 + w_sf) * 16 + a) * 16 + w)
    for index in picks:
        index = int(index)
        w, a, w_sf, a_sf = index & 15, (index >> 4) & 15, (index >> 8) & 255, index >> 16
        expected = ref_scaled_product(unit, a, w, a_sf, w_sf)
        assert golden_bits[index] == np.float32(expected).view(np.uint32), (unit, a, w, a_sf, w_sf)


def test_cuda_lanes_are_the_formats_block_size():
    """The kernels' one compile-time lane count is the formats layer's block size, and no
    CUDA source defines it again."""
    defines = {p.name: re.findall(r"#define LANES (\d+)", p.read_text())
               for p in (device.SOURCE, device.FUSED_SOURCE, device.COMMON_SOURCE)}
    assert defines == {"mac.cu": [], "fused.cu": [], "mac_common.cuh": [str(DEFAULT_BLOCK_SIZE)]}


def test_digest_is_little_endian_sha256():
    values = np.array([1, 0x01020304], dtype=np.uint32)
    expected = hashlib.sha256(bytes([1, 0, 0, 0, 4, 3, 2, 1])).hexdigest()
    assert crosscheck.digest(values) == expected
    assert crosscheck.digest(values.astype(">u4")) == expected


# ---------------------------------------------------------------------------------------------
# The GPU run's provenance record.

@pytest.fixture(scope="module")
def record():
    assert RECORD_PATH.exists(), f"{RECORD_PATH} is missing: run `if4mac gpu-check` on a GPU"
    doc = crosscheck.load_record(RECORD_PATH)
    assert set(doc["units"]) == set(UNITS)
    return doc


@pytest.mark.parametrize("unit", UNITS)
def test_record_reports_a_clean_full_run(record, unit):
    entry = record["units"][unit]
    assert entry["run"]["device"]["name"]
    assert re.match(r"\d+\.\d+", entry["run"]["device"]["compute_capability"])
    assert_clean_sweeps(entry, crosscheck.EXHAUSTIVE_ORDER,
                        crosscheck.stream_cases(entry["random"]["seed"]),
                        ("kind", "seed", "pattern_rows"))
    assert entry["stream"]["order"] == crosscheck.STREAM_ORDER
    assert "--fmad=false" in entry["run"]["nvrtc_options"]


@pytest.mark.parametrize("unit", UNITS)
def test_golden_reproduces_gpu_exhaustive_digest(record, unit):
    bits = crosscheck.exhaustive_golden(unit)
    assert crosscheck.digest(bits) == record["units"][unit]["exhaustive"]["sha256"], (
        f"golden no longer agrees with the GPU on the {unit} exhaustive sweep")


@pytest.mark.parametrize("unit", UNITS)
def test_golden_reproduces_gpu_random_prefix_digest(record, unit):
    rnd = record["units"][unit]["random"]
    bits, _ = crosscheck.random_golden((unit, rnd["seed"], 0, rnd["prefix_segments"]))
    assert crosscheck.digest(bits) == rnd["prefix_sha256"]


@pytest.mark.parametrize("unit", UNITS)
def test_golden_reproduces_gpu_stream_digests(record, unit):
    """Every stream case: golden's results and segment positions hash to what the GPU gave."""
    differ = []
    for case in record["units"][unit]["stream"]["cases"]:
        # The kernel's view: every closed segment (reset timing is the RTL's business).
        results = closed_segments(crosscheck.build_stream_case(unit, case))
        if crosscheck.stream_digest(results) != case["sha256"]:
            differ.append({k: case[k] for k in ("kind", "seed")})
    assert not differ, f"golden no longer agrees with the GPU on {unit} stream cases {differ}"


@pytest.mark.parametrize("path", crosscheck.RECORD_SOURCES)
def test_record_source_is_unchanged(record, path):
    """Each file the GPU record depends on is byte for byte the one the run checked."""
    assert_source_unchanged(path, _runs(record), "GPU record", "tests/data/gpu_crosscheck.json")


def test_record_names_exactly_the_record_sources(record):
    assert_sources_listed(_runs(record), crosscheck.RECORD_SOURCES, "the record's source list")


def _runs(record) -> dict[str, dict]:
    return {unit: record["units"][unit]["run"] for unit in UNITS}


#: Repository modules that `if4mac gpu-check` imports but that cannot change what it records,
#: each with the reason; every other module it imports must be in RECORD_SOURCES.
NOT_RECORD_SOURCES = {
    "if4mac/__init__.py": "the package's docstring and version string",
    "gpu_ref/__init__.py": "a docstring",
    "gpu_ref/cli.py": "parses options and writes the record that crosscheck returns",
    "golden/stimulus.py": "JSON stimulus files, which the sweeps never read or write",
    "if4mac/errors.py": "the user-error exception type",
    "if4mac/command.py": "maps user errors to one line and exit status 2",
    "if4mac/safe_output.py": "checks the output path and replaces the record file atomically",
    "golden/config.py": "the RTL's MacConfig, which gpu_ref never builds",
}


def test_record_sources_cover_every_module_gpu_check_imports():
    code = ("import json, sys; import if4mac.gpu_ref.cli; "
            "print(json.dumps(sorted(m.__file__ for m in list(sys.modules.values()) "
            "if getattr(m, '__file__', None))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    # The project's own modules: files in the folders pyproject maps the package onto.
    package_dir = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-dir"]
    folders = {ROOT / folder for folder in package_dir.values()}
    ours = {str(f.relative_to(ROOT)) for f in map(Path, json.loads(out)) if f.parent in folders}
    # Every architecture's record: the reference's sources and the fused ones' (a superset).
    sources = set(crosscheck.RECORD_SOURCES) | set(crosscheck.FUSED_RECORD_SOURCES)
    unlisted = ours - sources - set(NOT_RECORD_SOURCES)
    assert not unlisted, (f"{sorted(unlisted)} imported by `if4mac gpu-check` but neither in "
                          f"crosscheck.RECORD_SOURCES / FUSED_RECORD_SOURCES nor exempted in "
                          f"NOT_RECORD_SOURCES")
    listed_py = {f for f in sources if f.endswith(".py")}
    assert listed_py <= ours, f"{sorted(listed_py - ours)} listed but never imported"
    assert set(NOT_RECORD_SOURCES) <= ours, "an exemption names a module that is not imported"


def test_merge_record_keeps_other_units(record):
    only_if4 = {"if4": record["units"]["if4"]}
    merged = crosscheck.merge_record(record, only_if4)
    assert merged["units"]["nvfp4"] == record["units"]["nvfp4"]
    assert list(crosscheck.merge_record(None, only_if4)["units"]) == ["if4"]


# ---------------------------------------------------------------------------------------------
# Host-side bookkeeping of the stream kernel, the CLI and the build.

def test_beat_flags_pack_en_first_reset():
    a = np.zeros((4, 16), dtype=np.uint8)
    sf = np.zeros(4, dtype=np.uint8)
    stream = Stream("if4", np.array([1, 0, 1, 1], bool), np.array([1, 1, 0, 1], bool), a, a,
                    sf, sf, np.array([0, 1, 1, 0], bool))
    assert list(device.beat_flags(stream)) == [3, 6, 5, 3]
    no_reset = Stream("if4", stream.en, stream.first, a, a, sf, sf)
    assert list(device.beat_flags(no_reset)) == [3, 2, 1, 3]


def test_flag_pattern_stream_holds_every_pattern():
    rows = 3
    stream = crosscheck.flag_pattern_stream("nvfp4", 5, rows=rows)
    flags = device.beat_flags(stream).reshape(-1, rows)
    assert (flags[:, 0] & device.BEAT_RESET).all()     # each pattern starts from power-up
    patterns = {tuple(p) for p in flags}
    assert len(patterns) == len(flags) == 4**rows * 2**(rows - 1)
    # Edge cases the kernel must get right: a reset on a bubble just before a closing beat,
    # a closing beat right after power-up, and a stream opened without first=1.
    en_first, en, bubble_reset = 3, 1, 4
    for p in [(en_first | 4, bubble_reset, en_first), (en_first | 4, en, en_first),
              (en | 4, en, en_first)]:
        assert p in patterns
    results = closed_segments(stream)
    assert 0 < len(results) < len(flags)


def test_without_gpu_functions_raise_one_line():
    if device.gpu_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(device.GpuUnavailable, match=r"^no CUDA GPU found: gpu-check needs CuPy"):
        device.exhaustive_lanes("if4")


def test_cli_without_gpu_exits_nonzero_with_one_line(tmp_path):
    if device.gpu_available():
        pytest.skip("this machine has a CUDA GPU")
    output = tmp_path / "r.json"
    result = CliRunner().invoke(gpu_check, ["--segments", "10", "--output", str(output)])
    assert result.exit_code != 0
    assert result.output.strip() == ("Error: no CUDA GPU found: gpu-check needs CuPy and an "
                                     "NVIDIA GPU")
    assert not output.exists()


def test_cli_rejects_bad_unit():
    result = CliRunner().invoke(gpu_check, ["--unit", "fp8"])
    assert result.exit_code != 0 and "'fp8' is not one of" in result.output


def test_cuda_source_compiles_with_nvcc(tmp_path):
    compile_cuda(device.SOURCE, tmp_path)
