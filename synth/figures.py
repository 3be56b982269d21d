"""The report's figures: area by block and delay per pipeline stage (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path

from if4mac.golden.mac import REDUCTIONS
from if4mac.safe_output import atomic_file

from .report_data import blocks_present, find_run
from .runs import UNITS_COMPARED

__all__ = ["figures"]


def figures(data, outdir: Path) -> list[Path]:
    """Write ``area.png`` and ``delay.png`` (where the ASIC runs are there); their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    asic = [(red, unit, find_run(data, "asic", unit, red)) for red in REDUCTIONS
            for unit in UNITS_COMPARED]
    asic = [x for x in asic if x[2] is not None]
    if asic:
        blocks = blocks_present([r for _, _, r in asic])
        fig, ax = plt.subplots(figsize=(8, 4.8))
        labels = [f"{unit.upper()}\n{red}" for red, unit, _ in asic]
        bottom = [0.0] * len(asic)
        cmap = plt.get_cmap("tab10")
        for i, block in enumerate(blocks):
            vals = [r["area"]["blocks_nand2"].get(block, 0.0) / 1000 for _, _, r in asic]
            ax.bar(labels, vals, bottom=bottom, label=block, color=cmap(i % 10),
                   edgecolor="white", linewidth=0.5)
            bottom = [b + v for b, v in zip(bottom, vals)]
        for x, total in enumerate(bottom):
            ax.text(x, total, f"{total:.1f}k", ha="center", va="bottom", fontsize=9)
        flat = [find_run(data, "asic", unit, red, flat=True) for red, unit, _ in asic]
        if all(flat):
            totals = [f["area"]["total_nand2"] / 1000 for f in flat]
            ax.scatter(range(len(flat)), totals, marker="D", color="black", zorder=3,
                       label="whole design, flat")
            for x, total in enumerate(totals):
                ax.text(x + 0.12, total, f"{total:.1f}k", va="center", fontsize=8)
        lib = asic[0][2]["library"]
        ax.set_ylabel("area, thousands of NAND2 equivalents")
        ax.set_title(f"MAC area by block (blocks kept apart), B = {data['block_size']} "
                     f"({lib['title'].split(' (')[0]})", fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_ylim(0, max(bottom) * 1.12)
        fig.tight_layout()
        path = outdir / "area.png"
        with atomic_file(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=110)
        plt.close(fig)
        files.append(path)

        fig, axes = plt.subplots(1, len(REDUCTIONS), figsize=(9, 4), sharey=True, squeeze=False)
        for ax, red in zip(axes[0], REDUCTIONS):
            pair = [find_run(data, "asic", u, red) for u in UNITS_COMPARED]
            if any(p is None for p in pair):
                continue
            stages = sorted({s["stage"] or 0 for p in pair for s in p["timing"]["stages"]})
            width = 0.38
            for k, (unit, rec) in enumerate(zip(UNITS_COMPARED, pair)):
                by = {s["stage"] or 0: s["min_period_ps"] for s in rec["timing"]["stages"]}
                xs = [i + (k - 0.5) * width for i in range(len(stages))]
                ax.bar(xs, [by.get(s, 0) for s in stages], width, label=unit.upper(),
                       color=("#7f7f7f", "#d62728")[k])
            ax.set_xticks(range(len(stages)), [f"{s}" if s else "other" for s in stages])
            ax.set_xlabel("pipeline stage (register level)")
            ax.set_title(f"{red} reduction", fontsize=10)
        axes[0][0].set_ylabel("register-to-register delay, ps")
        axes[0][0].legend(fontsize=8)
        fig.suptitle(f"Worst path into each stage, B = {data['block_size']}", fontsize=10)
        fig.tight_layout()
        path = outdir / "delay.png"
        with atomic_file(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=110)
        plt.close(fig)
        files.append(path)
    return files
