"""From a golden :class:`~if4mac.golden.Stream` to what the MAC's pins see, clock cycle by cycle.

A stimulus row is a clock cycle, with two kinds of cycles added: before a row marked ``reset``,
``rst_n`` is held low for one cycle, without draining the pipeline first (a result still in
flight is discarded, as golden models: see ``golden.Stream``); the run starts with a power-up
reset and ends with a drain; a testbench may add random idle gaps, but never within the
``latency`` rows up to a reset, where a gap would change which results the reset discards. :func:`drive_plan` works all of that
out once, in numpy, so that the cocotb driver and the plain SystemVerilog testbench
(:mod:`if4mac.sim.fast`) play exactly the same cycles, and so that a mismatch at clock cycle k
can be traced back to the stimulus row that was on the pins then.

Idle cycles (gaps, drains, the reset pulse) drive ``en=0`` with random element codes, scales
and ``first``: the hardware must ignore everything when ``en=0``, so the garbage is a check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from if4mac.golden import Stream
from if4mac.golden.formats import ELEMENT_CODES, ELEMENT_WIDTH, SCALE_CODES

__all__ = ["ELEMENT_BITS", "DrivePlan", "drive_plan", "pack_lanes", "unpack_lanes",
           "check_latency"]

#: Lane i of ``a_in`` / ``w_in`` is bits [4i+3:4i]. pack_lanes packs two lanes per byte,
#: which is only right for 4-bit codes.
ELEMENT_BITS = ELEMENT_WIDTH
assert 2 * ELEMENT_BITS == 8, "pack_lanes packs two element codes per byte"
#: Idle cycles after the last beat that may still hold a result in flight, beyond ``latency``:
#: the result of a beat sampled at rising edge E is on ``acc`` after edge E+latency and is
#: sampled half a cycle later, so the end of the run must wait one cycle more.
DRAIN_MARGIN = 1


def check_latency(latency) -> int:
    if isinstance(latency, bool) or not isinstance(latency, (int, np.integer)) or latency < 1:
        raise ValueError(f"latency must be a positive integer number of cycles; got {latency!r}")
    return int(latency)


def pack_lanes(codes) -> list[int]:
    """Per row, the integer whose bits [4i+3:4i] are lane i's code (``a_in`` / ``w_in``)."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"lane codes must have shape (rows, block_size); got {codes.shape}")
    if codes.size and (codes.min() < 0 or codes.max() >= ELEMENT_CODES):
        raise ValueError("lane codes must be in 0..15")
    rows, lanes = codes.shape
    if lanes % 2:
        codes = np.concatenate([codes, np.zeros((rows, 1), dtype=codes.dtype)], axis=1)
    nibbles = codes.astype(np.uint8)
    # Two lanes per byte, the even lane in the low nibble; bytes little-endian.
    packed = nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)
    blob = np.ascontiguousarray(packed).tobytes()
    width = packed.shape[1]
    return [int.from_bytes(blob[r * width:(r + 1) * width], "little") for r in range(rows)]


def unpack_lanes(values, block_size: int) -> np.ndarray:
    """Inverse of :func:`pack_lanes`: shape (rows, block_size) uint8 codes."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1; got {block_size}")
    width = (block_size + 1) // 2
    values = list(values)
    try:
        blob = b"".join(int(v).to_bytes(width, "little") for v in values)
    except OverflowError:
        raise ValueError(f"a packed lane word is wider than {block_size} lanes") from None
    packed = np.frombuffer(blob, dtype=np.uint8).reshape(len(values), width)
    codes = np.empty((len(values), 2 * width), dtype=np.uint8)
    codes[:, 0::2] = packed & 0xF
    codes[:, 1::2] = packed >> 4
    return codes[:, :block_size]


@dataclass(frozen=True)
class DrivePlan:
    """What is on the MAC's inputs during each clock cycle, and where it came from.

    Cycle k's values are applied before rising edge k (at the falling edge before it) and
    sampled at rising edge k. ``row[k]`` is the stimulus row driven in cycle k, -1 for an
    inserted idle or reset cycle; ``cycle_of_row[r]`` is the inverse.
    """

    unit: str
    latency: int
    rst_n: np.ndarray        # (C,) bool, False for a reset cycle (async, active low)
    en: np.ndarray           # (C,) bool
    first: np.ndarray        # (C,) bool
    a: np.ndarray            # (C, B) uint8
    w: np.ndarray            # (C, B) uint8
    a_sf: np.ndarray         # (C,) uint8
    w_sf: np.ndarray         # (C,) uint8
    row: np.ndarray          # (C,) int64
    cycle_of_row: np.ndarray  # (N,) int64

    @property
    def block_size(self) -> int:
        return self.a.shape[1]

    def __len__(self) -> int:
        return len(self.en)

    def describe_cycle(self, cycle: int) -> str:
        """A cycle in stimulus terms, for reports."""
        if 0 <= cycle < len(self.row):
            r = int(self.row[cycle])
            if r >= 0:
                return f"cycle {cycle} (stimulus beat {r})"
            what = "reset pulse" if not self.rst_n[cycle] else "inserted idle cycle"
            return f"cycle {cycle} ({what})"
        return f"cycle {cycle} (after the last driven cycle)"


def drive_plan(stream: Stream, latency: int, *, gap_prob: float = 0.0,
               seed: int = 0) -> DrivePlan:
    """The cycle-by-cycle drive for ``stream`` on a MAC of the given ``latency``.

    Cycle 0 is a power-up reset. Before each row with ``reset`` set: one reset cycle (no
    drain). Before every row, with probability ``gap_prob`` each, a geometric number of
    extra idle cycles (bubbles that are not in the stimulus), except in the ``latency`` rows
    that end at a reset row: there the cycles between a closing beat and the reset must be
    the stimulus rows, as golden counts them. At the end, ``latency + 1`` idle cycles so
    the last result comes out.
    """
    latency = check_latency(latency)
    if not 0 <= gap_prob < 1:
        raise ValueError(f"gap_prob must be in [0, 1); got {gap_prob}")
    n = len(stream)
    block = stream.block_size
    rng = np.random.default_rng(seed)
    drain = latency + DRAIN_MARGIN
    reset = (np.zeros(n, dtype=bool) if stream.reset is None
             else np.asarray(stream.reset, dtype=bool))
    gaps = (rng.geometric(1 - gap_prob, size=n) - 1 if gap_prob > 0
            else np.zeros(n, dtype=np.int64))
    # No gap before rows r - latency + 1 .. r of a reset row r: a close within latency rows
    # of the reset is discarded by golden's count, and a gap would let its result out.
    near = (np.flatnonzero(reset)[:, None] - np.arange(latency)[None, :]).ravel()
    gaps[near[near >= 0]] = 0
    inserted = reset.astype(np.int64) + gaps         # cycles placed before each row
    cycle_of_row = 1 + np.cumsum(inserted + 1) - 1   # cycle 0 is the power-up reset
    total = (int(cycle_of_row[-1]) + 1 if n else 1) + drain

    rst_n = np.ones(total, dtype=bool)
    rst_n[0] = False
    # The reset pulse is the cycle right before its row (which has no gap).
    rst_n[cycle_of_row[reset] - 1] = False
    en = np.zeros(total, dtype=bool)
    first = rng.random(total) < 0.5
    a = rng.integers(0, ELEMENT_CODES, size=(total, block), dtype=np.uint8)
    w = rng.integers(0, ELEMENT_CODES, size=(total, block), dtype=np.uint8)
    a_sf = rng.integers(0, SCALE_CODES, size=total, dtype=np.uint8)
    w_sf = rng.integers(0, SCALE_CODES, size=total, dtype=np.uint8)
    row = np.full(total, -1, dtype=np.int64)

    en[cycle_of_row] = np.asarray(stream.en, dtype=bool)
    first[cycle_of_row] = np.asarray(stream.first, dtype=bool)
    a[cycle_of_row] = np.asarray(stream.a, dtype=np.uint8)
    w[cycle_of_row] = np.asarray(stream.w, dtype=np.uint8)
    a_sf[cycle_of_row] = np.asarray(stream.a_sf, dtype=np.uint8)
    w_sf[cycle_of_row] = np.asarray(stream.w_sf, dtype=np.uint8)
    row[cycle_of_row] = np.arange(n)
    return DrivePlan(stream.unit, latency, rst_n, en, first, a, w, a_sf, w_sf, row,
                     cycle_of_row.astype(np.int64))
