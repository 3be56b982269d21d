"""Functional coverage of a stimulus: which kinds of beats, segments, control events and
accumulator events a regression actually exercised, in cocotb-coverage's database.

Sampling is done from the stream as played and from golden's arithmetic, not from a
simulator's pins, so it serves every testbench (cocotb, sv, native) alike: each plays the
stream exactly as written (the cocotb scenarios add idle cycles, which carry no beat), and
each RTL result is checked bit for bit against golden, so the adds golden performs are the
adds the lane accumulators and the tree performed. The classes are computed with numpy over
the whole stream; cocotb-coverage then gets one sample per enabled beat, per stream row with
a control event and per completed segment (a few microseconds each: meant for regression
streams of up to about 10^5 beats, not for the real-layer benchmark).

Cover points (``if4mac.<unit>.*``; a bin is empty until hit once):

* ``beat.kind``: FP.FP, FP.INT (one operand's block INT4, either one), INT.INT (IF4 only).
* ``beat.a_scale``, ``beat.w_scale``: the E4M3 byte (bits 6:0) zero, subnormal, normal, 0x7F
  (which the hardware clamps to 448).
* ``beat.elements``: a beat holding a zero element, a -0 (code 0x8 in an E2M1 block), INT4
  -8 (code 0x8 in an INT4 block; IF4 only).
* ``segment.length``: enabled beats in a completed segment: 1, 2-4, 5-63, >= 64.
* ``control``: a bubble (en=0), a bubble inside a segment, a reset, a reset that discards an
  open segment, back-to-back closes (segments closed on consecutive rows), a segment opened
  without first=1 (after reset or power-up); for the shared tree, a refused close (overrun).
* ``accumulator``: among the binary32 adds, in a lane accumulator or in the tree, an exact
  cancellation to zero (nonzero operands), a round-to-nearest-even tie (the exact sum halfway
  between two binary32 neighbours, found with an error-free TwoSum in binary32) and a
  carry-out renormalisation (same-sign operands whose sum has a larger exponent than both).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from if4mac.golden import (Stream, check_reduction, closed_segments, run, scale_is_int,
                           scaled_products)
from if4mac.golden.formats import float32_bits

__all__ = ["COVER_TOP", "CoverageResult", "bins_for", "classify", "collect", "write_report"]

COVER_TOP = "if4mac"
_INT4_MIN_CODE = 0x8
_SIGN_CODE = 0x8
_SCALE_MASK = 0x7F
_SCALE_CLAMP = 0x7F
_SUBNORMAL_MAX = 0x07        # E4M3 bytes 0x01..0x07: exponent field 0, nonzero mantissa
_LONG_SEGMENT = 64


def bins_for(unit: str, reduction: str = "pipelined") -> dict[str, list[str]]:
    """The bins of each cover point for ``unit`` and ``reduction``."""
    if4 = unit == "if4"
    scale = ["zero", "subnormal", "normal", "0x7F clamp"]
    control = ["bubble", "bubble inside a segment", "reset", "reset discarding a segment",
               "back-to-back closes", "segment opened without first"]
    if reduction == "shared":
        control.append("refused close (overrun)")
    return {
        "beat.kind": ["FP.FP", "FP.INT", "INT.INT"] if if4 else ["FP.FP"],
        "beat.a_scale": scale,
        "beat.w_scale": scale,
        "beat.elements": ["zero", "-0"] + (["INT4 -8"] if if4 else []),
        "segment.length": ["1", "2-4", "5-63", ">=64"],
        "control": control,
        "accumulator": [f"{where}: {what}" for where, what in itertools.product(
            ("lane", "tree"), ("exact cancellation", "RNE tie", "carry-out"))],
    }


def _add_events(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Per binary32 add ``a + b``: exact cancellation, RNE tie, carry-out (bool arrays)."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        s = a + b
        finite = np.isfinite(s) & np.isfinite(a) & np.isfinite(b)
        # TwoSum (Knuth): s + err == a + b exactly, every step in binary32.
        bb = s - a
        err = (a - (s - bb)) + (b - bb)
        toward = np.where(err > 0, np.float32(np.inf), np.float32(-np.inf)).astype(np.float32)
        gap = np.abs(np.nextafter(s, toward) - s)
        tie = finite & (err != 0) & (np.abs(err) * np.float32(2) == gap)
    cancel = finite & (s == 0) & (a != 0)
    exp = lambda x: (float32_bits(x) >> 23) & 0xFF  # noqa: E731
    same_sign = (np.signbit(a) == np.signbit(b)) & (a != 0) & (b != 0)
    carry = finite & same_sign & (exp(s) > np.maximum(exp(a), exp(b)))
    return {"exact cancellation": cancel, "RNE tie": tie, "carry-out": carry}


@dataclass
class Classes:
    """Per enabled beat, per control row and per segment: the labels each sample carries."""

    beats: list[tuple]         # (kind, a_scale, w_scale, elements, accumulator events)
    control: list[frozenset]   # one per stream row with a control event
    segments: list[tuple]      # (length bin, tree events)


def _scale_class(sf: np.ndarray) -> np.ndarray:
    low = sf & _SCALE_MASK
    return np.select([low == 0, low <= _SUBNORMAL_MAX, low == _SCALE_CLAMP],
                     ["zero", "subnormal", "0x7F clamp"], "normal")


def classify(stream: Stream, reduction: str = "pipelined") -> Classes:
    """The labels of every sample in ``stream`` (see the module docstring)."""
    check_reduction(reduction)
    unit = stream.unit
    en = np.asarray(stream.en, bool)
    first = np.asarray(stream.first, bool)
    n = len(stream)
    reset = np.zeros(n, bool) if stream.reset is None else np.asarray(stream.reset, bool)
    a, w = np.asarray(stream.a), np.asarray(stream.w)
    a_sf, w_sf = np.asarray(stream.a_sf), np.asarray(stream.w_sf)
    a_int = scale_is_int(a_sf) if unit == "if4" else np.zeros(n, bool)
    w_int = scale_is_int(w_sf) if unit == "if4" else np.zeros(n, bool)

    kind = np.select([a_int & w_int, a_int | w_int], ["INT.INT", "FP.INT"], "FP.FP")
    zero = (a == 0).any(axis=1) | (w == 0).any(axis=1)
    neg_zero = (((a == _SIGN_CODE) & ~a_int[:, None]).any(axis=1)
                | ((w == _SIGN_CODE) & ~w_int[:, None]).any(axis=1))
    int_min = (((a == _INT4_MIN_CODE) & a_int[:, None]).any(axis=1)
               | ((w == _INT4_MIN_CODE) & w_int[:, None]).any(axis=1))

    # Lane accumulator adds: replay golden's per-lane sums of every completed segment.
    # Every closed segment, whatever the hardware's timing then does with its result (a reset
    # in flight discards it, the shared tree may refuse it): the stimulus exercised it all the
    # same. The timing-dependent refusals are counted from run() below.
    results = closed_segments(stream)
    lane_events = {k: np.zeros(n, bool) for k in ("exact cancellation", "RNE tie", "carry-out")}
    tree_events = []
    enabled_rows = np.flatnonzero(en)
    seg_rows = []
    for start, close in zip(results.start_beat, results.close_beat):
        rows = enabled_rows[(enabled_rows >= start) & (enabled_rows < close)]
        seg_rows.append(rows)
    # Vectorized over segments: step k adds beat k's products onto the sum of beats 0..k-1.
    if seg_rows:
        longest = max(len(r) for r in seg_rows)
        padded = np.full((len(seg_rows), longest), -1, np.int64)
        for i, r in enumerate(seg_rows):
            padded[i, :len(r)] = r
        m_rows = np.where(padded >= 0, padded, 0)
        m = scaled_products(unit, a[m_rows], w[m_rows], a_sf[m_rows], w_sf[m_rows])
        # first=1 loads the products; a segment opened without it adds them onto +0.
        acc = m[:, 0, :].copy()
        implicit = ~first[padded[:, 0]]
        acc[implicit] = acc[implicit] + np.float32(0)
        for k in range(1, longest):
            live = padded[:, k] >= 0
            events = _add_events(acc[live], m[live, k, :])
            for name, hit in events.items():
                lane_events[name][padded[live, k][hit.any(axis=1)]] = True
            acc[live] = acc[live] + m[live, k, :]
        # The pairwise tree over the lanes, level by level, as golden.tree_reduce adds.
        level = acc
        tree_hits = {k: np.zeros(len(seg_rows), bool) for k in lane_events}
        while level.shape[1] > 1:
            half = level.shape[1] // 2
            left, right = level[:, 0:2 * half:2], level[:, 1:2 * half:2]
            for name, hit in _add_events(left, right).items():
                tree_hits[name] |= hit.any(axis=1)
            summed = left + right
            if level.shape[1] % 2:
                summed = np.concatenate([summed, level[:, -1:]], axis=1)
            level = summed
        if not np.array_equal(float32_bits(level[:, 0]), results.bits):
            raise RuntimeError("coverage: the replayed sums differ from golden's results")
        tree_events = [frozenset(f"tree: {name}" for name in tree_hits if tree_hits[name][i])
                       for i in range(len(seg_rows))]

    beats = []
    for r in enabled_rows:
        elements = frozenset(name for name, hit in (("zero", zero[r]), ("-0", neg_zero[r]),
                                                    ("INT4 -8", int_min[r])) if hit)
        acc_events = frozenset(f"lane: {name}" for name in lane_events if lane_events[name][r])
        beats.append((str(kind[r]), str(_scale_class(a_sf[r:r + 1])[0]),
                      str(_scale_class(w_sf[r:r + 1])[0]), elements, acc_events))

    # Control events, per stream row.
    control: list[frozenset] = []
    inside = np.zeros(n, bool)
    for start, close in zip(results.start_beat, results.close_beat):
        inside[start:close] = True
    enabled_before = np.cumsum(en) - en                 # enabled rows before each row
    last_reset = np.maximum.accumulate(np.where(reset, np.arange(n), -1))
    enabled_at_reset = np.where(last_reset >= 0, enabled_before[np.maximum(last_reset, 0)], 0)
    # A reset discards an open segment if an enabled beat came since the previous reset.
    prev_reset = np.concatenate([[-1], last_reset[:-1]])
    en_since_prev = enabled_before - np.where(prev_reset >= 0,
                                              enabled_before[np.maximum(prev_reset, 0)], 0)
    opener = np.zeros(n, bool)
    # The first enabled beat after power-up or a reset opens a segment, first=1 or not.
    seen_since_reset = enabled_before - enabled_at_reset
    opener[en & (seen_since_reset == 0) & ~first] = True
    close_rows = set(results.close_beat.tolist())
    for r in range(n):
        labels = set()
        if not en[r]:
            labels.add("bubble")
            if inside[r]:
                labels.add("bubble inside a segment")
        if reset[r]:
            labels.add("reset")
            if en_since_prev[r] > 0:
                labels.add("reset discarding a segment")
        if r in close_rows and (r - 1) in close_rows:
            labels.add("back-to-back closes")
        if opener[r]:
            labels.add("segment opened without first")
        if labels:
            control.append(frozenset(labels))
    if reduction == "shared":
        control.extend(frozenset({"refused close (overrun)"})
                       for _ in run(stream, reduction=reduction).overrun_beat)

    lengths = np.array([len(r) for r in seg_rows], np.int64)
    length_bin = np.select([lengths == 1, lengths <= 4, lengths < _LONG_SEGMENT],
                           ["1", "2-4", "5-63"], ">=64")
    segments = [(str(length_bin[i]), tree_events[i]) for i in range(len(seg_rows))]
    return Classes(beats, control, segments)


@dataclass
class CoverageResult:
    """Hits per bin of each cover point, as cocotb-coverage counted them."""

    unit: str
    hits: dict[str, dict[str, int]]

    @property
    def empty(self) -> list[str]:
        """``point: bin`` for every bin never hit."""
        return [f"{point}: {name}" for point, bins in self.hits.items()
                for name, count in bins.items() if count == 0]

    def summary(self) -> str:
        total = sum(len(b) for b in self.hits.values())
        hit = total - len(self.empty)
        text = f"coverage {self.unit}: {hit}/{total} bins hit"
        return text + (f"; empty: {', '.join(self.empty)}" if self.empty else "")


def _contains(labels, name) -> bool:
    return name in labels


def collect(streams, unit: str, reduction: str = "pipelined") -> CoverageResult:
    """Sample ``streams`` (one or several, all of ``unit``) into a fresh cocotb-coverage
    database under ``if4mac.<unit>`` and return the hits per bin."""
    from cocotb_coverage.coverage import CoverPoint, coverage_db

    if isinstance(streams, Stream):
        streams = [streams]
    prefix = f"{COVER_TOP}.{unit}"
    for name in [k for k in coverage_db if k == COVER_TOP or k.startswith(COVER_TOP + ".")]:
        del coverage_db[name]
    bins = bins_for(unit, reduction)

    def point(name, index, multi=False):
        return CoverPoint(f"{prefix}.{name}", xf=lambda sample: sample[index],
                          bins=bins[name], rel=_contains if multi else None, inj=not multi)

    @point("beat.kind", 0)
    @point("beat.a_scale", 1)
    @point("beat.w_scale", 2)
    @point("beat.elements", 3, multi=True)
    @point("accumulator", -1, multi=True)
    def sample_beat(sample):
        pass

    @point("control", 0, multi=True)
    def sample_control(sample):
        pass

    @point("segment.length", 0)
    @point("accumulator", -1, multi=True)    # the same cover point: events come last
    def sample_segment(sample):
        pass

    for stream in streams:
        if stream.unit != unit:
            raise ValueError(f"coverage of {unit}: a stream is {stream.unit}")
        classes = classify(stream, reduction)
        for beat in classes.beats:
            sample_beat(beat)
        for labels in classes.control:
            sample_control((labels,))
        for length, events in classes.segments:
            sample_segment((length, events))
    hits = {name: {b: int(coverage_db[f"{prefix}.{name}"].detailed_coverage[b])
                   for b in bins[name]} for name in bins}
    return CoverageResult(unit, hits)


def write_report(path, result: CoverageResult | None = None) -> Path:
    """cocotb-coverage's YAML export of the database (every cover point and bin with its
    hits) to ``path``; ``.xml`` gives its XML export instead."""
    from cocotb_coverage.coverage import coverage_db

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".xml":
        coverage_db.export_to_xml(str(path))
    else:
        coverage_db.export_to_yaml(str(path))
    return path
