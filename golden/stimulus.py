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
import os
from pathlib import Path

import numpy as np

from if4mac.errors import UserError
from if4mac.safe_output import atomic_file

from .formats import (DEFAULT_BLOCK_SIZE, ELEMENT_CODES, SCALE_CODES,
                      check_block_size, check_unit)
from .mac import Stream

__all__ = ["StimulusFormatError", "parse_stimulus", "load_stimulus", "stimulus_to_json",
           "save_stimulus", "parse_results", "save_stream_npz", "load_stream_npz",
           "MAX_STIMULUS_BEATS", "MAX_STIMULUS_BYTES", "check_stimulus_beats"]

_BEAT_KEYS = {"en", "first", "reset", "a_sf", "w_sf", "a", "w"}
_TOP_KEYS = {"unit", "block_size", "beats"}

#: Most beats a stimulus file may hold (read or written by the toolkit). At block size 16 a
#: beat is at most about 165 bytes of JSON, so such a file stays under MAX_STIMULUS_BYTES.
MAX_STIMULUS_BEATS = 2**20
#: Largest stimulus file read: Python's JSON parser holds the whole document as objects,
#: about 6 times the file's size in memory (1.5 GB at this limit), and takes about 90 s per
#: million beats on the development machine.
MAX_STIMULUS_BYTES = 256 * 2**20


class StimulusFormatError(UserError):
    """A stimulus or results file that cannot be read; the message names the problem."""


def check_stimulus_beats(beats: int, what: str = "stimulus") -> int:
    """``beats`` if a stimulus file of that many beats is within :data:`MAX_STIMULUS_BEATS`."""
    if beats > MAX_STIMULUS_BEATS:
        raise StimulusFormatError(f"{what}: {beats:,} beats is more than a stimulus file may "
                                  f"hold ({MAX_STIMULUS_BEATS:,}; see docs/errors.md)")
    return beats


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
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise StimulusFormatError(f"stimulus: unknown field {sorted(unknown)[0]!r} (expected "
                                  f"{', '.join(sorted(_TOP_KEYS))})")
    if "unit" not in doc:
        raise StimulusFormatError("stimulus: missing 'unit'")
    try:
        unit = check_unit(doc["unit"])
    except ValueError as err:
        raise StimulusFormatError(f"stimulus: {err}") from None
    block_size = doc.get("block_size", DEFAULT_BLOCK_SIZE)
    try:
        check_block_size(_int(block_size, "block_size", -2**63, 2**63), "block_size")
    except ValueError as err:
        raise StimulusFormatError(str(err)) from None
    beats = doc.get("beats")
    if not isinstance(beats, list):
        raise StimulusFormatError("stimulus: 'beats' must be a list")
    n = check_stimulus_beats(len(beats))
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


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = next(k for i, k in enumerate(keys) if k in keys[:i])
        raise StimulusFormatError(f"duplicate key {dup!r} in an object")
    return dict(pairs)


def _read_json(path: Path, limit: int):
    """The JSON document in ``path``: size-limited, UTF-8, no duplicate keys; one-line errors."""
    if path.exists() and not path.is_file():      # a directory, device or pipe (which
        raise StimulusFormatError(f"{path}: not a regular file")    # could block the read)
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > limit:
                raise StimulusFormatError(f"{path}: {size:,} bytes is larger than the "
                                          f"{limit:,}-byte limit for JSON input (see "
                                          f"docs/errors.md)")
            data = fh.read()
    except OSError as err:
        raise StimulusFormatError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise StimulusFormatError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at "
                                  f"offset {err.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as err:
        raise StimulusFormatError(f"{path}: malformed JSON ({err.msg} at line {err.lineno}, "
                                  f"column {err.colno})") from None
    except StimulusFormatError as err:
        raise StimulusFormatError(f"{path}: {err}") from None
    except RecursionError:
        raise StimulusFormatError(f"{path}: JSON nested too deeply") from None
    except ValueError as err:          # e.g. an integer literal of thousands of digits
        raise StimulusFormatError(f"{path}: malformed JSON ({err})") from None


def load_stimulus(path) -> Stream:
    """Read a stimulus JSON file (at most :data:`MAX_STIMULUS_BYTES`, UTF-8, no duplicate
    keys); ``StimulusFormatError`` naming the file for any problem."""
    path = Path(path)
    doc = _read_json(path, MAX_STIMULUS_BYTES)
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
    """Write ``stream`` as a stimulus file, atomically (``if4mac.safe_output``): on any failure
    an existing file at ``path`` is left as it was."""
    check_block_size(stream.block_size)
    check_stimulus_beats(len(stream))
    text = json.dumps(stimulus_to_json(stream), separators=(",", ":")) + "\n"
    with atomic_file(path, "w") as fh:
        fh.write(text)


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
