"""Reading the report data: finding a run and comparing two, shared by figures and text."""

from __future__ import annotations

from .designs import BLOCK_ORDER

__all__ = ["find_run", "ratio", "pct", "blocks_present", "same_rtl", "noise_floor"]


def find_run(data, target, unit, reduction, flat=False):
    for r in data["runs"]:
        d = r["design"]
        if (r["target"] == target and d["unit"] == unit and d["reduction"] == reduction
                and bool(r.get("flat")) == flat):
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


def blocks_present(runs) -> list[str]:
    names = []
    for block in BLOCK_ORDER:
        if any(r["area"]["blocks_um2"].get(block, 0) > 0 for r in runs):
            names.append(block)
    for r in runs:
        for block in r["area"]["blocks_um2"]:
            if block not in names and r["area"]["blocks_um2"][block] > 0:
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
    for block, fp in nv["area"].get("rtl_sha256", {}).items():
        if same_rtl(nv, if4, block):
            a = nv["area"]["blocks_um2"].get(block, 0.0)
            b = if4["area"]["blocks_um2"].get(block, 0.0)
            if a > 0:
                d = abs(b / a - 1)
                if worst is None or d > worst[0]:
                    worst = (d, block)
    return worst
