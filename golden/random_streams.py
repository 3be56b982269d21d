"""Random beat streams for tests, benchmarks and RTL regressions (seeded, reproducible)."""

from __future__ import annotations

import numpy as np

from .formats import (DEFAULT_BLOCK_SIZE, ELEMENT_CODES, INT4_INVALID_CODE, SCALE_INT_FLAG,
                      unit_spec)
from .mac import Stream

__all__ = ["random_stream"]


def random_stream(unit: str, segments: int, *, seed: int = 0, min_len: int = 1,
                  max_len: int = 40, block_size: int = DEFAULT_BLOCK_SIZE,
                  bubble_prob: float = 0.0, int_prob: float = 0.5,
                  valid_only: bool = False, close: bool = True) -> Stream:
    """A stream of ``segments`` segments with lengths uniform in ``min_len..max_len``.

    Element codes are uniform over all 16 codes (the hardware's total function) unless
    ``valid_only``, which replaces 0x8 in INT4 blocks. A scale byte's E4M3 bits [6:0] are
    uniform over all 128 codes, so zero and maximal scales occur; its bit 7 (the INT4 flag)
    is drawn separately, set with probability ``int_prob`` independently per operand, so every
    INT/FP flag mix occurs (bytes are uniform over all 256 only for ``int_prob=0.5``). Bubbles (en=0) are inserted
    before beats with probability ``bubble_prob``. With ``close``, one extra first=1 beat ends
    the stream so that every segment produces a result.
    """
    spec = unit_spec(unit)
    if segments < 0 or not 1 <= min_len <= max_len:
        raise ValueError(f"need segments >= 0 and 1 <= min_len <= max_len; got {segments}, "
                         f"{min_len}, {max_len}")
    if not 0 <= bubble_prob < 1 or not 0 <= int_prob <= 1:
        raise ValueError("bubble_prob must be in [0, 1) and int_prob in [0, 1]")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_len, max_len + 1, size=segments)
    n = int(lengths.sum()) + int(close)
    first = np.zeros(n, dtype=bool)
    first[np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if segments else []] = True
    if close:
        first[-1] = True
    a = rng.integers(0, ELEMENT_CODES, size=(n, block_size), dtype=np.uint8)
    w = rng.integers(0, ELEMENT_CODES, size=(n, block_size), dtype=np.uint8)
    a_sf = rng.integers(0, SCALE_INT_FLAG, size=n, dtype=np.uint8)
    w_sf = rng.integers(0, SCALE_INT_FLAG, size=n, dtype=np.uint8)
    a_sf |= np.where(rng.random(n) < int_prob, SCALE_INT_FLAG, 0).astype(np.uint8)
    w_sf |= np.where(rng.random(n) < int_prob, SCALE_INT_FLAG, 0).astype(np.uint8)
    if valid_only and spec.reads_int_flag:
        for codes, sf in ((a, a_sf), (w, w_sf)):
            bad = (sf[:, None] & SCALE_INT_FLAG).astype(bool) & (codes == INT4_INVALID_CODE)
            codes[bad] = 0
    en = np.ones(n, dtype=bool)
    if bubble_prob > 0:
        gaps = rng.geometric(1 - bubble_prob, size=n) - 1     # bubbles before each beat
        positions = np.cumsum(gaps + 1) - 1
        total = int(positions[-1]) + 1 if n else 0
        full = np.zeros(total, dtype=bool)
        full[positions] = True

        def spread(values):
            # Bubbles carry random garbage: the hardware must ignore everything when en=0.
            if values.dtype == bool:
                out = rng.random(total) < 0.5
            else:
                out = rng.integers(0, np.iinfo(values.dtype).max if values.ndim == 1 else
                                   ELEMENT_CODES, size=(total,) + values.shape[1:],
                                   dtype=values.dtype, endpoint=values.ndim == 1)
            out[positions] = values
            return out

        return Stream(unit, full, spread(first), spread(a), spread(w), spread(a_sf), spread(w_sf))
    return Stream(unit, en, first, a, w, a_sf, w_sf)
