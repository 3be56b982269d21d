"""``if4mac report``: every architecture, NVFP4 and IF4 side by side, written to reports/.

Three jobs, three modules: :mod:`.runs` plans and runs (or reuses) the flow runs through the
sweep engine and the content-addressed store (:func:`collect`), :mod:`.report_data`
computes every number (:func:`~.report_data.analyse`), and this module renders the one
template (:mod:`.report_template`) and writes ``synthesis.json`` -- the runs and the
analysis the markdown was rendered from -- and the figures (:func:`render`).

:func:`check_fresh` is the staleness check CI runs on the committed reports/: one clean
commit for every record, keys that hash to their parts, flow modules and emitted Verilog
unchanged since.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from if4mac.safe_output import write_text

from .figures import figures as draw_figures
from .report_data import PAPER_LATENCY_RATIO, _points, analyse, ratio
from .runs import REPORT_SCHEMA, UNITS_COMPARED, DirtyTree, collect

__all__ = ["UNITS_COMPARED", "PAPER_LATENCY_RATIO", "REPORT_SCHEMA", "collect", "render",
           "generate_report", "check_fresh", "DirtyTree", "REGENERATE"]

#: The one command that regenerates the committed reports/ (README, "Synthesis and
#: reports"); run from a clean checkout.
REGENERATE = ("if4mac report --output-dir reports --external "
              "fouroversix=/tmp/fouroversix --timeout 14400")


def _pct(v) -> str:
    return "not measured" if v is None else f"{v * 100:.1f} %"


def _ps(v) -> str:
    return "none" if v is None else f"{v:,.1f} ps"


def _f(v, fmt="{:,.1f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def _cells(a: dict, d: dict) -> dict:
    """The analysis with each table's cells formatted (what the template prints)."""
    a = json.loads(json.dumps(a))
    for r in a["designs"]:
        r["cells"] = [r["design"], r["unit"].upper(), _f(r["area_um2"]), _f(r["nand2"], "{:,.0f}"),
                      _f(r["flip_flops"], "{:,}"), _f(r["achieved_ps"]), _f(r["all_paths_ps"]),
                      _f(r["fastest_closed_ps"]), _f(r["latency"], "{}")]
    for x in a["iso"]:
        x["area_spread_txt"] = {u: _pct(v) for u, v in x["area_spread"].items()}
        x["period_spread_txt"] = {u: _pct(v) for u, v in x["period_spread"].items()}
        x["fastest_txt"] = {u: _ps(v) for u, v in x["fastest_closed_ps"].items()}
        x["cells"] = [[f"{r['period_ps']:,.0f}", f"{r['ratio']:.3f}",
                       f"{r['ratio_min']:.3f} .. {r['ratio_max']:.3f}", r["verdict"]]
                      for r in x["rows"]]
    a["fused_cells"] = [
        [r["design"], r["unit"].upper(),
         f"{_f(r['reference_ps'], '{:,.0f}')} ({_f(r['reference_target_ps'], '{:,.0f}')})",
         _f(r["reference_area_um2"], "{:,.0f}"),
         (f"{_f(r['fused_ps'], '{:,.0f}')} ({_f(r['fused_target_ps'], '{:,.0f}')})"
          if r["fused_ps"] is not None else
          f"none (fastest {_f(r['fused_fastest_ps'], '{:,.0f}')})"),
         _f(r["fused_area_um2"], "{:,.0f}"), _f(r["area_ratio"], "{:.3f}"),
         "; ".join(f"{p:,.0f}: {q:.3f}" for p, q in r["iso_ratios"]) or "no common period",
         "**yes**" if r["meets"] else "no"] for r in a["fused_vs_reference"]]
    a["power_cells"] = [[r["design"], r["unit"].upper(), f"{r['clock_ps']:,.0f}",
                         _f(r["total_mw"], "{:.3f}"), _f(r["dynamic_mw"], "{:.3f}"),
                         _f(r["leakage_mw"], "{:.3f}"), _f(r["pj"], "{:.4f}"),
                         _f(r["dynamic_pj"], "{:.4f}"), str(r["checked"])] for r in a["power"]]
    pw = {r["unit"]: r["pj"] for r in a["power"]}
    a["power_ratio"] = ratio(pw.get("if4"), pw.get("nvfp4"))
    a["ecp5_cells"] = [[r["design"], r["unit"].upper(), _f(r["lut4"], "{:,}"),
                        _f(r["ccu2c"], "{:,}"), _f(r["ff"], "{:,}"), _f(r["dsp"], "{}"),
                        _f(r["placed_comb"], "{:,}"), _f(r["fmax_mhz"], "{:.2f}"),
                        ", ".join(f"{_f(v, '{:.2f}')}" for v in r["fmax_by_seed"].values())]
                       for r in a["ecp5"]]
    a["ecp5_seeds"] = sorted({int(s) for r in a["ecp5"] for s in r["fmax_by_seed"]})
    a["ecp5_ratio_cells"] = [[x["design"], _f(x["ratio"], "{:.3f}"),
                              f"{_f(x['ratio_min'], '{:.3f}')} - {_f(x['ratio_max'], '{:.3f}')}",
                              f"NVFP4 {_pct(x['spread']['nvfp4'])}, IF4 {_pct(x['spread']['if4'])}",
                              x["verdict"]] for x in a["ecp5_ratios"]]
    a["external_cells"] = [[r["label"], (r["unit"] or "").upper(), r["standins"] or "",
                            _f(r["area_um2"]), _f(r["flip_flops"], "{:,}"),
                            _f(r["reg_to_reg_ps"]), _f(r["input_to_reg_ps"]),
                            _f(r["all_paths_ps"]), r["verified"] or "not checked",
                            f"{_f(r['cpu_s'], '{:,.0f}')} + {_f(r['check_cpu_s'], '{:,.0f}')}"]
                           for r in a["external"]]
    a["external_ratio_cells"] = []
    for x in a.get("external_ratios") or []:
        for what, name in (("area", "area"), ("period", "reg->reg period"),
                           ("all_paths", "every-path period")):
            v = x[what]
            sp = v["spread"]
            a["external_ratio_cells"].append([
                x["standins"], name, _f(v["ratio"], "{:.3f}"),
                f"{_f(v['ratio_min'], '{:.3f}')} - {_f(v['ratio_max'], '{:.3f}')}",
                f"NVFP4 {_pct(sp['nvfp4'])}, IF4 {_pct(sp['if4'])}"
                + ("" if x["spread_from"] == x["standins"] else
                   f" (of the {x['spread_from']} runs)"), v["verdict"]])
    for r in a["designs"]:
        if r["design"] == "reference-pipelined":
            a["external_cells"].append([f"this project: {r['top']}", r["unit"].upper(), "",
                                        _f(r["area_um2"]), _f(r["flip_flops"], "{:,}"),
                                        _f(r["achieved_ps"]), "(inputs registered)",
                                        _f(r["all_paths_ps"]), "golden (CI)", ""])
    p = a.get("paper")
    if p:
        lat = p["latency_cycles"]
        a["paper_cells"] = [
            ["paper: MAC latency", "", "", f"{p['paper_ratio']:.3f}"],
            ["latency, cycles", str(lat["nvfp4"]), str(lat["if4"]),
             ratio(lat["if4"], lat["nvfp4"])],
            ["achieved period at the relaxed target, ratio", "", "",
             _f(p["period_ratio_relaxed"], "{:.3f}")],
            ["fastest closed period, ratio", "", "", _f(p["fastest_closed_ratio"], "{:.3f}")]]
        noise = p["period_noise"]
        a["paper_text"] = (
            "In cycles the two units are identical. Their clock periods differ by "
            f"{(p['period_ratio_relaxed'] - 1) * 100:+.1f} % at the relaxed target, against a "
            "measured period spread of " + _pct(noise) + " for the same design under permuted "
            "ABC inputs: "
            + ("**not distinguishable** from the flow's noise" if p["distinguishable"] is False
               else "outside the measured noise" if p["distinguishable"] else
               "no noise measured")
            + ". The paper's +4.7 % is a latency of its own pipeline in a closed library, "
            "corner and flow; a period ratio of this flow is not the same quantity, and the "
            "area at equal period above is the comparison this flow supports.")
    st = a["steps"]
    st["wall_txt"] = ("n/a" if st.get("wall_s") is None else
                      f"{st['wall_s']:.0f} s of wall time")
    a["steps_cells"] = [[k, f"{v:,.1f}"] for k, v in st["steps_s"].items()]
    a["roles_cells"] = [[k, f"{v:,.1f}"] for k, v in st["roles_s"].items()]
    return a


def render(data: dict, outdir: str | Path) -> list[Path]:
    """Write ``synthesis.md``, ``synthesis.json`` (with the analysis) and the figures."""
    import jinja2

    from .report_template import TEMPLATE

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    data = dict(data)
    data["analysis"] = analyse(data)
    files = draw_figures(data, outdir, _points(data))
    a = _cells(data["analysis"], data)
    asic = next((r for r in data["runs"] if r["target"] == "asic" and "library" in r), None)
    ecp5 = next((r for r in data["runs"] if r["target"] == "ecp5"), None)
    ext = data.get("external") or {}
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=False)
    md = env.from_string(TEMPLATE).render(
        d=data, a=a, lib=asic["library"] if asic else {},
        relaxed=f"{max(data['plan']['ladder_ps']):.0f}",
        ecp5dev=(f"{ecp5['device']['family']} {ecp5['device']['part']}, "
                 f"{ecp5['device']['package']}, speed {ecp5['device']['speed']}"
                 if ecp5 else ""),
        ext_intro=ext.get("intro", ""))
    md_path = write_text(outdir / "synthesis.md", md.strip() + "\n")
    js = write_text(outdir / "synthesis.json", json.dumps(data, indent=1) + "\n")
    return [md_path, js, *files]


def generate_report(*, outdir: str | Path = "reports", **kwargs) -> list[Path]:
    """:func:`collect` then :func:`render`."""
    return render(collect(**kwargs), outdir)


# --- staleness --------------------------------------------------------------------------------

def check_fresh(report_dir: str | Path, *, emit=None) -> list[str]:
    """What makes the report in ``report_dir`` stale (empty: fresh).

    Checks, cheapest first: the report's schema; every record (runs and power) from one
    commit, clean; each record's key hashing to its parts; the flow modules' hashes in each
    key equal to the current files'; each record's Verilog hash equal to what hdl/ emits
    now. The last is free while the hdl/golden sources are those the report was made from
    (``source_digest`` equal); otherwise the designs are emitted again (``emit``: a
    function RunSpec -> Verilog SHA-256, for tests) and compared.
    """
    from if4mac.hdl.design import source_digest

    from .store import RunSpec, flow_sha256, run_key

    path = Path(report_dir) / "synthesis.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return [f"cannot read {path}: {err}"]
    if data.get("schema") != REPORT_SCHEMA:
        return [f"{path}: schema {data.get('schema')!r}, not {REPORT_SCHEMA!r} (regenerate "
                "with `if4mac report`)"]
    problems = []
    recs = list(data.get("runs", [])) + list(data.get("power", []))
    commits = {(r.get("git") or {}).get("commit") for r in recs}
    commits.add((data.get("git") or {}).get("commit"))
    if len(commits) != 1:
        problems.append(f"records from {len(commits)} commits: {sorted(map(str, commits))}")
    dirty = [r.get("label", "?") for r in recs if (r.get("git") or {}).get("dirty")]
    if dirty or (data.get("git") or {}).get("dirty"):
        problems.append(f"made from a tree with local changes ({len(dirty)} records)")
    flows = {t: flow_sha256(t) for t in ("asic", "ecp5")}
    to_emit = {}
    for r in recs:
        rk = r.get("run_key") or {}
        parts = rk.get("parts") or {}
        if run_key(parts) != rk.get("sha256"):
            problems.append(f"{r.get('label')}: key does not hash to its parts")
            continue
        if r.get("role") == "power":
            continue
        target = parts.get("options", {}).get("target")
        if parts.get("flow_sha256") != flows.get(target):
            changed = sorted(k for k in set(flows.get(target, {})) | set(parts.get("flow_sha256", {}))
                             if flows.get(target, {}).get(k) != parts.get("flow_sha256", {}).get(k))
            problems.append(f"{r.get('label')}: flow modules changed since: {', '.join(changed)}")
        if parts.get("options", {}).get("design") == "rtl":
            continue     # a user's RTL: its files' hashes are in the key, not ours to emit
        spec = RunSpec(**{k: v for k, v in r["spec"].items()})
        # One emission per design: the ECP5 seeds place the same Verilog.
        to_emit.setdefault(dataclasses.replace(spec, pnr_seed=None) if target == "ecp5" else
                           RunSpec(design=spec.design, unit=spec.unit,
                                   block_size=spec.block_size, reduction=spec.reduction,
                                   arch=spec.arch, acc_width=spec.acc_width,
                                   converter=spec.converter, width=spec.width),
                           set()).add(parts["verilog_sha256"])
    if data.get("source_digest") != source_digest() or emit is not None:
        if emit is None:
            from .store import _design

            def emit(spec):
                return _design(spec).sha256
        for spec, hashes in to_emit.items():
            now = emit(spec)
            if hashes != {now}:
                problems.append(f"{spec.label()}: Verilog hash differs from what hdl/ emits now")
    return problems
