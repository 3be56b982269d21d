"""The random-segment generator of the GPU cross-check, in numpy (CPU side).

A counter-based generator, so that the GPU can make each segment's inputs where it computes it
and the CPU can make the same inputs for the golden model, chunk by chunk and in any order, with
nothing but a seed in common. ``random_segments`` in gpu_ref/mac.cu is the CUDA half; the two
must agree bit for bit (the cross-check fails loudly if they do not).

Definition (version ``GENERATOR``):

* ``word(seed, c)`` is output ``c`` of SplitMix64 seeded with ``seed``:
  ``mix64(seed + (c + 1) * 0x9E3779B97F4A7C15)`` modulo 2**64.
* Segment ``s`` owns counters ``s * 1024 ... s * 1024 + 1023``: slot 0 is its header ``h``;
  beat ``j`` uses slots ``1 + 3j`` (a codes), ``2 + 3j`` (w codes), ``3 + 3j`` (scales).
* Length: ``9 + h[15:8]`` (9..264) when ``h[7:0] == 0`` (1 in 256), else ``1 + h[10:8]`` (1..8).
* Codes: lane ``i`` is nibble ``i`` (bits ``4i+3:4i``) of the codes word: every 4-bit code,
  0x8 in INT4 blocks included (the hardware's total function).
* Scales: when ``h[16]`` is set, every beat uses ``a_sf = h[31:24]``, ``w_sf = h[39:32]``;
  otherwise beat ``j`` uses bits ``[7:0]`` and ``[15:8]`` of its scales word. Both bytes are
  uniform over 0..255, so every INT/FP flag mix and zero scales occur.

As a golden stream, the segments follow one another, each opened by ``first=1`` on its first
beat, and one extra ``first=1`` beat closes the last.
"""

from __future__ import annotations

import numpy as np

from if4mac.golden import Stream, check_unit
from if4mac.golden.mac import DEFAULT_BLOCK_SIZE

__all__ = ["GENERATOR", "SLOTS_PER_SEGMENT", "MAX_SEGMENT_LENGTH", "splitmix64",
           "segment_headers", "segment_lengths", "random_segment_stream"]

#: Name of the generator definition above; recorded with every random sweep.
GENERATOR = "splitmix64-v1"
#: Counters reserved per segment: the header plus three words for each of up to 341 beats.
SLOTS_PER_SEGMENT = 1024
#: The longest segment the length rule can draw (9 + 255).
MAX_SEGMENT_LENGTH = 264

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_NIBBLE_SHIFTS = (4 * np.arange(DEFAULT_BLOCK_SIZE, dtype=np.uint64))


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in 0..2**64-1, got {seed!r}")
    return int(seed)


def splitmix64(seed: int, counters) -> np.ndarray:
    """Output number ``counters`` (array of uint64) of SplitMix64 seeded with ``seed``."""
    z = np.asarray(counters, dtype=np.uint64) + np.uint64(1)   # uint64 arrays wrap mod 2**64
    z = np.uint64(_check_seed(seed)) + z * _GAMMA
    z = (z ^ (z >> np.uint64(30))) * _MUL1
    z = (z ^ (z >> np.uint64(27))) * _MUL2
    return z ^ (z >> np.uint64(31))


def _check_range(start: int, count: int) -> None:
    if start < 0 or count < 0:
        raise ValueError(f"segment range must be non-negative, got start={start}, count={count}")


def segment_headers(seed: int, start: int, count: int) -> np.ndarray:
    """Header words of segments ``start .. start + count - 1``."""
    _check_range(start, count)
    segments = np.arange(start, start + count, dtype=np.uint64)
    return splitmix64(seed, segments * np.uint64(SLOTS_PER_SEGMENT))


def segment_lengths(headers: np.ndarray) -> np.ndarray:
    """Beats per segment from its header word (int64)."""
    headers = np.asarray(headers, dtype=np.uint64)
    long = (headers & np.uint64(0xFF)) == 0
    byte1 = (headers >> np.uint64(8)) & np.uint64(0xFF)
    return np.where(long, 9 + byte1, 1 + (byte1 & np.uint64(7))).astype(np.int64)


def _nibbles(words: np.ndarray) -> np.ndarray:
    return ((words[:, None] >> _NIBBLE_SHIFTS) & np.uint64(15)).astype(np.uint8)


def random_segment_stream(unit: str, seed: int, start: int, count: int) -> Stream:
    """The golden :class:`Stream` of generator segments ``start .. start + count - 1``.

    It has one beat per generated beat plus a closing ``first=1`` beat (all-zero codes and
    scales), so ``golden.run`` returns exactly ``count`` results, in segment order.
    """
    check_unit(unit)
    headers = segment_headers(seed, start, count)
    lengths = segment_lengths(headers)
    beats = int(lengths.sum())
    seg_first_beat = np.cumsum(lengths) - lengths
    # Segment of each beat and the beat's index j inside it.
    seg_of_beat = np.repeat(np.arange(count, dtype=np.int64), lengths)
    j = np.arange(beats, dtype=np.int64) - np.repeat(seg_first_beat, lengths)
    slot = ((np.uint64(start) + seg_of_beat.astype(np.uint64)) * np.uint64(SLOTS_PER_SEGMENT)
            + np.uint64(1) + np.uint64(3) * j.astype(np.uint64))
    n = beats + 1
    a = np.zeros((n, DEFAULT_BLOCK_SIZE), dtype=np.uint8)
    w = np.zeros((n, DEFAULT_BLOCK_SIZE), dtype=np.uint8)
    a[:beats] = _nibbles(splitmix64(seed, slot))
    w[:beats] = _nibbles(splitmix64(seed, slot + np.uint64(1)))
    beat_header = headers[seg_of_beat]
    shared = ((beat_header >> np.uint64(16)) & np.uint64(1)).astype(bool)
    scales = np.where(shared, beat_header >> np.uint64(24), splitmix64(seed, slot + np.uint64(2)))
    a_sf = np.zeros(n, dtype=np.uint8)
    w_sf = np.zeros(n, dtype=np.uint8)
    a_sf[:beats] = (scales & np.uint64(0xFF)).astype(np.uint8)
    w_sf[:beats] = ((scales >> np.uint64(8)) & np.uint64(0xFF)).astype(np.uint8)
    first = np.zeros(n, dtype=bool)
    first[seg_first_beat] = True
    first[-1] = True
    return Stream(unit, np.ones(n, dtype=bool), first, a, w, a_sf, w_sf)
