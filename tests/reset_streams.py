"""Directed streams for a reset that lands while a result is in flight (issue 17, item 1).

``reset_ladder(unit, block_size, ks)`` chains one block per distance k: a one-beat segment
opened by a reset row, its closing beat at row c, k - 1 bubbles, and the next block's reset at
row c + k. The expectations are worked out here by hand, not by golden: a reset clears every
register, so the segment's result survives only if it loaded before ``rst_n`` fell, i.e. if
k > latency, with latency = 2 + max(1, ceil(log2 B)) written out as a table (the reference)
or the fused tops' latencies (docs/spec.md), also by hand. The segment values are exact in
every architecture (B equal products of a power-of-two scale), so one ladder serves all.
"""

from __future__ import annotations

import struct

import numpy as np

from if4mac.golden import Stream

#: Latency by block size, by hand: input, product and scaled-product registers, then the tree
#: (whose first level loads with the lane registers) one edge per level, at least one.
LATENCY = {1: 3, 2: 3, 4: 4, 16: 6}
#: The fused tops' latencies by (arch, unit, converter), any block size: input, S and
#: product registers, the segment register (fused-fp32's result), then fused-exact's
#: rounding, IF4's two /49 stages, or the serial /49's 8 busy cycles and its rounding.
FUSED_LATENCY = {("fused-fp32", "nvfp4", None): 3, ("fused-fp32", "if4", None): 3,
                 ("fused-exact", "nvfp4", None): 4, ("fused-exact", "if4", None): 6,
                 ("fused-exact", "if4", "serial"): 12}


def ladder_latency(unit: str, block_size: int, arch: str = "reference",
                   converter: str | None = None) -> int:
    """The hand-written latency of a configuration (the tables above)."""
    if arch == "reference":
        return LATENCY[block_size]
    return FUSED_LATENCY[(arch, unit, None if converter == "pipelined" else converter)]
#: E2M1 codes 1..7 and 9..11 and their values (the spec's table): one distinct result per block.
CODES = [0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x9, 0xA, 0xB]
VALUES = [0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.5, -1.0, -1.5]
ONE = 0x2            # E2M1 1.0
UNIT_SCALE = 0x38    # E4M3 1.0, FP4 block


def f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def reset_ladder(unit: str, block_size: int, ks, latency: int | None = None
                 ) -> tuple[Stream, list[dict]]:
    """The stream, and per k: the closing row, the reset row, whether its result survives
    and its bits. ``latency``: the design's (default: the reference's, :data:`LATENCY`)."""
    rows, cases = [], []
    latency = LATENCY[block_size] if latency is None else latency
    for i, k in enumerate(ks):
        rows.append(dict(en=1, first=1, reset=1, a=CODES[i % len(CODES)]))
        close = len(rows)
        rows.append(dict(en=1, first=1, reset=0, a=ONE))
        rows += [dict(en=0, first=1, reset=0, a=0xF)] * (k - 1)     # bubbles with garbage
        cases.append(dict(k=k, close=close, reset=close + k, survives=k > latency,
                          bits=f32_bits(block_size * VALUES[i % len(VALUES)])))
    # A last segment, closed with nothing after it: it always comes out (B * 1.0).
    rows.append(dict(en=1, first=1, reset=1, a=ONE))
    rows.append(dict(en=1, first=1, reset=0, a=ONE))
    cases.append(dict(k=None, close=len(rows) - 1, reset=None, survives=True,
                      bits=f32_bits(float(block_size))))
    n = len(rows)
    col = lambda key: np.array([r[key] for r in rows])           # noqa: E731
    a = np.repeat(col("a").astype(np.uint8)[:, None], block_size, axis=1)
    w = np.full((n, block_size), ONE, dtype=np.uint8)
    scale = np.full(n, UNIT_SCALE, dtype=np.uint8)
    stream = Stream(unit, col("en").astype(bool), col("first").astype(bool), a, w, scale,
                    scale.copy(), col("reset").astype(bool))
    return stream, cases


def expected(cases) -> list[int]:
    """The results that must come out, in order."""
    return [c["bits"] for c in cases if c["survives"]]
