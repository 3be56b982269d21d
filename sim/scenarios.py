"""Built-in stimulus for the RTL regressions: named, seeded, reproducible beat streams.

Each scenario is a function ``(unit, block_size, seed, scale) -> Stream``. They cover the RTL
regression's cases (docs/simulation.md): long random streams (segment lengths 1..40, random bubbles), all-INT4, all-FP4 and
mixed blocks, zero scales, maximal scales (0x7E, 0x7F, 0xFE, 0xFF), signed-zero paths, reset
in the middle of segments, stimulus quantized from real-looking tensors (Gaussian, Laplace,
Student-t with outliers, each also after a 16-point Hadamard rotation) and invalid INT4 codes
(0x8), which flow through as the hardware decodes them (-8).

Pure numpy and golden: the cocotb testbench, the SystemVerilog fast path and the tests all
build the same streams from here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from if4mac.golden import Stream, random_stream
from if4mac.golden.formats import (DEFAULT_BLOCK_SIZE, ELEMENT_CODES, SCALE_CODES,
                                   SCALE_INT_FLAG, check_unit)

__all__ = ["SCENARIOS", "RANDOM_BEATS", "scenario_names", "make_scenario", "QUANTIZED_KINDS"]

#: Enabled beats in the long random scenario: the regression's size (docs/simulation.md).
RANDOM_BEATS = 10_000
#: Tensor kinds of :func:`if4mac.golden.tensors.example_tensor` used for quantized stimulus.
QUANTIZED_KINDS = ("gaussian", "laplace", "student-t")
#: Scale bytes at the top of E4M3 (448, and 0x7F which also reads as 448), FP and INT.
MAX_SCALES = np.array([0x7E, 0x7F, 0xFE, 0xFF], dtype=np.uint8)
#: Element codes with the largest magnitudes: E2M1 +-6 and INT4 7 / -8 / -7.
MAX_CODES = np.array([0x7, 0xF, 0x8, 0x9], dtype=np.uint8)


def _n(count: int, scale: float) -> int:
    """``count`` scaled down for slow simulators, never below 2."""
    return max(2, round(count * scale))


def _segments_stream(unit: str, lengths, a, w, a_sf, w_sf, *, close: bool = True) -> Stream:
    """A stream of back-to-back segments of the given lengths (plus a closing beat)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n = int(lengths.sum()) + int(close)
    first = np.zeros(n, dtype=bool)
    first[np.concatenate([[0], np.cumsum(lengths)[:-1]])] = True
    if close:
        first[-1] = True
    return Stream(unit, np.ones(n, dtype=bool), first, a[:n], w[:n], a_sf[:n], w_sf[:n])


def _random_fields(rng, n: int, block_size: int):
    a = rng.integers(0, ELEMENT_CODES, size=(n, block_size), dtype=np.uint8)
    w = rng.integers(0, ELEMENT_CODES, size=(n, block_size), dtype=np.uint8)
    a_sf = rng.integers(0, SCALE_CODES, size=n, dtype=np.uint8)
    w_sf = rng.integers(0, SCALE_CODES, size=n, dtype=np.uint8)
    return a, w, a_sf, w_sf


def random_long(unit, block_size, seed, scale=1.0):
    """At least RANDOM_BEATS (times ``scale``) enabled beats: lengths 1..40, 10% bubbles, all
    codes and scales."""
    want = max(1, round(RANDOM_BEATS * scale))
    segments = want // 20 + 10              # mean length 20.5
    while True:
        s = random_stream(unit, segments, seed=seed, block_size=block_size, min_len=1,
                          max_len=40, bubble_prob=0.1)
        if s.en.sum() >= want:
            return s
        segments += 50


def all_int4(unit, block_size, seed, scale=1.0):
    """Every block INT4 (bit 7 set on both scales); NVFP4 reads the same bytes as E2M1."""
    return random_stream(unit, _n(60, scale), seed=seed, block_size=block_size, int_prob=1.0,
                         bubble_prob=0.05)


def all_fp4(unit, block_size, seed, scale=1.0):
    """Every block E2M1 (bit 7 clear on both scales)."""
    return random_stream(unit, _n(60, scale), seed=seed, block_size=block_size, int_prob=0.0,
                         bubble_prob=0.05)


def mixed_blocks(unit, block_size, seed, scale=1.0):
    """Every (a INT?, w INT?) combination, in turn and mixed within segments."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 12, size=_n(80, scale))
    n = int(lengths.sum()) + 1
    a, w, a_sf, w_sf = _random_fields(rng, n, block_size)
    combo = np.arange(n) % 4
    a_sf = (a_sf & 0x7F) | np.where(combo & 1, SCALE_INT_FLAG, 0).astype(np.uint8)
    w_sf = (w_sf & 0x7F) | np.where(combo & 2, SCALE_INT_FLAG, 0).astype(np.uint8)
    return _segments_stream(unit, lengths, a, w, a_sf, w_sf)


def zero_scales(unit, block_size, seed, scale=1.0):
    """Scale bytes 0x00 and 0x80 (zero, FP and INT) on one or both operands, some segments
    entirely zero-scaled: sf is +0 and m = p * +0 keeps the sign of p."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 8, size=_n(80, scale))
    n = int(lengths.sum()) + 1
    a, w, a_sf, w_sf = _random_fields(rng, n, block_size)
    which = rng.integers(0, 4, size=n)       # 0: none zero, 1: a, 2: w, 3: both
    zeros = np.array([0x00, 0x80], dtype=np.uint8)
    a_sf = np.where(which & 1, rng.choice(zeros, size=n), a_sf).astype(np.uint8)
    w_sf = np.where(which & 2, rng.choice(zeros, size=n), w_sf).astype(np.uint8)
    # Whole segments of zero scales, so that their results are signed or unsigned zeros.
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for s, length in zip(starts[::3], lengths[::3]):
        a_sf[s:s + length] = rng.choice(zeros, size=length)
    return _segments_stream(unit, lengths, a, w, a_sf, w_sf)


def max_scales(unit, block_size, seed, scale=1.0):
    """Scales 0x7E, 0x7F, 0xFE, 0xFF with the largest element codes, segments up to 40 beats:
    the largest products (|m| up to 2^24) and sums."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 41, size=_n(40, scale))
    n = int(lengths.sum()) + 1
    a = rng.choice(MAX_CODES, size=(n, block_size))
    w = rng.choice(MAX_CODES, size=(n, block_size))
    # Same-sign runs as well as mixed ones: 0x7 x 0x7 everywhere grows the sums fastest.
    same = rng.random(n) < 0.3
    a[same] = 0x7
    w[same] = 0x7
    a_sf = rng.choice(MAX_SCALES, size=n)
    w_sf = rng.choice(MAX_SCALES, size=n)
    return _segments_stream(unit, lengths, a, w, a_sf, w_sf)


def signed_zeros(unit, block_size, seed, scale=1.0):
    """Zero products of every sign: codes 0x0 / 0x8 (E2M1 +-0; in INT4 blocks 0x8 is -8),
    zero scales, and exact cancellations, which round to +0."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 6, size=_n(120, scale))
    n = int(lengths.sum()) + 1
    a = rng.choice(np.array([0x0, 0x8], dtype=np.uint8), size=(n, block_size))
    w = rng.choice(np.array([0x0, 0x8, 0x2, 0xA], dtype=np.uint8), size=(n, block_size))
    a_sf = rng.choice(np.array([0x38, 0x00, 0x80, 0x7E], dtype=np.uint8), size=n)
    w_sf = rng.choice(np.array([0x38, 0x00, 0x7F, 0x40], dtype=np.uint8), size=n)
    kind = rng.integers(0, 4, size=n)
    # All -0 products (E2M1 -0 x +1): a segment of them sums to -0 (0x80000000).
    neg = kind == 1
    a[neg], w[neg] = 0x8, 0x2
    a_sf[neg] &= 0x7F
    w_sf[neg] &= 0x7F
    # x and -x in neighbouring lanes: each tree add cancels exactly to +0.
    cancel = kind == 2
    a[cancel] = 0x2
    w[cancel, 0::2] = 0x2
    w[cancel, 1::2] = 0xA
    a_sf[cancel] &= 0x7F
    w_sf[cancel] &= 0x7F
    return _segments_stream(unit, lengths, a, w, a_sf, w_sf)


def reset_mid_segment(unit, block_size, seed, scale=1.0):
    """Resets in the middle of segments, on closing beats, on bubbles, twice in a row, before
    the very first beat; and segments opened without first=1 (after power-up and reset)."""
    s = random_stream(unit, _n(120, scale), seed=seed, block_size=block_size, min_len=1, max_len=12,
                      bubble_prob=0.1)
    rng = np.random.default_rng(seed + 1)
    n = len(s)
    reset = rng.random(n) < 0.04
    reset[0] = True
    reset[n // 2:n // 2 + 2] = True
    first = s.first.copy()
    first[0] = False                          # the power-up segment opens without first=1
    after = np.flatnonzero(reset) + 1
    first[after[after < n - 1]] = False       # and so do some segments after a reset
    return Stream(unit, s.en, first, s.a, s.w, s.a_sf, s.w_sf, reset)


def single_beat_segments(unit, block_size, seed, scale=1.0):
    """first=1 on every beat: a result every cycle, back to back."""
    return random_stream(unit, _n(200, scale), seed=seed, block_size=block_size, min_len=1,
                         max_len=1)


def invalid_codes(unit, block_size, seed, scale=1.0):
    """Code 0x8 everywhere in INT4 blocks: -8 x -8 = 64, the largest lane product."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 20, size=_n(40, scale))
    n = int(lengths.sum()) + 1
    a = rng.choice(np.array([0x8, 0x8, 0x7, 0x9, 0x1], dtype=np.uint8), size=(n, block_size))
    w = rng.choice(np.array([0x8, 0x8, 0x7, 0x9, 0xF], dtype=np.uint8), size=(n, block_size))
    a_sf = rng.integers(0, SCALE_INT_FLAG, size=n, dtype=np.uint8) | SCALE_INT_FLAG
    w_sf = rng.integers(0, SCALE_INT_FLAG, size=n, dtype=np.uint8) | np.where(
        rng.random(n) < 0.8, SCALE_INT_FLAG, 0).astype(np.uint8)
    return _segments_stream(unit, lengths, a, w, a_sf, w_sf)


def _quantized(kind: str, hadamard: bool):
    def make(unit, block_size, seed, scale=1.0):
        from if4mac.golden.quantize import quantize, stimulus_from_quantized
        from if4mac.golden.tensors import example_tensor

        # Activations of the given kind against Gaussian weights: 6 x 5 outputs of K = 256,
        # so 16 beats per segment.
        acts = example_tensor(kind, (_n(6, scale), 256), seed=seed, hadamard=hadamard)
        wts = example_tensor("gaussian", (_n(5, scale), 256), seed=seed + 1, hadamard=hadamard)
        return stimulus_from_quantized(quantize(acts, unit), quantize(wts, unit), unit)

    rotated = " after a 16-point Hadamard rotation" if hadamard else ""
    make.__doc__ = f"{kind} activations x Gaussian weights{rotated}, quantized by golden."
    make.needs_block_size = DEFAULT_BLOCK_SIZE
    return make


SCENARIOS: dict[str, Callable[..., Stream]] = {
    "random": random_long,
    "all_int4": all_int4,
    "all_fp4": all_fp4,
    "mixed_blocks": mixed_blocks,
    "zero_scales": zero_scales,
    "max_scales": max_scales,
    "signed_zeros": signed_zeros,
    "reset_mid_segment": reset_mid_segment,
    "single_beat_segments": single_beat_segments,
    "invalid_codes": invalid_codes,
}
for _kind in QUANTIZED_KINDS:
    for _had in (False, True):
        SCENARIOS[f"quantized_{_kind.replace('-', '_')}{'_hadamard' if _had else ''}"] = \
            _quantized(_kind, _had)


def scenario_names(block_size: int = DEFAULT_BLOCK_SIZE) -> list[str]:
    """The scenarios that apply at ``block_size`` (quantized stimulus needs blocks of 16)."""
    return [name for name, make in SCENARIOS.items()
            if getattr(make, "needs_block_size", block_size) == block_size]


def make_scenario(name: str, unit: str, block_size: int = DEFAULT_BLOCK_SIZE, seed: int = 1,
                  scale: float = 1.0) -> Stream:
    """The stream of scenario ``name``; a clear ``ValueError`` for an unknown or unfitting one.

    ``scale`` (0 < scale <= 1) shrinks the stream for slow simulators (Icarus runs the MAC
    about a hundred times slower than Verilator); the mix of cases stays the same.
    """
    check_unit(unit)
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1]; got {scale}")
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}: expected one of {', '.join(SCENARIOS)}")
    if name not in scenario_names(block_size):
        raise ValueError(f"scenario {name!r} needs block size "
                         f"{SCENARIOS[name].needs_block_size}, not {block_size}")
    return SCENARIOS[name](unit, block_size, seed, scale)
