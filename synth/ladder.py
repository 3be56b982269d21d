"""Area-delay ladders: each design mapped at a series of clock targets, compared at equal
achieved clock period, with the flow's own noise measured.

A **ladder** runs one design through the ASIC flow at several clock targets, each given to
ABC as its delay target (``abc -D``) and to OpenSTA as the clock. Each run gives one point:
the *achieved* period (OpenSTA's worst register-to-register path, clock-to-Q + logic +
setup) and the area. Tight targets buy speed with area (bigger cells, more buffering,
delay-oriented structures) until ABC cannot go faster.

* :func:`pareto_front` -- the points no other point beats in both period and area;
* :func:`area_at` -- area needed to meet a given period: on the front, linearly
  interpolated between neighbouring front points; beyond its slowest point, that point's
  area; None below its fastest point;
* :func:`iso_period_ratios` -- IF4 / NVFP4 area at equal period, from the shortest period
  both reach to the slowest front point of either;
* :func:`fastest_closed` -- the shortest period a design met its own target at;
* :func:`noise` / :func:`compare` -- the flow's noise: the same point repeated with ABC's
  inputs, outputs and flip-flops permuted by recorded seeds (:data:`~.asic.ABC_PERMUTE`).
  Every seed gives its own front, so the iso-period ratio becomes a set of ratios, one per
  (IF4 seed, NVFP4 seed) pair; a difference whose range of ratios contains 1 is reported
  as *not distinguishable*.
* :func:`plot_ladders` -- area vs achieved period per design (matplotlib).

Records are those of :func:`.store.execute` (or :func:`.flow.synthesize`) of ASIC runs.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from pathlib import Path

__all__ = ["ladder_specs", "point", "pareto_front", "area_at", "fastest_closed",
           "iso_period_ratios", "noise", "compare", "plot_ladders", "DEFAULT_LADDER_PS"]

#: Clock targets (ps) for the default ladder: from relaxed (no pressure on ABC for a
#: small MAC in 45 nm) to beyond what the flow can close.
DEFAULT_LADDER_PS = (6000.0, 4000.0, 3000.0, 2500.0, 2000.0, 1500.0)


def ladder_specs(*, units=("nvfp4", "if4"), block_sizes=(2,), reductions=("pipelined",),
                 clocks_ps=DEFAULT_LADDER_PS, seeds=(None,), library: str | None = None,
                 liberty: str | None = None, flat: bool = False):
    """:class:`~.store.RunSpec` of every ladder point (ABC delay target = clock)."""
    from .store import RunSpec

    if len(clocks_ps) < 1:
        raise ValueError("a ladder needs at least one clock target")
    for c in clocks_ps:
        if not (isinstance(c, (int, float)) and c > 0 and math.isfinite(c)):
            raise ValueError(f"clock targets must be positive, finite ps; got {c!r}")
    return [RunSpec(target="asic", unit=u, block_size=b, reduction=r, library=library,
                    liberty=liberty, clock_ps=float(c), abc_delay_target=True, flat=flat,
                    abc_seed=s)
            for u in units for b in block_sizes for r in reductions for s in seeds
            for c in clocks_ps]


def point(rec: dict) -> dict:
    """One ladder point of an ASIC record."""
    d = rec["design"]
    target = rec["timing"]["clock_period_ps"]
    achieved = rec["timing"]["critical_path"]["min_period_ps"]
    return {"design": d.get("top"), "unit": d.get("unit"), "block_size": d.get("block_size"),
            "reduction": d.get("reduction"), "flat": bool(rec.get("flat")),
            "seed": rec.get("abc_seed"), "target_ps": target, "achieved_ps": achieved,
            "area_um2": rec["area"]["total_um2"], "closed": achieved <= target + 1e-6}


def pareto_front(points) -> list[dict]:
    """Points not dominated in (achieved period, area), by increasing period (so by
    decreasing area)."""
    pts = sorted(points, key=lambda p: (p["achieved_ps"], p["area_um2"]))
    front: list[dict] = []
    for p in pts:
        if not front or p["area_um2"] < front[-1]["area_um2"]:
            if front and p["achieved_ps"] == front[-1]["achieved_ps"]:
                continue
            front.append(p)
    return front


def area_at(front, period_ps: float) -> float | None:
    """Area needed to meet ``period_ps`` on ``front``: linear between the two front points
    around it; beyond the front's slowest point, that point's area (a design that meets a
    shorter period meets this one); None below its fastest point (out of reach)."""
    if not front:
        return None
    xs = [p["achieved_ps"] for p in front]
    if period_ps < xs[0] - 1e-9:
        return None
    if period_ps >= xs[-1]:
        return front[-1]["area_um2"]
    for a, b in zip(front, front[1:]):
        if a["achieved_ps"] <= period_ps <= b["achieved_ps"]:
            t = (period_ps - a["achieved_ps"]) / (b["achieved_ps"] - a["achieved_ps"])
            return a["area_um2"] + t * (b["area_um2"] - a["area_um2"])
    return front[-1]["area_um2"]


def fastest_closed(points) -> float | None:
    """The shortest achieved period among points that met their target (None if none)."""
    closed = [p["achieved_ps"] for p in points if p["closed"]]
    return min(closed) if closed else None


def iso_period_ratios(front_num, front_den, periods=None, n: int = 5) -> list[tuple[float, float]]:
    """(period, area_num / area_den) at ``periods`` (default: ``n`` evenly spaced from the
    shortest period both designs reach to the longest point of either front)."""
    if not front_num or not front_den:
        return []
    lo = max(front_num[0]["achieved_ps"], front_den[0]["achieved_ps"])
    hi = max(front_num[-1]["achieved_ps"], front_den[-1]["achieved_ps"])
    if periods is None:
        if lo > hi:
            return []
        periods = [lo] if hi == lo else [lo + (hi - lo) * i / (n - 1) for i in range(n)]
    out = []
    for p in periods:
        a, b = area_at(front_num, p), area_at(front_den, p)
        if a is not None and b is not None and b > 0:
            out.append((p, a / b))
    return out


def _group(points):
    groups = defaultdict(list)
    for p in points:
        groups[(p["unit"] or p.get("design"), p["block_size"], p["reduction"],
                p["flat"])].append(p)
    return groups


def noise(points) -> dict:
    """Per design and clock target repeated under several seeds: the relative spread of
    area and achieved period, (max - min) / min. Returns the worst over targets per design
    and the per-target values."""
    out = {}
    for key, pts in _group(points).items():
        by_target = defaultdict(list)
        for p in pts:
            by_target[p["target_ps"]].append(p)
        rows = []
        for target, ps in sorted(by_target.items()):
            if len({p["seed"] for p in ps}) < 2:
                continue
            areas = [p["area_um2"] for p in ps]
            periods = [p["achieved_ps"] for p in ps]
            rows.append({"target_ps": target, "runs": len(ps),
                         "area_spread": max(areas) / min(areas) - 1,
                         "period_spread": max(periods) / min(periods) - 1})
        if rows:
            out[key] = {"targets": rows,
                        "area_spread": max(r["area_spread"] for r in rows),
                        "period_spread": max(r["period_spread"] for r in rows)}
    return out


def compare(points, *, num: str = "if4", den: str = "nvfp4", n: int = 5) -> list[dict]:
    """IF4 / NVFP4 at equal achieved period, for every (block size, reduction, flat) both
    units have.

    The ratio is taken on the fronts of all runs together. Its spread: where every ladder
    point was repeated under the same seeds, the range of the ratio over every pair of
    per-seed fronts (``spread_from`` "seed fronts"); otherwise, where some points were
    repeated, the ratio widened by each unit's worst repeat spread of area
    (:func:`noise`; "repeat spread"). ``distinguishable`` is False when the range contains
    1, None when no noise was measured.
    """
    groups = _group(points)
    noise_by = noise(points)
    out = []
    for (unit, b, r, flat), pts in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if unit != num or (den, b, r, flat) not in groups:
            continue
        pts_den = groups[(den, b, r, flat)]
        f_num, f_den = pareto_front(pts), pareto_front(pts_den)
        ratios = iso_period_ratios(f_num, f_den, n=n)
        seeds_num = sorted({p["seed"] for p in pts}, key=lambda s: -1 if s is None else s)
        seeds_den = sorted({p["seed"] for p in pts_den}, key=lambda s: -1 if s is None else s)
        sig_num = noise_by.get((num, b, r, flat), {}).get("area_spread")
        sig_den = noise_by.get((den, b, r, flat), {}).get("area_spread")
        rows = []
        for period, ratio in ratios:
            pair_ratios = []
            for sn, sd in itertools.product(seeds_num, seeds_den):
                fn = pareto_front([p for p in pts if p["seed"] == sn])
                fd = pareto_front([p for p in pts_den if p["seed"] == sd])
                got = iso_period_ratios(fn, fd, periods=[period])
                if got:
                    pair_ratios.append(got[0][1])
            if len(pair_ratios) >= 2:
                lo, hi, src = min(pair_ratios), max(pair_ratios), "seed fronts"
            elif sig_num is not None or sig_den is not None:
                sn_, sd_ = sig_num or 0.0, sig_den or 0.0
                lo, hi, src = ratio / ((1 + sn_) * (1 + sd_)), ratio * (1 + sn_) * (1 + sd_), \
                    "repeat spread"
            else:
                lo = hi = src = None
            rows.append({"period_ps": round(period, 1), "area_ratio": ratio,
                         "ratio_min": lo, "ratio_max": hi, "pairs": len(pair_ratios),
                         "spread_from": src,
                         "distinguishable": None if lo is None else not (lo <= 1.0 <= hi)})
        out.append({"block_size": b, "reduction": r, "flat": flat, "num": num, "den": den,
                    "iso_period": rows,
                    "fastest_closed_ps": {num: fastest_closed(pts), den: fastest_closed(pts_den)},
                    "fastest_ps": {num: min(p["achieved_ps"] for p in pts),
                                   den: min(p["achieved_ps"] for p in pts_den)},
                    "noise": {num: noise_by.get((num, b, r, flat)),
                              den: noise_by.get((den, b, r, flat))},
                    "front": {num: f_num, den: f_den}})
    return out


def draw_ladder(ax, pts, color, label: str, *, style: str = "-", size: int = 18) -> None:
    """One design's ladder on matplotlib axes ``ax``: closed points filled, missed ones
    hollow, the Pareto front as a line labelled ``label``."""
    closed = [p for p in pts if p["closed"]]
    missed = [p for p in pts if not p["closed"]]
    ax.scatter([p["achieved_ps"] for p in closed], [p["area_um2"] for p in closed],
               color=color, s=size, zorder=3)
    ax.scatter([p["achieved_ps"] for p in missed], [p["area_um2"] for p in missed],
               facecolors="none", edgecolors=color, s=size, zorder=3)
    front = pareto_front(pts)
    ax.plot([p["achieved_ps"] for p in front], [p["area_um2"] for p in front],
            style, color=color, label=label)


def plot_ladders(points, path: str | Path, *, title: str | None = None) -> Path:
    """Area vs achieved period, one colour per design, its Pareto front as a line; points
    that missed their target are hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = _group(points)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    cmap = plt.get_cmap("tab10")
    for i, (key, pts) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
        unit, b, r, flat = key
        label = (f"{unit.upper()} B={b} {r}" if b is not None else str(unit)) + (
            " flat" if flat else "")
        color = cmap(i % 10)
        draw_ladder(ax, pts, color, label, size=18)
    ax.set_xlabel("achieved clock period, ps (OpenSTA, worst register-to-register path)")
    ax.set_ylabel("area, um^2")
    ax.set_title(title or "Area vs achieved period (ABC delay target = clock)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
