"""Area-delay ladders: the Pareto front, interpolation, iso-period ratios and the noise
verdicts on hand-made points with known answers; ABC's delay target and the permutation
seed on the real flow (the 8 x 8 calibration multiplier, seconds per run).
"""

from __future__ import annotations

import pytest

from if4mac.synth.flow import synthesize
from if4mac.synth.ladder import (area_at, compare, fastest_closed, iso_period_ratios, noise,
                                 pareto_front, plot_ladders, point)


def P(unit, target, achieved, area, seed=None, b=2):
    return {"design": f"{unit}_mac", "unit": unit, "block_size": b, "reduction": "pipelined",
            "flat": False, "seed": seed, "target_ps": target, "achieved_ps": achieved,
            "area_um2": area, "closed": achieved <= target}


def test_pareto_front_drops_dominated_points():
    pts = [P("if4", 8000, 5000, 100), P("if4", 6000, 4000, 120), P("if4", 5000, 4500, 130),
           P("if4", 4000, 3000, 150), P("if4", 3000, 3000, 160), P("if4", 2000, 3500, 140)]
    front = pareto_front(pts)
    assert [(p["achieved_ps"], p["area_um2"]) for p in front] == [
        (3000, 150), (3500, 140), (4000, 120), (5000, 100)]


def test_area_at_interpolates_on_the_front():
    front = pareto_front([P("x", 1, 3000, 150), P("x", 1, 4000, 120), P("x", 1, 5000, 100)])
    assert area_at(front, 3000) == 150
    assert area_at(front, 3500) == pytest.approx(135)
    assert area_at(front, 4500) == pytest.approx(110)
    # Out of reach below the fastest point; beyond the slowest, its area still meets it.
    assert area_at(front, 2999) is None and area_at(front, 6000) == 100
    assert area_at([], 3000) is None


def test_iso_period_ratio_and_fastest_closed():
    nv = [P("nvfp4", 6000, 4000, 100), P("nvfp4", 3000, 3000, 130)]
    if4 = [P("if4", 6000, 4400, 104), P("if4", 3000, 3200, 150), P("if4", 2000, 3100, 170)]
    # Both reach 3100 ps; the slowest front point is IF4's 4400 ps.
    got = iso_period_ratios(pareto_front(if4), pareto_front(nv), n=3)
    assert [p for p, _ in got] == [3100, 3750, 4400]
    # NVFP4 at 3100: 130 - 30 * 0.1 = 127; IF4 at 3100: 170. At 3750: NVFP4 107.5, IF4 on
    # the 3200..4400 segment: 150 - 46 * 550 / 1200. At 4400: NVFP4 meets it with 100.
    assert got[0][1] == pytest.approx(170 / 127)
    assert got[1][1] == pytest.approx((150 - 46 * 550 / 1200) / 107.5)
    assert got[2][1] == pytest.approx(104 / 100)
    assert fastest_closed(nv) == 3000
    assert fastest_closed(if4) == 4400   # 3200 and 3100 missed their targets
    assert fastest_closed([P("x", 1000, 2000, 1)]) is None
    assert iso_period_ratios(pareto_front(if4), [], n=2) == []


def _ladder(unit, areas_by_seed, periods=(3000, 4000, 5000)):
    return [P(unit, t + 500, t, a, seed=s) for s, areas in areas_by_seed.items()
            for t, a in zip(periods, areas)]


def test_noise_and_not_distinguishable():
    nv = _ladder("nvfp4", {None: [130, 110, 100], 1: [134, 112, 101]})
    if4 = _ladder("if4", {None: [132, 111, 102], 1: [129, 109, 100]})
    nz = noise(nv + if4)
    assert nz[("nvfp4", 2, "pipelined", False)]["area_spread"] == pytest.approx(134 / 130 - 1)
    (cmp,) = compare(nv + if4, n=3)
    assert all(row["spread_from"] == "seed fronts" and row["pairs"] == 4
               for row in cmp["iso_period"])
    # IF4 within NVFP4's own seed-to-seed spread at every period: not distinguishable.
    assert all(row["distinguishable"] is False for row in cmp["iso_period"])

    big = _ladder("if4", {None: [160, 140, 125], 1: [161, 139, 126]})
    (cmp,) = compare(nv + big, n=3)
    assert all(row["distinguishable"] is True and row["ratio_min"] > 1.15
               for row in cmp["iso_period"])


def test_noise_from_repeats_at_one_target():
    nv = _ladder("nvfp4", {None: [130, 110, 100]}) + [P("nvfp4", 4500, 4000, 121, seed=1)]
    if4 = _ladder("if4", {None: [135, 114, 103]})
    (cmp,) = compare(nv + if4, n=2)
    row = cmp["iso_period"][0]
    assert row["spread_from"] == "repeat spread"
    assert row["ratio_min"] == pytest.approx(row["area_ratio"] / 1.1)
    assert row["distinguishable"] is False
    (plain,) = compare(_ladder("nvfp4", {None: [130, 110, 100]}) + if4, n=2)
    assert plain["iso_period"][0]["distinguishable"] is None


def test_plot_writes_a_png(tmp_path):
    pts = _ladder("nvfp4", {None: [130, 110, 100]}) + _ladder("if4", {None: [132, 111, 102]})
    pts.append(P("if4", 2000, 2900, 170))   # a missed target: drawn hollow
    out = plot_ladders(pts, tmp_path / "ladder.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_abc_delay_target_trades_area_for_speed(tmp_path):
    """On the real flow: a tight ABC delay target gives a shorter achieved period and more
    area than a relaxed one; a permutation seed is recorded and reaches ABC."""
    def run(ps, seed=None):
        return synthesize(target="asic", design="regmul", width=8, clock_ps=ps,
                          abc_delay_target=True, abc_seed=seed, workdir=tmp_path / f"{ps}-{seed}")

    relaxed, tight = point(run(3000.0)), point(run(400.0))
    assert tight["achieved_ps"] < relaxed["achieved_ps"]
    assert tight["area_um2"] > relaxed["area_um2"]
    assert relaxed["closed"] and not tight["closed"]
    seeded = run(3000.0, seed=5)
    assert seeded["abc_seed"] == 5 and "seed 5" in seeded["flow"]
    script = next((tmp_path / "3000.0-5").glob("*/synth_asic.ys")).read_text()
    assert "permute,-S,5;" in script
    with pytest.raises(ValueError, match="non-negative integer"):
        run(3000.0, seed=-1)
