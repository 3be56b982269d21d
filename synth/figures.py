"""The report's figures: area vs achieved period (every design's ladder) and area by block
of the headline pair (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path

from if4mac.safe_output import atomic_file

from .ladder import draw_ladder
from .report_data import blocks_present, find_run
from .runs import HEADLINE, UNITS_COMPARED

__all__ = ["figures"]


def _save(fig, path: Path) -> Path:
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110)
    return path


def figures(data, outdir: Path, points) -> list[Path]:
    """Write ``ladder.png`` (from ``points``: (design id, unit) -> ladder points) and
    ``area.png`` (where the per-block runs are there); their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    if points:
        fig, ax = plt.subplots(figsize=(8, 5))
        cmap = plt.get_cmap("tab10")
        designs = sorted({d for d, _ in points})
        for (did, unit), pts in sorted(points.items()):
            pts = [p for p in pts if p["seed"] is None]
            color = cmap(designs.index(did) % 10)
            style = "-" if unit == "if4" else "--"
            draw_ladder(ax, pts, color, f"{unit.upper()} {did}", style=style, size=16)
        ax.set_xlabel("achieved clock period, ps (OpenSTA, register to register)")
        ax.set_ylabel("area, um^2 (flat)")
        ax.set_yscale("log")
        ax.set_title(f"Area vs achieved period, B = {data['block_size']} (hollow: target missed)",
                     fontsize=10)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.grid(alpha=0.3)
        fig.tight_layout()
        files.append(_save(fig, outdir / "ladder.png"))
        plt.close(fig)
    pair = [find_run(data, "asic", u, None, role="blocks", did=HEADLINE) for u in UNITS_COMPARED]
    if all(pair):
        blocks = blocks_present(pair)
        fig, ax = plt.subplots(figsize=(7, 4.5))
        labels = [u.upper() for u in UNITS_COMPARED]
        bottom = [0.0] * len(pair)
        cmap = plt.get_cmap("tab10")
        for i, block in enumerate(blocks):
            vals = [r["area"]["blocks_nand2"].get(block, 0.0) / 1000 for r in pair]
            ax.bar(labels, vals, bottom=bottom, label=block, color=cmap(i % 10),
                   edgecolor="white", linewidth=0.5)
            bottom = [b + v for b, v in zip(bottom, vals)]
        for x, total in enumerate(bottom):
            ax.text(x, total, f"{total:.1f}k", ha="center", va="bottom", fontsize=9)
        ax.set_ylabel("area, thousands of NAND2 equivalents")
        ax.set_title(f"Reference MAC (pipelined) by block, B = {data['block_size']}", fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.set_ylim(0, max(bottom) * 1.12)
        fig.tight_layout()
        files.append(_save(fig, outdir / "area.png"))
        plt.close(fig)
    return files
