"""The MAC arithmetic of the "reference" architecture, bit-exact and vectorized over segments.

Per enabled beat (docs/spec.md, section "MAC arithmetic"):

1. ``p_i = a_i * w_i``, exact in binary16 (a zero product carries sign(a) xor sign(w));
2. ``sf = dec(a_sf) * dec(w_sf)``, exact in binary32 (+0 if either scale is 0); IF4 multiplies
   by f32(6/7) when exactly one block is INT4, by f32(36/49) when both are, rounding once;
3. ``m_i = rne32(p_i * sf)``;
4. a beat with ``first=1`` loads ``m_i`` into lane register i, other beats do
   ``acc_i = rne32(acc_i + m_i)``;
5. the next ``first=1`` beat closes the segment: its result is the pairwise tree sum of the
   lane registers, every add rounded to binary32;
6. ``en=0`` beats change nothing.

All rounding is done by numpy's binary32 arithmetic (IEEE round-to-nearest-even); nothing
here goes through float64.

Reduction options (``run(..., reduction=...)``), which change which results appear, never their
values:

* ``"pipelined"`` (default): one registered tree level per cycle, a new segment may close every
  cycle, and every segment's result appears.
* ``"shared"``: the hardware has one tree level's worth of adders (B/2) and reuses them for
  every level on consecutive cycles, so the tree is busy for ``L - 1`` cycles after it accepts
  a segment (``L = ceil(log2 B)`` levels). A stream's rows are clock cycles (bubbles
  included), so a closing beat at row ``r`` collides with an accepted one at row ``r0`` when
  ``1 <= r - r0 <= L - 1``. The newer segment is then refused: its result is lost, its closing
  beat still opens the next segment, and the hardware raises its sticky ``overrun`` output.
  ``Results.overrun_beat`` lists the closing beats of the refused segments. A reset between
  two closing beats frees the tree.

Reset (``Stream.reset``) clears every register of the hardware, so besides the open segment
it also discards a result still in flight: a segment closed at row ``c`` loses its result if
the next reset is marked at row ``r`` with ``r - c <= latency(B)`` (see :class:`Stream` for
the timing). ``Results.discarded_beat`` lists those closing beats; the hardware signals
nothing for them, as the driver asked for the reset.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# DEFAULT_BLOCK_SIZE is defined in the formats layer; it stays importable from here too.
from .formats import (
    DEFAULT_BLOCK_SIZE, E2M1_VALUES, ELEMENT_CODES, ELEMENT_WIDTH, INT4_INVALID_CODE,
    INT4_VALUES, SCALE_CODES, UNIT_SPECS, check_block_size, check_unit, decode_scale,
    float32_bits, scale_is_int, unit_spec,
)

__all__ = [
    "Stream", "Results", "StimulusError", "lane_product_table", "scale_product_table",
    "lane_products", "scale_products", "scaled_products", "tree_reduce", "run", "validate",
    "REDUCTIONS", "check_reduction", "tree_levels", "shared_tree_refuses", "latency",
    "TREE_START_EDGE", "closed_segments", "in_flight_fate", "rows_to_next_reset",
    "emitting_segments",
]

#: The reduction trees the MAC tops offer (see the module docstring).
REDUCTIONS = ("pipelined", "shared")


def check_reduction(reduction: str) -> str:
    """Return ``reduction`` if it names a reduction option, else raise a one-line ``ValueError``."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: expected one of "
                         f"{', '.join(REDUCTIONS)}")
    return reduction


def tree_levels(block_size: int) -> int:
    """Adder levels of the pairwise tree over ``block_size`` lanes: ceil(log2 B), 0 for B = 1."""
    return (check_block_size(block_size) - 1).bit_length()


def shared_tree_refuses(rows_since_accepted, levels: int):
    """The shared tree's one refusal rule: a segment closing ``rows_since_accepted`` rows
    (clock cycles) after the last accepted close, with no reset between, is refused when that
    gap is below ``levels`` (the tree is still busy). Works on scalars and arrays."""
    return np.asarray(rows_since_accepted) < levels


#: Edges from the one that samples a closing beat to the one at which that beat starts the
#: reduction tree: the input, lane-product and scaled-product registers come first. The shared
#: tree refuses a close (and raises ``overrun``) at this edge.
TREE_START_EDGE = 3


def latency(block_size: int) -> int:
    """Edges from a closing beat's sampling edge to the edge that raises ``done``.

    The tree's first level loads at :data:`TREE_START_EDGE` (from the lane registers' values
    before that edge), then one edge per further level; one lane still has a result register:
    ``2 + max(1, ceil(log2 B))``, 6 for B = 16. The RTL derives the same number from its own
    structure (``MacUnit.latency``); the tests check that they agree.
    """
    return TREE_START_EDGE - 1 + max(1, tree_levels(block_size))


class StimulusError(ValueError):
    """A stimulus that the strict validation rejects; the message names beat, lane and operand."""


def _element_values(int_block: bool) -> np.ndarray:
    return INT4_VALUES if int_block else E2M1_VALUES


def _build_lane_product_table(unit: str) -> np.ndarray:
    """p = a * w for every (a_int, w_int, a code, w code): shape (2, 2, 16, 16), binary16."""
    table = np.empty((2, 2, ELEMENT_CODES, ELEMENT_CODES), dtype=np.float16)
    use_int = unit_spec(unit).reads_int_flag
    for a_int in (0, 1):
        for w_int in (0, 1):
            av = _element_values(use_int and a_int)
            wv = _element_values(use_int and w_int)
            exact = np.multiply.outer(av, wv)               # binary32, exact: |p| <= 64
            table[a_int, w_int] = exact.astype(np.float16)
            assert np.array_equal(table[a_int, w_int].astype(np.float32), exact)
    table.setflags(write=False)
    return table


def _build_scale_product_table(unit: str) -> np.ndarray:
    """sf for every (a_sf, w_sf) byte pair: shape (256, 256), binary32."""
    codes = np.arange(SCALE_CODES, dtype=np.uint8)
    dec = decode_scale(codes)
    sf = np.multiply.outer(dec, dec)                        # exact: 4-bit x 4-bit significands
    spec = unit_spec(unit)
    if spec.reads_int_flag:
        one_int, both_int = spec.expansion
        is_int = scale_is_int(codes)
        n_int = is_int[:, None].astype(np.int8) + is_int[None, :]
        sf = np.where(n_int == 1, sf * one_int, sf)
        sf = np.where(n_int == 2, sf * both_int, sf)
    sf = sf.astype(np.float32)
    sf[sf == 0] = np.float32(0.0)                           # the zero rule: always +0
    sf.setflags(write=False)
    return sf


_LANE_PRODUCTS = {unit: _build_lane_product_table(unit) for unit in UNIT_SPECS}
_LANE_PRODUCTS_F32 = {unit: t.astype(np.float32).reshape(-1) for unit, t in _LANE_PRODUCTS.items()}
_SCALE_PRODUCTS = {unit: _build_scale_product_table(unit) for unit in UNIT_SPECS}
_SCALE_PRODUCTS_FLAT = {unit: t.reshape(-1) for unit, t in _SCALE_PRODUCTS.items()}


def lane_product_table(unit: str) -> np.ndarray:
    """Read-only binary16 table ``[a_int, w_int, a_code, w_code]`` of exact lane products."""
    return _LANE_PRODUCTS[check_unit(unit)]


def scale_product_table(unit: str) -> np.ndarray:
    """Read-only binary32 table ``[a_sf, w_sf]`` of scale products (IF4 factors included)."""
    return _SCALE_PRODUCTS[check_unit(unit)]


def _lane_index(a, w, a_sf, w_sf) -> np.ndarray:
    """Flat index ``[a_int, w_int, a, w]`` into a lane-product table.

    Built in uint16 (10 bits needed): an intp index costs 4x the memory traffic, which
    dominated the model's run time.
    """
    flags = ((scale_is_int(a_sf).astype(np.uint16) << (2 * ELEMENT_WIDTH + 1))
             | (scale_is_int(w_sf).astype(np.uint16) << (2 * ELEMENT_WIDTH)))
    index = (np.asarray(a, dtype=np.uint16) << ELEMENT_WIDTH) | np.asarray(w, dtype=np.uint16)
    index |= flags[..., None]
    return index


def lane_products(unit: str, a, w, a_sf, w_sf) -> np.ndarray:
    """Exact lane products ``p`` (binary16), shape of ``a``; scales broadcast over the last axis."""
    index = _lane_index(a, w, a_sf, w_sf)
    return _LANE_PRODUCTS[check_unit(unit)].reshape(-1)[index]


def scale_products(unit: str, a_sf, w_sf) -> np.ndarray:
    """Scale products ``sf`` (binary32)."""
    index = np.asarray(a_sf, dtype=np.intp) * SCALE_CODES + np.asarray(w_sf, dtype=np.intp)
    return _SCALE_PRODUCTS_FLAT[check_unit(unit)][index]


def scaled_products(unit: str, a, w, a_sf, w_sf) -> np.ndarray:
    """``m_i = rne32(p_i * sf)`` per lane (binary32), shape of ``a``."""
    check_unit(unit)
    p = _LANE_PRODUCTS_F32[unit][_lane_index(a, w, a_sf, w_sf)]
    return p * scale_products(unit, a_sf, w_sf)[..., None]


def tree_reduce(lanes: np.ndarray) -> np.ndarray:
    """Pairwise tree sum over the last axis: add (0,1), (2,3), ...; an odd one passes up."""
    level = np.asarray(lanes, dtype=np.float32)
    while level.shape[-1] > 1:
        half = level.shape[-1] // 2
        summed = level[..., 0:2 * half:2] + level[..., 1:2 * half:2]
        if level.shape[-1] % 2:
            summed = np.concatenate([summed, level[..., -1:]], axis=-1)
        level = summed
    return level[..., 0]


@dataclass(frozen=True)
class Stream:
    """A beat stream as the MAC's ports see it: one row per clock cycle.

    ``reset`` (optional) marks rows before which ``rst_n`` is pulsed: it is held low for one
    clock cycle between rows ``r - 1`` and ``r`` (that cycle samples no beat and is not a
    row). Reset clears every register: the open segment is discarded without a result, the
    lane registers return to +0, and a result still in the pipeline is discarded too. With
    the closing beat of a segment at row ``c`` sampled at edge ``e``, rows ``c+1 .. r-1`` take
    edges ``e+1 .. e+r-c-1``, ``rst_n`` falls half a cycle later and the reset cycle's edge is
    ``e + (r - c)``; the result would load at edge ``e + latency(B)``. So it is discarded when
    ``r - c <= latency(B)`` and delivered when ``r - c > latency(B)`` (at ``r - c ==
    latency(B) + 1``, ``done`` rises at row ``r - 1``'s edge and the reset cuts the pulse to
    half a cycle: sample the outputs before applying the reset, as every testbench here does).
    """

    unit: str
    en: np.ndarray       # (N,) bool
    first: np.ndarray    # (N,) bool
    a: np.ndarray        # (N, B) uint8 element codes
    w: np.ndarray        # (N, B) uint8
    a_sf: np.ndarray     # (N,) uint8 scale bytes
    w_sf: np.ndarray     # (N,) uint8
    reset: np.ndarray | None = None   # (N,) bool

    def __post_init__(self):
        check_unit(self.unit)
        n = len(self.en)
        a = np.asarray(self.a)
        if a.ndim != 2 or np.asarray(self.w).shape != a.shape or a.shape[0] != n:
            raise ValueError(f"a and w must both have shape (beats, block_size); got "
                             f"{a.shape} and {np.asarray(self.w).shape} for {n} beats")
        for name in ("first", "a_sf", "w_sf") + (("reset",) if self.reset is not None else ()):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries, expected {n}")

    @property
    def block_size(self) -> int:
        return np.asarray(self.a).shape[1]

    def __len__(self) -> int:
        return len(self.en)


def _no_beats() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Results:
    """Completed segments, in order: result bits and where each segment sat in the stream.

    ``overrun_beat`` is only ever non-empty for ``reduction="shared"``: the closing beats of
    segments whose result the busy shared tree refused (they are not in ``bits``).
    ``discarded_beat``: the closing beats of segments whose result a reset discarded while it
    was in flight (not in ``bits`` either; see :class:`Stream`).
    """

    bits: np.ndarray         # (S,) uint32 binary32 results
    start_beat: np.ndarray   # (S,) index of the segment's first beat in the stream
    close_beat: np.ndarray   # (S,) index of the first=1 beat that closed it
    overrun_beat: np.ndarray = field(default_factory=_no_beats)   # (K,) refused closes
    discarded_beat: np.ndarray = field(default_factory=_no_beats)  # (D,) closes lost to reset

    @property
    def overrun(self) -> bool:
        """True if any result was lost (the shared tree's sticky ``overrun`` output)."""
        return len(self.overrun_beat) > 0

    def hex(self) -> list[str]:
        return [f"0x{int(b):08x}" for b in self.bits]

    def __len__(self) -> int:
        return len(self.bits)


def _segment_bounds(stream: Stream):
    """Enabled-beat indices and, over them, segment starts, open-by-reset flags, emit flags."""
    enabled = np.flatnonzero(np.asarray(stream.en, dtype=bool))
    n = len(enabled)
    first = np.asarray(stream.first, dtype=bool)[enabled]
    reset_e = np.zeros(n, dtype=bool)
    if stream.reset is not None:
        # A reset acts before the next enabled beat at or after it.
        resets = np.flatnonzero(np.asarray(stream.reset, dtype=bool))
        landing = np.searchsorted(enabled, resets)
        reset_e[landing[landing < n]] = True
    boundary = first | reset_e
    if n:
        boundary[0] = True
    starts = np.flatnonzero(boundary)
    # A segment is closed with a result only by a first=1 beat that is not preceded by reset.
    closer = starts[1:]
    emits = first[closer] & ~reset_e[closer]
    return enabled, first, starts, emits


def _accumulate(m: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Sequential binary32 sum of ``m[start:stop]`` per segment, vectorized over segments."""
    lengths = stops - starts
    order = np.argsort(-lengths, kind="stable")       # longest first: active set is a prefix
    s_starts = starts[order]
    s_lengths = lengths[order]
    acc = m[s_starts].copy()
    for k in range(1, int(s_lengths[0]) if len(s_lengths) else 0):
        n_k = np.searchsorted(-s_lengths, -k, side="left")     # segments longer than k
        acc[:n_k] += m[s_starts[:n_k] + k]
    out = np.empty_like(acc)
    out[order] = acc
    return out


def _shared_tree_accepts(close_rows: np.ndarray, reset_rows: np.ndarray,
                         levels: int) -> np.ndarray:
    """Which closing beats (rows, ascending) the shared tree accepts; see the module docstring.

    A close at least ``levels`` rows after the previous close, or with a reset between them,
    always finds the tree idle; only the others need the sequential check, and each walks
    back over fewer than ``levels`` refused closes to the last accepted one.
    """
    accept = np.ones(len(close_rows), dtype=bool)
    if levels <= 1 or len(close_rows) < 2:
        return accept
    resets_up_to = np.searchsorted(reset_rows, close_rows, side="right")
    crowded = shared_tree_refuses(np.diff(close_rows), levels) & (np.diff(resets_up_to) == 0)
    for i in np.flatnonzero(crowded) + 1:
        j = i - 1
        while not accept[j]:
            j -= 1
        accept[i] = not shared_tree_refuses(close_rows[i] - close_rows[j], levels)
    return accept


def run(stream: Stream, *, strict: bool = False, reduction: str = "pipelined",
        arch: str = "reference", **options) -> Results:
    """Results of every completed segment (the trailing open segment produces none).

    With ``strict=True``, :func:`validate` runs first and rejects codes outside the formats.
    ``reduction`` is ``"pipelined"`` (every result) or ``"shared"`` (results of segments that
    close while the shared tree is busy are lost and listed in ``Results.overrun_beat``).
    ``arch`` picks the architecture: ``"reference"`` (this module) or a fused one, computed by
    :func:`.fused.run_arch` with the ``options`` (``acc_width``, ``converter``).
    """
    if arch != "reference" or options:
        from .fused import run_arch     # .fused builds on this module

        return run_arch(stream, arch=arch, strict=strict, reduction=reduction, **options)
    check_reduction(reduction)
    if strict:
        validate(stream)
    results = closed_segments(stream)
    levels = tree_levels(stream.block_size) if reduction == "shared" else None
    kept, refused, discarded = in_flight_fate(stream, results.close_beat,
                                              latency(stream.block_size), levels,
                                              TREE_START_EDGE)
    if kept.all():
        return results
    close = results.close_beat
    return Results(results.bits[kept], results.start_beat[kept], close[kept], close[refused],
                   close[discarded])


def rows_to_next_reset(stream: Stream, rows: np.ndarray) -> np.ndarray:
    """Per row, the rows from it to the next reset after it (a reset at row r acts before row
    r, so one at the row itself comes earlier and does not count); a huge number if none."""
    reset_rows = _reset_rows(stream)
    padded = np.append(reset_rows, np.iinfo(np.int64).max // 2)   # "no reset after it"
    return padded[np.searchsorted(reset_rows, rows, side="right")] - rows


def _reset_rows(stream: Stream) -> np.ndarray:
    return (np.flatnonzero(np.asarray(stream.reset, dtype=bool))
            if stream.reset is not None else _no_beats())


def in_flight_fate(stream: Stream, close: np.ndarray, result_latency: int,
                   busy_levels: int | None, start_edge: int):
    """What the hardware's timing does with the closed segments' results, as three masks over
    ``close`` (closing rows, ascending): ``(kept, refused, discarded)``.

    One rule for every architecture: a reset at most ``result_latency`` rows after a close
    discards its result in flight (see :class:`Stream`). With a shared resource that is busy
    for ``busy_levels - 1`` cycles after it accepts a close (the reference's shared tree, the
    fused-exact serial converter; None: no such resource), a crowded close is refused, which
    raises the sticky ``overrun`` at ``start_edge`` after it, unless a reset comes first: then
    it is simply discarded.
    """
    to_reset = rows_to_next_reset(stream, close)
    in_flight = to_reset <= result_latency
    if busy_levels is not None:
        accept = _shared_tree_accepts(close, _reset_rows(stream), busy_levels)
    else:
        accept = np.ones(len(close), dtype=bool)
    refused = ~accept & (to_reset > start_edge)
    kept = accept & ~in_flight
    return kept, refused, ~kept & ~refused


def emitting_segments(stream: Stream):
    """The segments that close with a result, and the beats they hold, compacted.

    Returns ``(enabled, first, starts, seg_starts, seg_stops, rows, c_starts)``: the enabled
    rows, their first flags and segment starts (:func:`_segment_bounds`, over enabled beats);
    the emitting segments' start and stop indices (over enabled beats); the stream rows of
    every beat in them (in order) and each emitting segment's start in that compacted list.
    Segments that are empty of results (the trailing open one, those cut by a reset) are
    skipped: only what produces a result needs computing.
    """
    enabled, first, starts, emits = _segment_bounds(stream)
    seg = np.flatnonzero(emits)
    seg_starts, seg_stops = starts[seg], starts[seg + 1]
    # Mark each beat that belongs to an emitting segment (cumsum of +1 at start, -1 at stop).
    mark = np.zeros(len(enabled) + 1, dtype=np.int64)
    np.add.at(mark, seg_starts, 1)
    np.add.at(mark, seg_stops, -1)
    used = np.cumsum(mark[:-1]) > 0
    position = np.cumsum(used) - 1
    return enabled, first, starts, seg_starts, seg_stops, enabled[used], position[seg_starts]


def closed_segments(stream: Stream) -> Results:
    """The arithmetic result of every closed segment, whatever the hardware's timing does
    with it: :func:`run` without the shared tree's refusals and without the results that a
    reset discards in flight. For cross-checks of the arithmetic alone (the GPU reference)."""
    unit = stream.unit
    enabled, first, _, seg_starts, seg_stops, rows, c_starts = emitting_segments(stream)
    if not len(seg_starts):
        return Results(np.zeros(0, dtype=np.uint32), _no_beats(), _no_beats())
    m = scaled_products(unit, np.asarray(stream.a)[rows], np.asarray(stream.w)[rows],
                        np.asarray(stream.a_sf)[rows], np.asarray(stream.w_sf)[rows])
    c_stops = c_starts + (seg_stops - seg_starts)
    # A segment opened without first=1 (after reset or at power-up) adds onto the +0 registers.
    implicit = ~first[seg_starts]
    if implicit.any():
        m[c_starts[implicit]] = m[c_starts[implicit]] + np.float32(0.0)
    lanes = _accumulate(m, c_starts, c_stops)
    bits = float32_bits(tree_reduce(lanes))
    return Results(bits.copy(), enabled[seg_starts], enabled[seg_stops])


def validate(stream: Stream) -> None:
    """Strict check: INT4 blocks (IF4, scale bit 7 set) must not hold code 0x8 (it is -8).

    Raises :class:`StimulusError` naming the first offending beat, lane and operand.
    In FP4 blocks 0x8 is -0 and always valid; NVFP4 never reads the INT flag.
    """
    for name, codes in (("a", stream.a), ("w", stream.w)):
        codes = np.asarray(codes)
        if codes.size and (codes.min() < 0 or codes.max() >= ELEMENT_CODES):
            beat, lane = np.argwhere((codes < 0) | (codes >= ELEMENT_CODES))[0]
            raise StimulusError(f"beat {beat}, lane {lane}, operand {name}: code "
                                f"{int(codes[beat, lane])} is outside 0..15")
    if not unit_spec(stream.unit).reads_int_flag:
        return
    bad_a = scale_is_int(stream.a_sf)[:, None] & (np.asarray(stream.a) == INT4_INVALID_CODE)
    bad_w = scale_is_int(stream.w_sf)[:, None] & (np.asarray(stream.w) == INT4_INVALID_CODE)
    enabled = np.asarray(stream.en, dtype=bool)[:, None]
    for name, bad in (("a", bad_a & enabled), ("w", bad_w & enabled)):
        if bad.any():
            beat, lane = np.argwhere(bad)[0]
            raise StimulusError(f"beat {beat}, lane {lane}, operand {name}: code 0x8 in an INT4 "
                                f"block is -8, outside INT4's -7..7")
