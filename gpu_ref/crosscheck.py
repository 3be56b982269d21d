"""The GPU cross-check of the golden model and its provenance record.

Three sweeps per unit, each compared bit for bit with ``if4mac.golden``:

* **exhaustive** -- every single-beat lane result ``m = rne32(p * sf)``, all 16 x 16 x 256 x 256
  (a code, w code, a_sf, w_sf) combinations. The canonical stream is the 2**24 results as
  little-endian uint32, index ``((a_sf * 256 + w_sf) * 16 + a) * 16 + w``.
* **random** -- segments of the counter-based generator in :mod:`.generator` (segment lengths,
  codes, scale bytes and flag mixes all random), computed on the GPU where they are generated
  and by golden on every CPU core, in chunks. The canonical stream is the segment results in
  segment order, little-endian uint32.
* **stream** -- raw beat streams through the general beat-stream kernel (:func:`.device.run`),
  which finds the segments itself from the en/first/reset inputs: golden's own
  ``random_stream`` with bubbles (en=0 beats of garbage), reset pulses and power-up segments,
  and every en/first/reset pattern of ``PATTERN_ROWS`` rows (:func:`flag_pattern_stream`),
  comparing results and segment positions.

The record (tests/data/gpu_crosscheck.json) holds, per unit, the device and software, the
SHA-256 of every file the results depend on (:data:`RECORD_SOURCES`), the seeds and counts,
SHA-256 digests of the canonical streams and the mismatch counts. CI has no GPU: its test
recomputes the exhaustive digests, the random sweep's first ``PREFIX_SEGMENTS`` segments and
every stream case with golden and compares them with the recorded GPU digests, and fails when
any file in :data:`RECORD_SOURCES` differs from the one the record names.

The same sweeps check the fused architectures (``arch`` "fused-fp32", "fused-exact";
gpu_ref/fused.cu against ``golden.fused.run_arch``): the exhaustive sweep's case ``index`` is
then the one-beat segment whose 16 lanes all carry ``(a, w)`` (:data:`FUSED_EXHAUSTIVE_ORDER`),
the random sweep draws the very generator segments of the reference sweep (golden computes
every requested architecture from one generated chunk), and fused-exact's stream cases add one
with an accumulator so narrow that most segments overflow. Their record is a sibling file
(tests/data/gpu_crosscheck_fused.json, :data:`FUSED_SCHEMA`): per architecture and unit an
entry of the reference record's shape, its sources :func:`record_sources` (the reference's plus
fused.cu and golden/fused.py).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import multiprocessing
import os
import platform
import time
from pathlib import Path

import numpy as np

from if4mac.golden import (UNITS, Stream, check_unit, closed_segments, random_stream, run,
                           scaled_products)
from if4mac.golden.formats import DEFAULT_BLOCK_SIZE, ELEMENT_CODES
from if4mac.golden.fused import (ARCHS, check_arch, exact_acc_width, exact_beat_bound,
                                 exact_divisor, exact_max_segment, exact_to_binary32,
                                 fused_fp32_products, run_arch, run_fused)
from if4mac.golden.fused import _exact_beat_terms

from . import device
from .generator import GENERATOR, MAX_SEGMENT_LENGTH, random_segment_stream, segment_headers, \
    segment_lengths

__all__ = ["SCHEMA", "EXHAUSTIVE_ORDER", "RANDOM_ORDER", "STREAM_ORDER", "PREFIX_SEGMENTS",
           "DEFAULT_SEGMENTS", "DEFAULT_SEED", "DEFAULT_CHUNK", "DEFAULT_OUTPUT", "REPO_ROOT",
           "RECORD_SOURCES", "PATTERN_ROWS", "exhaustive_golden", "summary_lines", "digest",
           "stream_digest", "source_digests", "random_golden", "stream_case",
           "flag_pattern_stream", "stream_cases", "build_stream_case", "run_crosscheck",
           "merge_record", "write_record", "load_record", "ARCHS", "FUSED_ARCHS", "FUSED_SCHEMA",
           "FUSED_EXHAUSTIVE_ORDER", "FUSED_RECORD_SOURCES", "DEFAULT_FUSED_OUTPUT",
           "NARROW_ACC_MARGIN", "record_sources", "random_golden_archs", "merge_fused_record",
           "load_fused_record"]

#: Version 2: per-file source digests of RECORD_SOURCES, and per-case stream digests.
SCHEMA = "if4mac-gpu-crosscheck/2"
EXHAUSTIVE_ORDER = ("m = rne32(p * sf) as little-endian uint32, index "
                    "((a_sf * 256 + w_sf) * 16 + a) * 16 + w")
RANDOM_ORDER = "segment results as little-endian uint32, in segment order"
STREAM_ORDER = ("results as little-endian uint32, then their opening beats' rows and their "
                "closing beats' rows as little-endian int64, in result order")
#: The random sweep's leading segments whose digest CI recomputes with golden (~1 s on a CPU).
PREFIX_SEGMENTS = 1 << 16
#: Segments per unit in a full run: the issue asks for at least 10**8.
DEFAULT_SEGMENTS = 100_000_000
DEFAULT_SEED = 20260405
#: Segments per golden work item: ~1.3 M beats, a few hundred MB of temporaries per worker.
DEFAULT_CHUNK = 1 << 18
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = Path("tests/data/gpu_crosscheck.json")
#: Golden streams for the stream-kernel check: streams per unit and segments in each.
STREAM_CASES = 16
STREAM_SEGMENTS = 20_000
#: Rows of each en/first/reset pattern in :func:`flag_pattern_stream` (131,072 patterns).
PATTERN_ROWS = 6
#: Every file whose change could change what a GPU run records: the kernels and their host
#: side, the generator, the sweeps themselves, and the golden model they are compared with.
#: The record holds each one's SHA-256; CI fails when a file differs from it.
RECORD_SOURCES = ("gpu_ref/mac.cu", "gpu_ref/mac_common.cuh", "gpu_ref/device.py", "gpu_ref/generator.py",
                  "gpu_ref/crosscheck.py", "golden/__init__.py", "golden/formats.py",
                  "golden/mac.py", "golden/random_streams.py")
#: The fused architectures' record: a sibling file of the reference one, same entry shape.
FUSED_SCHEMA = "if4mac-gpu-crosscheck-fused/1"
DEFAULT_FUSED_OUTPUT = Path("tests/data/gpu_crosscheck_fused.json")
FUSED_ARCHS = tuple(a for a in ARCHS if a != "reference")
FUSED_EXHAUSTIVE_ORDER = ("result of the one-beat segment whose 16 lanes all carry codes (a, w) "
                          "with scales (a_sf, w_sf), as little-endian uint32, index "
                          "((a_sf * 256 + w_sf) * 16 + a) * 16 + w")
#: What a fused record depends on beyond RECORD_SOURCES: its kernels and golden's arithmetic.
FUSED_RECORD_SOURCES = RECORD_SOURCES + ("gpu_ref/fused.cu", "golden/fused.py")
#: fused-exact's overflow stream case: an accumulator this many bits wider than one beat needs,
#: so it holds 8 to 16 beats and most segments of 1..40 beats overflow.
NARROW_ACC_MARGIN = 4
#: Rows per golden work item of a fused exhaustive sweep.
_EXHAUSTIVE_CHUNK = 1 << 20
#: Mismatches listed in the record (the count is always complete).
MISMATCH_EXAMPLES = 8


def digest(bits) -> str:
    """SHA-256 (hex) of uint32 values written little-endian."""
    return hashlib.sha256(np.ascontiguousarray(bits, dtype="<u4").tobytes()).hexdigest()


def stream_digest(results) -> str:
    """SHA-256 (hex) of a stream's results and segment positions, in :data:`STREAM_ORDER`."""
    h = hashlib.sha256(np.ascontiguousarray(results.bits, dtype="<u4").tobytes())
    h.update(np.ascontiguousarray(results.start_beat, dtype="<i8").tobytes())
    h.update(np.ascontiguousarray(results.close_beat, dtype="<i8").tobytes())
    return h.hexdigest()


def record_sources(arch: str = "reference") -> tuple[str, ...]:
    """The files a record of ``arch`` depends on."""
    return RECORD_SOURCES if check_arch(arch) == "reference" else FUSED_RECORD_SOURCES


def _fused_exhaustive_chunk(job: tuple[str, str, int, int]) -> np.ndarray:
    """Golden's one-beat segments ``first .. first + count - 1`` of the fused exhaustive order.

    A one-beat segment opened by first=1 is its beat: fused-fp32's ``m_b``, or fused-exact's
    beat term rounded once (the default accumulator holds one beat), so golden's beat
    functions give it directly, about twice as fast as a 2**24-row stream through run_arch.
    """
    unit, arch, first, count = job
    index = np.arange(first, first + count, dtype=np.int64)
    lanes = (count, DEFAULT_BLOCK_SIZE)
    a = np.broadcast_to(((index >> 4) & 15).astype(np.uint8)[:, None], lanes)
    w = np.broadcast_to((index & 15).astype(np.uint8)[:, None], lanes)
    a_sf, w_sf = (index >> 16).astype(np.uint8), ((index >> 8) & 255).astype(np.uint8)
    if arch == "fused-fp32":
        return fused_fp32_products(unit, a, w, a_sf, w_sf).view(np.uint32)
    lo, hi = _exact_beat_terms(unit, a, w, a_sf, w_sf)
    return exact_to_binary32(hi, lo, exact_divisor(unit))


def exhaustive_golden(unit: str, arch: str = "reference", pool=None) -> np.ndarray:
    """Golden's 2**24 single-beat results of ``unit`` under ``arch``, bit patterns in canonical
    order: lane results (reference, :data:`EXHAUSTIVE_ORDER`) or one-beat segments (fused,
    :data:`FUSED_EXHAUSTIVE_ORDER`, in chunks over ``pool`` when given)."""
    check_unit(unit)
    if check_arch(arch) != "reference":
        jobs = [(unit, arch, first, _EXHAUSTIVE_CHUNK)
                for first in range(0, 1 << 24, _EXHAUSTIVE_CHUNK)]
        parts = (pool.imap if pool is not None else map)(_fused_exhaustive_chunk, jobs)
        return np.concatenate(list(parts)).astype(np.uint32, copy=False)
    rows = np.arange(256 * 256)                 # a_sf * 256 + w_sf
    cols = np.arange(ELEMENT_CODES**2, dtype=np.uint8)   # a * 16 + w
    a = np.broadcast_to(cols >> 4, (rows.size, cols.size))
    w = np.broadcast_to(cols & 15, (rows.size, cols.size))
    m = scaled_products(unit, a, w, (rows >> 8).astype(np.uint8), (rows & 255).astype(np.uint8))
    return np.ascontiguousarray(m, dtype=np.float32).view(np.uint32).reshape(-1)


def random_golden(job: tuple) -> tuple[np.ndarray, int]:
    """Golden results of generator segments ``start .. start + count - 1``, and their beats.

    ``job`` is ``(unit, seed, start, count)``, or with a fifth item, the architecture."""
    unit, seed, start, count, *arch = job
    arch = arch[0] if arch else "reference"
    bits, beats = random_golden_archs((unit, seed, start, count, (arch,)))
    return bits[arch], beats


def random_golden_archs(job: tuple) -> tuple[dict, int]:
    """:func:`random_golden` for several architectures ``(unit, seed, start, count, archs)``
    from one generated stream: ``({arch: bits}, beats)``. Defaults options (fused-exact's
    accumulator width) throughout."""
    unit, seed, start, count, archs = job
    stream = random_segment_stream(unit, seed, start, count)
    out = {}
    for arch in archs:
        results = run_arch(stream, arch=arch)
        if len(results) != count:
            raise RuntimeError(f"golden returned {len(results)} results for {count} segments")
        out[arch] = results.bits
    return out, len(stream) - 1


def stream_case(unit: str, seed: int, segments: int = STREAM_SEGMENTS) -> Stream:
    """A golden random stream with bubbles, resets and (for odd seeds) a power-up segment."""
    stream = random_stream(unit, segments, seed=seed, min_len=1, max_len=40, bubble_prob=0.1)
    rng = np.random.default_rng([seed, 1])
    reset = rng.random(len(stream)) < 0.002
    first = np.array(stream.first, copy=True)
    if seed % 2:
        first[np.flatnonzero(stream.en)[0]] = False   # the stream opens with no first=1 beat
    return Stream(unit, stream.en, first, stream.a, stream.w, stream.a_sf, stream.w_sf, reset)


def flag_pattern_stream(unit: str, seed: int, rows: int = PATTERN_ROWS) -> Stream:
    """Every en/first/reset pattern of ``rows`` rows, back to back, each after a reset pulse.

    A reset puts the MAC in its power-up state (nothing open, +0 lane registers), so each
    pattern is a stream of its own: en and first take every value on every row and reset every
    value on rows 1.. (on row 0 it is the pulse that separates the patterns). A segment still
    open at a pattern's end is discarded by the next pattern's reset, as at a stream's end.
    Codes and scale bytes are uniform over all values (seeded by ``seed``).
    """
    check_unit(unit)
    if not 1 <= rows <= 8:
        raise ValueError(f"rows must be in 1..8, got {rows}")
    patterns = np.arange(4**rows * 2**(rows - 1), dtype=np.int64)[:, None]
    bit = np.arange(rows)
    en = ((patterns >> bit) & 1).astype(bool)
    first = ((patterns >> (rows + bit)) & 1).astype(bool)
    reset = np.ones_like(en)
    reset[:, 1:] = (patterns >> (2 * rows + bit[:-1])) & 1
    n = en.size
    rng = np.random.default_rng([seed, 2])
    codes = rng.integers(0, ELEMENT_CODES, size=(2, n, DEFAULT_BLOCK_SIZE), dtype=np.uint8)
    scales = rng.integers(0, 256, size=(2, n), dtype=np.uint8)
    return Stream(unit, en.reshape(-1), first.reshape(-1), codes[0], codes[1], scales[0],
                  scales[1], reset.reshape(-1))


def stream_cases(seed: int, arch: str = "reference", unit: str | None = None) -> list[dict]:
    """The stream sweep's cases, as the record lists them (:func:`build_stream_case`).

    fused-exact (``unit`` needed) adds one random stream run with an accumulator
    :data:`NARROW_ACC_MARGIN` bits wider than one beat needs (its ``acc_width``), where most
    segments overflow and give the quiet NaN."""
    cases = [{"kind": "random", "seed": seed * 1000 + k} for k in range(STREAM_CASES)]
    cases.append({"kind": "flag-patterns", "seed": seed, "pattern_rows": PATTERN_ROWS})
    if check_arch(arch) == "fused-exact":
        least = exact_beat_bound(check_unit(unit), DEFAULT_BLOCK_SIZE).bit_length() + 1
        cases.append({"kind": "random", "seed": seed * 1000 + STREAM_CASES,
                      "acc_width": least + NARROW_ACC_MARGIN})
    return cases


def _case_options(case: dict) -> dict:
    return {"acc_width": case["acc_width"]} if "acc_width" in case else {}


def build_stream_case(unit: str, case: dict) -> Stream:
    """The stream of one case of :func:`stream_cases`."""
    if case["kind"] == "random":
        return stream_case(unit, case["seed"])
    if case["kind"] == "flag-patterns":
        return flag_pattern_stream(unit, case["seed"], case["pattern_rows"])
    raise ValueError(f"unknown stream case kind {case['kind']!r}")


def _stream_golden(job: tuple[str, dict, str]):
    unit, case, arch = job
    stream = build_stream_case(unit, case)
    if arch == "reference":
        # The kernel checks arithmetic: every closed segment, before the pipeline timing
        # (golden.run: a reset discards a result in flight) decides which come out.
        return closed_segments(stream)
    return run_fused(stream, arch, timing=False, **_case_options(case))


def source_digests(arch: str = "reference") -> dict:
    """SHA-256 of each file in :func:`record_sources` of ``arch``, as they are now."""
    return {f: hashlib.sha256((REPO_ROOT / f).read_bytes()).hexdigest()
            for f in record_sources(arch)}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def _check_exhaustive(unit: str, golden_bits: np.ndarray, arch: str = "reference") -> dict:
    if arch == "reference":
        def launch(out=None):
            return device.exhaustive_lanes(unit, out=out)
    else:
        def launch(out=None):
            return device.fused_exhaustive(arch, unit, out=out)
    out = launch()
    gpu_bits = out.get()
    bad = np.flatnonzero(gpu_bits != golden_bits)
    return {
        "count": int(gpu_bits.size),
        "order": EXHAUSTIVE_ORDER if arch == "reference" else FUSED_EXHAUSTIVE_ORDER,
        "sha256": digest(gpu_bits),
        "golden_sha256": digest(golden_bits),
        "mismatches": int(bad.size),
        "mismatch_examples": [
            {"index": int(i), "gpu": f"0x{int(gpu_bits[i]):08x}",
             "golden": f"0x{int(golden_bits[i]):08x}"} for i in bad[:MISMATCH_EXAMPLES]],
        "kernel_ms": device.kernel_ms(lambda: launch(out)),
    }


def _random_sweep(pool, unit: str, seed: int, segments: int, chunk: int, progress,
                  archs=("reference",)) -> dict:
    """The random sweep of ``unit`` for each of ``archs``: ``{arch: record entry}``. Golden
    generates each chunk once and computes every architecture from it."""
    jobs = [(unit, seed, start, min(chunk, segments - start), tuple(archs))
            for start in range(0, segments, chunk)]
    state = {arch: {"gpu": hashlib.sha256(), "golden": hashlib.sha256(),
                    "prefix": hashlib.sha256(), "mismatches": 0, "examples": [],
                    "stream_kernel": None} for arch in archs}
    prefix_left = min(PREFIX_SEGMENTS, segments)
    beats = 0
    lengths_hist = np.zeros(MAX_SEGMENT_LENGTH + 1, dtype=np.int64)
    for (_, _, start, count, _), (golden_by_arch, chunk_beats) in zip(
            jobs, pool.imap(random_golden_archs, jobs)):
        first = random_segment_stream(unit, seed, 0, count) if start == 0 else None
        for arch in archs:
            st, golden_bits = state[arch], golden_by_arch[arch]
            gpu_bits = device.random_segments(unit, seed, start, count, arch=arch).get()
            if first is not None:
                # The general stream kernel on the same segments: a third independent path.
                st["stream_kernel"] = int(np.count_nonzero(
                    device.run(first, arch=arch).bits != gpu_bits))
            bad = np.flatnonzero(gpu_bits != golden_bits)
            st["mismatches"] += bad.size
            st["examples"] += [{"segment": int(start + i), "gpu": f"0x{int(gpu_bits[i]):08x}",
                                "golden": f"0x{int(golden_bits[i]):08x}"}
                               for i in bad[:MISMATCH_EXAMPLES - len(st["examples"])]]
            st["gpu"].update(np.ascontiguousarray(gpu_bits, dtype="<u4").tobytes())
            st["golden"].update(np.ascontiguousarray(golden_bits, dtype="<u4").tobytes())
            if prefix_left:
                take = min(prefix_left, count)
                st["prefix"].update(np.ascontiguousarray(golden_bits[:take], dtype="<u4")
                                    .tobytes())
        if prefix_left:
            prefix_left -= min(prefix_left, count)
        beats += chunk_beats
        lengths_hist += np.bincount(segment_lengths(segment_headers(seed, start, count)),
                                    minlength=MAX_SEGMENT_LENGTH + 1)
        if progress is not None:
            progress.update(1)
    timed = min(segments, 1 << 22)
    entries = {}
    for arch in archs:
        st = state[arch]
        timed_ms = device.kernel_ms(
            lambda: device.random_segments(unit, seed, 0, timed, arch=arch), repeats=3)
        entries[arch] = {
            "generator": GENERATOR,
            "seed": seed,
            "segments": segments,
            "beats": int(beats),
            "lane_products": int(beats) * DEFAULT_BLOCK_SIZE,
            "chunk_segments": chunk,
            "length_counts": {"1-8": int(lengths_hist[1:9].sum()),
                              "9-264": int(lengths_hist[9:].sum())},
            "order": RANDOM_ORDER,
            "sha256": st["gpu"].hexdigest(),
            "golden_sha256": st["golden"].hexdigest(),
            "prefix_segments": min(PREFIX_SEGMENTS, segments),
            "prefix_sha256": st["prefix"].hexdigest(),
            "mismatches": int(st["mismatches"]),
            "mismatch_examples": st["examples"],
            "stream_kernel_first_chunk_mismatches": st["stream_kernel"],
            "kernel_timing": {"segments": timed, "ms": timed_ms},
        }
    return entries


def _same_results(x, y) -> int:
    """How many results differ between ``x`` and ``y`` (value or position); all if counts differ."""
    if len(x) != len(y):
        return max(len(x), len(y))
    return int(np.count_nonzero((x.bits != y.bits) | (x.start_beat != y.start_beat)
                                | (x.close_beat != y.close_beat)))


def _stream_check(pool, unit: str, seed: int, arch: str = "reference") -> dict:
    cases = stream_cases(seed, arch, unit)
    entries = []
    for case, golden in zip(cases, pool.imap(_stream_golden, [(unit, c, arch) for c in cases])):
        stream = build_stream_case(unit, case)
        gpu = device.run(stream, arch=arch, **_case_options(case))
        entries.append({**case, "rows": len(stream), "segments": len(golden),
                        "sha256": stream_digest(gpu), "golden_sha256": stream_digest(golden),
                        "mismatches": _same_results(gpu, golden)})
    return {"order": STREAM_ORDER, "bubble_prob": 0.1, "reset_prob": 0.002,
            "segments": sum(e["segments"] for e in entries),
            "rows": sum(e["rows"] for e in entries),
            "mismatches": sum(e["mismatches"] for e in entries), "cases": entries}


def run_crosscheck(units=UNITS, *, segments: int = DEFAULT_SEGMENTS, seed: int = DEFAULT_SEED,
                   chunk: int = DEFAULT_CHUNK, workers: int | None = None,
                   progress_factory=None, archs=("reference",)) -> dict:
    """Run the three sweeps for ``units`` and ``archs`` on the GPU: ``{arch: {unit: entry}}``,
    each entry a record's unit part.

    ``progress_factory(total, desc)`` (e.g. ``tqdm``) makes a progress bar for the chunks.
    Golden runs in a pool of ``workers`` processes (default: every CPU), started with "spawn"
    so that no worker inherits CUDA state. The random sweep of a unit serves every arch at
    once, so an entry's ``run.seconds`` is the wall time of its unit's whole pass.
    """
    units = [check_unit(u) for u in units]
    archs = [check_arch(a) for a in archs]
    if segments < 1 or chunk < 1:
        raise ValueError(f"segments and chunk must be positive, got {segments} and {chunk}")
    workers = workers or os.cpu_count() or 1
    ctx = multiprocessing.get_context("spawn")
    record = {arch: {} for arch in archs}
    with ctx.Pool(workers) as pool:
        info = device.device_info()
        for unit in units:
            t0 = time.perf_counter()
            entries = {}
            for arch in archs:
                run_info = {
                    "date": _now(),
                    "device": info,
                    "host": {"python": platform.python_version(), "numpy": np.__version__,
                             "cpus": os.cpu_count(), "golden_workers": workers},
                    "sources_sha256": source_digests(arch),
                    "nvrtc_options": list(device.NVRTC_OPTIONS if arch == "reference"
                                          else device.FUSED_NVRTC_OPTIONS),
                }
                if arch != "reference":
                    run_info["arch"] = arch
                if arch == "fused-exact":
                    width = exact_acc_width(unit, DEFAULT_BLOCK_SIZE)
                    run_info["acc_width"] = width
                    run_info["max_segment"] = exact_max_segment(unit, DEFAULT_BLOCK_SIZE, width)
                entries[arch] = {"run": run_info}
                golden = exhaustive_golden(unit, arch, pool)
                entries[arch]["exhaustive"] = _check_exhaustive(unit, golden, arch)
            n_chunks = -(-segments // chunk)
            bar = progress_factory(n_chunks, f"{unit} random") if progress_factory else None
            try:
                sweeps = _random_sweep(pool, unit, seed, segments, chunk, bar, archs)
            finally:
                if bar is not None:
                    bar.close()
            for arch in archs:
                entries[arch]["random"] = sweeps[arch]
                entries[arch]["stream"] = _stream_check(pool, unit, seed, arch)
            seconds = round(time.perf_counter() - t0, 1)
            for arch in archs:
                entries[arch]["run"]["seconds"] = seconds
                record[arch][unit] = entries[arch]
    return record


def load_record(path) -> dict | None:
    path = Path(path)
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    if doc.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a {SCHEMA} record (schema {doc.get('schema')!r})")
    return doc


def merge_record(previous: dict | None, units: dict) -> dict:
    """The record with ``units`` replaced and other units' entries (from earlier runs) kept."""
    merged = dict(previous["units"]) if previous else {}
    merged.update(units)
    return {
        "schema": SCHEMA,
        "description": "GPU (CUDA, gpu_ref/mac.cu) vs golden model cross-check; "
                       "written by `if4mac gpu-check`, read by tests/test_gpu_ref.py",
        "generator": {
            "name": GENERATOR,
            "definition": "see gpu_ref/generator.py (numpy) and gpu_ref/mac.cu (CUDA)",
        },
        "units": {u: merged[u] for u in UNITS if u in merged},
    }


def write_record(path, record: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def load_fused_record(path) -> dict | None:
    """The fused record at ``path`` (None if there is none)."""
    path = Path(path)
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    if doc.get("schema") != FUSED_SCHEMA:
        raise ValueError(f"{path}: not a {FUSED_SCHEMA} record (schema {doc.get('schema')!r})")
    return doc


def merge_fused_record(previous: dict | None, archs: dict) -> dict:
    """The fused record with ``archs`` (``{arch: {unit: entry}}``) replaced unit by unit, and
    the other architectures' and units' entries kept."""
    merged = {a: dict(e) for a, e in previous["archs"].items()} if previous else {}
    for arch, units in archs.items():
        merged.setdefault(arch, {}).update(units)
    return {
        "schema": FUSED_SCHEMA,
        "description": "GPU (CUDA, gpu_ref/fused.cu) vs golden.fused cross-check of the fused "
                       "architectures; written by `if4mac gpu-check`, read by "
                       "tests/test_gpu_fused.py",
        "generator": {
            "name": GENERATOR,
            "definition": "see gpu_ref/generator.py (numpy) and gpu_ref/mac.cu (CUDA)",
        },
        "archs": {a: {u: merged[a][u] for u in UNITS if u in merged[a]}
                  for a in FUSED_ARCHS if a in merged},
    }


def summary_lines(units: dict, arch: str = "reference") -> list[str]:
    """One line per unit and sweep, for the terminal."""
    lines = []
    for name, e in units.items():
        unit = name if arch == "reference" else f"{arch} {name}"
        ex, rnd, st = e["exhaustive"], e["random"], e["stream"]
        what = "lanes" if arch == "reference" else "one-beat segments"
        lines.append(f"{unit}: exhaustive {ex['count']:,} {what}, {ex['mismatches']} mismatches, "
                     f"kernel {ex['kernel_ms']:.3f} ms, sha256 {ex['sha256'][:16]}")
        lines.append(f"{unit}: random {rnd['segments']:,} segments ({rnd['beats']:,} beats), "
                     f"{rnd['mismatches']} mismatches, sha256 {rnd['sha256'][:16]}")
        lines.append(f"{unit}: stream {len(st['cases'])} cases, {st['segments']:,} segments "
                     f"with bubbles/resets, {st['mismatches']} mismatches")
    return lines
