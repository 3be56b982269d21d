"""Stimulus and results files: the JSON that users, the RTL testbenches and the CLI exchange.

Stimulus::

    {"unit": "if4", "block_size": 16,
     "beats": [{"en": 1, "first": 1, "a_sf": 232, "w_sf": 65, "a": [16 ints], "w": [16 ints]},
               ...]}

``en`` defaults to 1, ``first`` to 0; an optional ``"reset": 1`` pulses ``rst_n`` before the beat.
Results: a JSON list of binary32 bit patterns as hex strings (``"0xc802a96c"``), one per
completed segment, in order.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .formats import DEFAULT_BLOCK_SIZE, ELEMENT_CODES, MAX_BLOCK_SIZE, SCALE_CODES, check_unit
from .mac import Stream

__all__ = ["StimulusFormatError", "parse_stimulus", "load_stimulus", "stimulus_to_json",
           "save_stimulus", "parse_results", "save_stream_npz", "load_stream_npz"]

_BEAT_KEYS = {"en", "first", "reset", "a_sf", "w_sf", "a", "w"}


class StimulusFormatError(ValueError):
    """A stimulus or results file that cannot be read; the message names the problem."""


def _int(value, what: str, lo: int, hi: int) -> int:
    # bool is an int subclass in Python; a JSON true where a code belongs is a mistake.
    if isinstance(value, bool) or not isinstance(value, int):
        raise StimulusFormatError(f"{what}: expected an integer, got {json.dumps(value)}")
    if not lo <= value <= hi:
        raise StimulusFormatError(f"{what}: {value} is outside {lo}..{hi}")
    return value


def _codes(value, what: str, block_size: int) -> list[int]:
    if not isinstance(value, list):
        raise StimulusFormatError(f"{what}: expected a list of {block_size} codes")
    if len(value) != block_size:
        raise StimulusFormatError(f"{what}: {len(value)} lanes, expected {block_size}")
    return [_int(v, f"{what}[{i}]", 0, ELEMENT_CODES - 1) for i, v in enumerate(value)]


def parse_stimulus(doc) -> Stream:
    """A :class:`Stream` from a decoded stimulus document; ``StimulusFormatError`` if malformed."""
    if not isinstance(doc, dict):
        raise StimulusFormatError("stimulus: expected a JSON object with 'unit' and 'beats'")
    if "unit" not in doc:
        raise StimulusFormatError("stimulus: missing 'unit'")
    try:
        unit = check_unit(doc["unit"])
    except ValueError as err:
        raise StimulusFormatError(f"stimulus: {err}") from None
    block_size = _int(doc.get("block_size", DEFAULT_BLOCK_SIZE), "block_size", 1, MAX_BLOCK_SIZE)
    beats = doc.get("beats")
    if not isinstance(beats, list):
        raise StimulusFormatError("stimulus: 'beats' must be a list")
    n = len(beats)
    en = np.ones(n, dtype=bool)
    first = np.zeros(n, dtype=bool)
    reset = np.zeros(n, dtype=bool)
    a_sf = np.zeros(n, dtype=np.uint8)
    w_sf = np.zeros(n, dtype=np.uint8)
    a = np.zeros((n, block_size), dtype=np.uint8)
    w = np.zeros((n, block_size), dtype=np.uint8)
    for i, beat in enumerate(beats):
        where = f"beat {i}"
        if not isinstance(beat, dict):
            raise StimulusFormatError(f"{where}: expected an object")
        unknown = set(beat) - _BEAT_KEYS
        if unknown:
            raise StimulusFormatError(f"{where}: unknown field {sorted(unknown)[0]!r}")
        en[i] = _int(beat.get("en", 1), f"{where} en", 0, 1)
        first[i] = _int(beat.get("first", 0), f"{where} first", 0, 1)
        reset[i] = _int(beat.get("reset", 0), f"{where} reset", 0, 1)
        if not en[i] and not {"a", "w", "a_sf", "w_sf"} & set(beat):
            continue                                  # a bare bubble: {"en": 0}
        for key in ("a_sf", "w_sf", "a", "w"):
            if key not in beat:
                raise StimulusFormatError(f"{where}: missing '{key}'")
        a_sf[i] = _int(beat["a_sf"], f"{where} a_sf", 0, SCALE_CODES - 1)
        w_sf[i] = _int(beat["w_sf"], f"{where} w_sf", 0, SCALE_CODES - 1)
        a[i] = _codes(beat["a"], f"{where} a", block_size)
        w[i] = _codes(beat["w"], f"{where} w", block_size)
    return Stream(unit, en, first, a, w, a_sf, w_sf, reset if reset.any() else None)


def load_stimulus(path) -> Stream:
    """Read a stimulus JSON file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise StimulusFormatError(f"{path}: cannot read ({err.strerror})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise StimulusFormatError(f"{path}: malformed JSON ({err.msg} at line {err.lineno}, "
                                  f"column {err.colno})") from None
    try:
        return parse_stimulus(doc)
    except StimulusFormatError as err:
        raise StimulusFormatError(f"{path}: {err}") from None


def stimulus_to_json(stream: Stream) -> dict:
    """The stimulus document for ``stream`` (``en`` and ``reset`` written only where they matter)."""
    beats = []
    reset = stream.reset if stream.reset is not None else np.zeros(len(stream), dtype=bool)
    for i in range(len(stream)):
        beat = {}
        if not stream.en[i]:
            beat["en"] = 0
        if reset[i]:
            beat["reset"] = 1
        beat.update({"first": int(stream.first[i]), "a_sf": int(stream.a_sf[i]),
                     "w_sf": int(stream.w_sf[i]), "a": [int(v) for v in stream.a[i]],
                     "w": [int(v) for v in stream.w[i]]})
        beats.append(beat)
    return {"unit": stream.unit, "block_size": stream.block_size, "beats": beats}


def save_stimulus(stream: Stream, path) -> None:
    Path(path).write_text(json.dumps(stimulus_to_json(stream), separators=(",", ":")) + "\n")


def parse_results(doc) -> np.ndarray:
    """uint32 bit patterns from a results document (a list of hex strings)."""
    if not isinstance(doc, list):
        raise StimulusFormatError("results: expected a JSON list of hex strings")
    bits = []
    for i, item in enumerate(doc):
        try:
            if not isinstance(item, str) or not item.lower().startswith("0x"):
                raise ValueError
            value = int(item, 16)
            if not 0 <= value < 2**32:
                raise ValueError
        except ValueError:
            raise StimulusFormatError(f"results[{i}]: expected a 32-bit hex string like "
                                      f"\"0x3f800000\", got {json.dumps(item)}") from None
        bits.append(value)
    return np.array(bits, dtype=np.uint32)


def save_stream_npz(stream: Stream, path) -> None:
    """Write ``stream`` as numpy arrays (npz), for :func:`load_stream_npz`: much faster than
    JSON for long stimuli (the simulation jobs pass their streams this way)."""
    extra = {} if stream.reset is None else {"reset": np.asarray(stream.reset, dtype=bool)}
    np.savez(path, unit=stream.unit, en=np.asarray(stream.en, dtype=bool),
             first=np.asarray(stream.first, dtype=bool), a=np.asarray(stream.a, dtype=np.uint8),
             w=np.asarray(stream.w, dtype=np.uint8), a_sf=np.asarray(stream.a_sf, dtype=np.uint8),
             w_sf=np.asarray(stream.w_sf, dtype=np.uint8), **extra)


def load_stream_npz(path) -> Stream:
    """A stream saved by :func:`save_stream_npz`."""
    with np.load(path) as f:
        reset = f["reset"] if "reset" in f.files else None
        return Stream(str(f["unit"]), f["en"], f["first"], f["a"], f["w"], f["a_sf"], f["w_sf"],
                      reset)
