"""Reading the report data: every number the report prints, computed once from the runs.

:func:`analyse` turns the report data of :func:`.runs.collect` into the ``analysis`` part of
``synthesis.json``: one entry per section, each a list of table rows (cells already
formatted) or plain values. The markdown template (:mod:`.report_template`) only lays
these out, so the text and the JSON cannot disagree.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import median

from .designs import BLOCK_ORDER
from .ladder import fastest_closed, iso_period_ratios, noise, pareto_front, point
from .runs import DESIGNS, HEADLINE, UNITS_COMPARED, design_id

__all__ = ["analyse", "find_run", "ratio", "pct", "blocks_present", "same_rtl", "noise_floor",
           "ISSUE13_AREA_TARGET", "PAPER_LATENCY_RATIO", "issue13_check"]

#: The IF4 paper's one hardware figure: its IF4 MAC's latency is 4.7 % above NVFP4's.
PAPER_LATENCY_RATIO = 1.047
#: Issue 13's target for a fused unit: at most this fraction of its reference counterpart's
#: area, at a clock period no longer than the reference's.
ISSUE13_AREA_TARGET = 1 / 7


def find_run(data, target, unit, reduction, flat=False, role=None, did=None, clock_ps=None):
    """The first run matching the given fields (None where there is none)."""
    for r in data["runs"]:
        d = r["design"]
        if r["target"] != target or d.get("unit") != unit or bool(r.get("flat")) != flat:
            continue
        if reduction is not None and d.get("reduction") != reduction:
            continue
        if role is not None and r.get("role") != role:
            continue
        if did is not None and design_id(r) != did:
            continue
        if clock_ps is not None and r["run_key"]["parts"].get("clock_ps") != clock_ps:
            continue
        return r
    return None


def ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.3f}"


def pct(a, b) -> str:
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{(a / b - 1) * 100:+.1f} %"


def _num(v, fmt="{:,.1f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def blocks_present(runs) -> list[str]:
    names = [b for b in BLOCK_ORDER if any(r["area"]["blocks_um2"].get(b, 0) > 0 for r in runs)]
    for r in runs:
        for block, v in r["area"]["blocks_um2"].items():
            if block not in names and v > 0:
                names.append(block)
    return names


def same_rtl(nv: dict, if4: dict, block: str) -> bool | None:
    """Whether ``block`` is the same RTL in both records (None where unknown)."""
    a = nv["area"].get("rtl_sha256", {}).get(block)
    b = if4["area"].get("rtl_sha256", {}).get(block)
    return None if a is None or b is None else a == b


def noise_floor(nv: dict, if4: dict) -> tuple[float, str] | None:
    """Largest relative area difference among blocks that are the same RTL in both units."""
    worst = None
    for block in nv["area"].get("rtl_sha256", {}):
        if same_rtl(nv, if4, block):
            a = nv["area"]["blocks_um2"].get(block, 0.0)
            b = if4["area"]["blocks_um2"].get(block, 0.0)
            if a > 0 and (worst is None or abs(b / a - 1) > worst[0]):
                worst = (abs(b / a - 1), block)
    return worst


# --- the analysis ---------------------------------------------------------------------------

def _points(data) -> dict:
    """Ladder and noise points per (design id, unit)."""
    out = defaultdict(list)
    for r in data["runs"]:
        if r["target"] == "asic" and r.get("role") in ("ladder", "noise"):
            p = point(r)
            p["seed"] = r.get("spec", {}).get("abc_seed")
            p["reduction"] = design_id(r)      # ladder.noise groups by this field
            out[(design_id(r), p["unit"])].append(p)
    return out


def _spread(pts) -> dict | None:
    n = noise(pts)
    return next(iter(n.values()), None)


def _iso(pts_if, pts_nv, sig_if, sig_nv, n=4):
    """IF4 / NVFP4 area at equal achieved period with the range that each unit's measured
    area spread allows; ``verdict``: "not distinguishable" where the range contains 1."""
    f_if = pareto_front([p for p in pts_if if p["seed"] is None])
    f_nv = pareto_front([p for p in pts_nv if p["seed"] is None])
    rows = []
    for period, r in iso_period_ratios(f_if, f_nv, n=n):
        w = (1 + (sig_if or 0.0)) * (1 + (sig_nv or 0.0))
        lo, hi = r / w, r * w
        measured = sig_if is not None or sig_nv is not None
        rows.append({"period_ps": round(period, 1), "ratio": round(r, 4),
                     "ratio_min": round(lo, 4), "ratio_max": round(hi, 4),
                     "verdict": ("no noise measured" if not measured else
                                 "not distinguishable" if lo <= 1.0 <= hi else
                                 "IF4 larger" if lo > 1 else "IF4 smaller")})
    return rows


def _design_rows(data, pts) -> list[dict]:
    relaxed = max(data["plan"]["ladder_ps"])
    rows = []
    for did, _, units in DESIGNS:
        for u in UNITS_COMPARED:
            if u not in units:
                continue
            rec = find_run(data, "asic", u, None, flat=True, role="ladder", did=did,
                           clock_ps=relaxed)
            if rec is None:
                continue
            mine = pts.get((did, u), [])
            fc = fastest_closed([p for p in mine if p["seed"] is None])
            t = rec["timing"]
            rows.append({
                "design": did, "unit": u, "top": rec["design"]["top"],
                "area_um2": rec["area"]["total_um2"], "nand2": rec["area"]["total_nand2"],
                "flip_flops": rec["area"]["flip_flops"],
                "achieved_ps": t["critical_path"]["min_period_ps"],
                "all_paths_ps": t.get("min_period_all_paths_ps"),
                "fastest_closed_ps": fc,
                "fastest_ps": min((p["achieved_ps"] for p in mine), default=None),
                "latency": rec["design"].get("latency")})
    return rows


def issue13_check(fused_pts, ref_pts, target: float = ISSUE13_AREA_TARGET) -> dict | None:
    """Issue 13's test of one fused unit against its reference counterpart, on ladder points.

    The reference's clock is the shortest period it achieved on its ladder (over the ladder
    points; seeded noise repeats are left out), at the smallest area among the points that
    achieved it. The fused unit meets the target if one of its ladder points achieves a
    period no longer than that clock with at most ``target`` of that reference point's area;
    the point reported is the smallest-area fused point within the clock (None if none is).
    The ABC delay target a point was synthesised for plays no part: a point counts by what
    OpenSTA measured. Returns None if either unit has no ladder point.
    """
    rf = [p for p in ref_pts if p.get("seed") is None]
    fz = [p for p in fused_pts if p.get("seed") is None]
    if not rf or not fz:
        return None
    ref = min(rf, key=lambda p: (p["achieved_ps"], p["area_um2"]))
    within = [p for p in fz if p["achieved_ps"] <= ref["achieved_ps"]]
    best = min(within, key=lambda p: (p["area_um2"], p["achieved_ps"]), default=None)
    ratio_ = best["area_um2"] / ref["area_um2"] if best is not None else None
    return {"reference_ps": ref["achieved_ps"], "reference_area_um2": ref["area_um2"],
            "reference_target_ps": ref["target_ps"],
            "fused_ps": best["achieved_ps"] if best else None,
            "fused_area_um2": best["area_um2"] if best else None,
            "fused_target_ps": best["target_ps"] if best else None,
            "fused_fastest_ps": min(p["achieved_ps"] for p in fz),
            "area_ratio": ratio_, "target": target,
            "meets": ratio_ is not None and ratio_ <= target}


def _fused_vs_reference(pts, designs) -> list[dict]:
    """Each fused unit against the reference (pipelined tree) of the same unit: issue 13's
    test (:func:`issue13_check`) and the area ratio along the two Pareto fronts."""
    out = []
    for did in ("fused-fp32", "fused-exact", "fused-exact-serial"):
        for u in UNITS_COMPARED:
            fz, rf = pts.get((did, u), []), pts.get((HEADLINE, u), [])
            check = issue13_check(fz, rf)
            if check is None:
                continue
            f_fz = pareto_front([p for p in fz if p["seed"] is None])
            f_rf = pareto_front([p for p in rf if p["seed"] is None])
            iso = iso_period_ratios(f_fz, f_rf, n=3)
            out.append({"design": did, "unit": u, **check,
                        "iso_ratios": [(round(p, 1), round(r, 4)) for p, r in iso]})
    return out


def _steps(data) -> dict:
    """Per-step time summed over the runs that were done (not reused) and over all runs,
    and the wall-time estimate for ``workers`` idle cores."""
    total = defaultdict(float)
    per_role = defaultdict(float)
    runs = data["runs"] + data.get("power", [])
    seen = set()
    walls, cpus = [], []
    for r in runs:
        key = r["run_key"]["sha256"] + r.get("role", "")
        if key in seen:
            continue
        seen.add(key)
        if r.get("role") == "power":
            p = r.get("power", {})
            for k, v in (p.get("steps_s") or {}).items():
                total[k] += v
            per_role["power"] += p.get("wall_s") or 0.0
            walls.append(p.get("wall_s") or 0.0)
            cpus.append(p.get("cpu_s"))
            continue
        for k, v in (r.get("steps_s") or {}).items():
            total[k] += v
        for k, v in (r.get("generic_steps_s") or {}).items():   # run inline (external RTL)
            total[k] += v
        per_role[r.get("role", "?")] += r.get("wall_s") or 0.0
        walls.append(r.get("wall_s") or 0.0)
        cpus.append(r.get("cpu_s"))
        g = r.get("generic")
        if g and g.get("key") and g["key"] not in seen:
            # The generic part shared by every run of a design: its own job, counted once.
            seen.add(g["key"])
            for k, v in (g.get("steps_s") or {}).items():
                total[k] += v
            per_role["ecp5 synthesis" if r.get("target") == "ecp5" else "generic"] += (
                g.get("wall_s") or 0.0)
            walls.append(g.get("wall_s") or 0.0)
            cpus.append(g.get("cpu_s"))
    for c in ((data.get("external") or {}).get("netlist_checks") or {}).values():
        # The external netlists' gate-level checks (Icarus): Dask tasks like the runs.
        if c.get("cached"):
            continue
        total["netlist_check"] += c.get("cpu_s") or 0.0
        per_role["netlist check"] += c.get("wall_s") or 0.0
        walls.append(c.get("wall_s") or 0.0)
        cpus.append(c.get("cpu_s"))
    workers = data["plan"].get("workers") or 2
    # CPU seconds where every run recorded them (an idle core's time); else wall seconds.
    basis = "cpu" if cpus and all(c is not None for c in cpus) else "wall"
    times = [c for c in cpus] if basis == "cpu" else walls
    return {"steps_s": {k: round(v, 1) for k, v in sorted(total.items())},
            "roles_s": {k: round(v, 1) for k, v in sorted(per_role.items())},
            "runs": len(walls), "basis": basis, "run_time_sum_s": round(sum(times), 1),
            "run_wall_sum_s": round(sum(walls), 1),
            "longest_run_s": round(max(times, default=0.0), 1),
            "workers": workers,
            # A lower bound on any schedule of these runs on ``workers`` idle cores.
            "estimate_wall_s": round(max(sum(times) / workers, max(times, default=0.0)), 1),
            "wall_s": data.get("wall_s")}


def _power(data) -> list[dict]:
    rows = []
    for r in data.get("power", []):
        p = r["power"]
        rows.append({"unit": r["design"]["unit"], "design": design_id(r),
                     "clock_ps": p["clock_ps"], "total_mw": p["total_w"] * 1e3,
                     "dynamic_mw": p["dynamic_w"] * 1e3, "leakage_mw": p["leakage_w"] * 1e3,
                     "pj": p["energy_per_lane_product_pj"],
                     "dynamic_pj": p.get("dynamic_energy_per_lane_product_pj"),
                     "lane_products": p.get("lane_products"),
                     "checked": p.get("results_checked")})
    return rows


def _ecp5(data) -> list[dict]:
    """One row per ECP5 design and unit: Yosys's cells and the placed logic (the same for
    every seed: placement does not change them) and the Fmax over its nextpnr seeds."""
    by: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in data["runs"]:
        if r["target"] == "ecp5":
            by[(design_id(r), r["design"]["unit"])].append(r)
    rows = []
    for (did, unit), runs in by.items():
        y, pl = runs[0]["yosys_cells"], runs[0]["placed"]
        seeds = {r["run_key"]["parts"]["options"]["nextpnr_seed"]: r["fmax_mhz"] for r in runs}
        f = sorted(seeds.values())
        rows.append({"design": did, "unit": unit,
                     "lut4": y.get("LUT4"), "ccu2c": y.get("CCU2C"), "ff": y.get("TRELLIS_FF"),
                     "dsp": y.get("MULT18X18D"), "placed_comb": pl.get("TRELLIS_COMB"),
                     "fmax_mhz": median(f), "fmax_min_mhz": f[0], "fmax_max_mhz": f[-1],
                     "fmax_by_seed": {str(k): v for k, v in sorted(seeds.items())}})
    return rows


def _ecp5_ratios(rows) -> list[dict]:
    """IF4 / NVFP4 Fmax of each ECP5 design with both units: the ratio of the medians over
    the seeds, and the range the two units' seed extremes allow ("not distinguishable"
    where it contains 1)."""
    by = {(r["design"], r["unit"]): r for r in rows}
    out = []
    for did in dict.fromkeys(r["design"] for r in rows):
        nv, if4 = by.get((did, "nvfp4")), by.get((did, "if4"))
        if nv is None or if4 is None:
            continue
        lo = if4["fmax_min_mhz"] / nv["fmax_max_mhz"]
        hi = if4["fmax_max_mhz"] / nv["fmax_min_mhz"]
        n = min(len(nv["fmax_by_seed"]), len(if4["fmax_by_seed"]))
        out.append({"design": did, "ratio": round(if4["fmax_mhz"] / nv["fmax_mhz"], 4),
                    "ratio_min": round(lo, 4), "ratio_max": round(hi, 4), "seeds": n,
                    "spread": {u: (r["fmax_max_mhz"] - r["fmax_min_mhz"]) / r["fmax_min_mhz"]
                               for u, r in (("nvfp4", nv), ("if4", if4))},
                    "verdict": ("one seed: no spread measured" if n < 2 else
                                "not distinguishable" if lo <= 1.0 <= hi else
                                "IF4 faster" if lo > 1 else "IF4 slower")})
    return out


def _blocks(data) -> dict | None:
    pair = [find_run(data, "asic", u, None, role="blocks", did=HEADLINE)
            for u in UNITS_COMPARED]
    if any(p is None for p in pair):
        return None
    nv, if4 = pair
    rows = []
    for block in blocks_present(pair):
        a = nv["area"]["blocks_um2"].get(block, 0.0)
        b = if4["area"]["blocks_um2"].get(block, 0.0)
        rows.append([block, str(if4["area"]["instances"].get(block, "")),
                     {True: "same", False: "**differs**", None: ""}[same_rtl(nv, if4, block)],
                     _num(a), _num(b), f"{b - a:+,.1f}", ratio(b, a)])
    ta, tb = nv["area"]["total_um2"], if4["area"]["total_um2"]
    rows.append(["**total**", "", "", f"**{ta:,.1f}**", f"**{tb:,.1f}**",
                 f"**{tb - ta:+,.1f}**", f"**{ratio(tb, ta)}**"])
    st_nv = {s["stage"]: s for s in nv["timing"]["stages"]}
    st_if = {s["stage"]: s for s in if4["timing"]["stages"]}
    stages = []
    for k in sorted(set(st_nv) | set(st_if), key=lambda x: (x is None, x or 0)):
        a = st_nv.get(k, {}).get("min_period_ps")
        b = st_if.get(k, {}).get("min_period_ps")
        ref = st_if.get(k) or st_nv.get(k)
        stages.append([str(k) if k else "other", ", ".join(ref["blocks"]) or "registers only",
                       _num(a), _num(b), ratio(b, a)])
    nf = noise_floor(nv, if4)
    return {"rows": rows, "stages": stages,
            "noise_floor": None if nf is None else {"spread": nf[0], "block": nf[1]},
            "critical": {u: r["timing"]["critical_path"] for u, r in zip(UNITS_COMPARED, pair)},
            "latency": {u: r["design"].get("latency") for u, r in zip(UNITS_COMPARED, pair)}}


def _external(data) -> list[dict]:
    """One row per external run at the default ABC seed (the noise repeats feed
    :func:`_external_ratios`)."""
    import json

    rows = []
    meta = data.get("external") or {}
    checks = meta.get("netlist_checks") or {}
    for r in data["runs"]:
        if r.get("role") != "external" or r.get("spec", {}).get("abc_seed") is not None:
            continue
        spec_rtl = r.get("spec", {}).get("rtl")
        rtl = json.loads(spec_rtl) if spec_rtl else {}
        t = r["timing"]
        io = t.get("input_to_register") or {}
        label = rtl.get("label") or r["design"]["top"]
        check = checks.get(r.get("label")) or {}
        rows.append({"label": label, "unit": rtl.get("unit"),
                     "standins": rtl.get("standins"), "area_um2": r["area"]["total_um2"],
                     "flip_flops": r["area"]["flip_flops"],
                     "reg_to_reg_ps": t["critical_path"]["min_period_ps"],
                     "input_to_reg_ps": io.get("min_period_ps"),
                     "all_paths_ps": t.get("min_period_all_paths_ps"),
                     "verified": (meta.get("verified") or {}).get(label),
                     "cpu_s": r.get("cpu_s"), "check_cpu_s": check.get("cpu_s")})
    return rows


def _external_ratios(data) -> list[dict]:
    """IF4 / NVFP4 of the external design per stand-in variant: area, register-to-register
    and every-path period, each with the range the measured spread allows (as
    :func:`_iso`): the spread of a unit is (max - min) / min over its runs of the noise
    variant (default seed and each ABC permutation seed); a variant without repeats of its
    own takes the measured one (stated in ``spread_from``)."""
    import json

    runs = defaultdict(list)      # (variant, unit) -> records, default seed first
    for r in data["runs"]:
        if r.get("role") != "external":
            continue
        rtl = json.loads(r.get("spec", {}).get("rtl") or "{}")
        key = (rtl.get("standins"), rtl.get("unit"))
        if r["spec"].get("abc_seed") is None:
            runs[key].insert(0, r)
        else:
            runs[key].append(r)

    def value(r, what):
        t = r["timing"]
        return {"area": r["area"]["total_um2"],
                "period": t["critical_path"]["min_period_ps"],
                "all_paths": t.get("min_period_all_paths_ps")}[what]

    def spread(recs, what):
        vals = [value(r, what) for r in recs if value(r, what)]
        return (max(vals) - min(vals)) / min(vals) if len(vals) > 1 else None

    measured = {k: v for k, v in runs.items() if len(v) > 1}
    out = []
    for variant in dict.fromkeys(k[0] for k in runs):
        nv, if4 = runs.get((variant, "nvfp4")), runs.get((variant, "if4"))
        if not nv or not if4:
            continue
        own = (variant, "nvfp4") in measured and (variant, "if4") in measured
        src = variant if own else next((k[0] for k in measured), None)
        row = {"standins": variant, "spread_from": src, "repeats": {
            u: len(measured.get((src, u), [])) for u in ("nvfp4", "if4")}}
        for what in ("area", "period", "all_paths"):
            a, b = value(nv[0], what), value(if4[0], what)
            s_nv = spread(measured.get((src, "nvfp4"), []), what)
            s_if = spread(measured.get((src, "if4"), []), what)
            r = b / a if a and b else None
            w = (1 + (s_if or 0.0)) * (1 + (s_nv or 0.0))
            known = s_if is not None or s_nv is not None
            row[what] = {
                "ratio": r, "spread": {"nvfp4": s_nv, "if4": s_if},
                "ratio_min": None if r is None else r / w,
                "ratio_max": None if r is None else r * w,
                "verdict": ("n/a" if r is None else "no noise measured" if not known else
                            "not distinguishable" if r / w <= 1.0 <= r * w else
                            "IF4 larger" if r / w > 1 else "IF4 smaller")}
        out.append(row)
    return out


def analyse(data: dict) -> dict:
    """Every number the report prints (see the module docstring)."""
    pts = _points(data)
    spreads = {k: _spread(v) for k, v in pts.items()}
    iso = []
    for did, _, units in DESIGNS:
        if len(units) < 2 or (did, "if4") not in pts or (did, "nvfp4") not in pts:
            continue
        s_if, s_nv = spreads.get((did, "if4")), spreads.get((did, "nvfp4"))
        p_if = [p for p in pts[(did, "if4")] if p["seed"] is None]
        p_nv = [p for p in pts[(did, "nvfp4")] if p["seed"] is None]
        iso.append({"design": did,
                    "area_spread": {"if4": s_if and s_if["area_spread"],
                                    "nvfp4": s_nv and s_nv["area_spread"]},
                    "period_spread": {"if4": s_if and s_if["period_spread"],
                                      "nvfp4": s_nv and s_nv["period_spread"]},
                    "fastest_closed_ps": {"if4": fastest_closed(p_if),
                                          "nvfp4": fastest_closed(p_nv)},
                    "rows": _iso(pts[(did, "if4")], pts[(did, "nvfp4")],
                                 s_if and s_if["area_spread"], s_nv and s_nv["area_spread"])})
    designs = _design_rows(data, pts)
    ecp5 = _ecp5(data)
    by = {(d["design"], d["unit"]): d for d in designs}
    paper = None
    a, b = by.get((HEADLINE, "nvfp4")), by.get((HEADLINE, "if4"))
    if a and b:
        head_iso = next((x for x in iso if x["design"] == HEADLINE), None)
        ps = [v for v in (head_iso or {}).get("period_spread", {}).values() if v is not None]
        period_noise = max(ps) if ps else None
        r_period = b["achieved_ps"] / a["achieved_ps"]
        r_fast = (b["fastest_closed_ps"] / a["fastest_closed_ps"]
                  if a["fastest_closed_ps"] and b["fastest_closed_ps"] else None)
        paper = {"paper_ratio": PAPER_LATENCY_RATIO,
                 "latency_cycles": {"nvfp4": a["latency"], "if4": b["latency"]},
                 "period_ratio_relaxed": r_period, "fastest_closed_ratio": r_fast,
                 "period_noise": period_noise,
                 "distinguishable": (None if period_noise is None else
                                     abs(r_period - 1) > period_noise)}
    return {"designs": designs, "iso": iso, "fused_vs_reference": _fused_vs_reference(pts, designs),
            "power": _power(data), "ecp5": ecp5, "ecp5_ratios": _ecp5_ratios(ecp5),
            "blocks": _blocks(data),
            "steps": _steps(data), "external": _external(data),
            "external_ratios": _external_ratios(data), "paper": paper}
