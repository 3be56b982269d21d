"""``if4mac gpu-check``: run the GPU cross-check and (re)write its provenance record."""

from __future__ import annotations

from pathlib import Path

import click

from if4mac.golden import UNITS

from .crosscheck import (DEFAULT_CHUNK, DEFAULT_OUTPUT, DEFAULT_SEED, DEFAULT_SEGMENTS,
                         load_record, merge_record, run_crosscheck, summary_lines, write_record)

__all__ = ["gpu_check"]


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", mininterval=2.0)


def _gpu_check(unit, segments, seed, output, chunk, workers):
    """Cross-check the CUDA reference against the golden model on a GPU, bit for bit.

    For each unit: all 2**24 single-beat lane results, N random segments (golden on every CPU
    core, in chunks) and golden random streams with bubbles and resets. Writes the provenance
    record (device, versions, seeds, counts, digests, mismatches) to --output, keeping other
    units' entries already there. Exits non-zero on any mismatch.
    """
    from . import device

    if not device.gpu_available():
        raise click.ClickException(device.NO_GPU_MESSAGE)
    units = UNITS if unit == "both" else (unit,)
    output = Path(output)
    try:
        previous = load_record(output)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    try:
        result = run_crosscheck(units, segments=segments, seed=seed, chunk=chunk,
                                workers=workers, progress_factory=_progress)
    except device.GpuUnavailable as err:
        raise click.ClickException(str(err)) from None
    record = merge_record(previous, result)
    write_record(output, record)
    for line in summary_lines(result):
        click.echo(line)
    click.echo(f"record -> {output}")
    sweeps = ("exhaustive", "random", "stream")
    bad = sum(e[s]["mismatches"] for e in result.values() for s in sweeps)
    bad += sum(e["random"]["stream_kernel_first_chunk_mismatches"] or 0 for e in result.values())
    if bad:
        raise click.ClickException(f"{bad} mismatches between the GPU and golden (see {output})")


gpu_check = click.command(name="gpu-check")(
    click.option("--unit", type=click.Choice(UNITS + ("both",)), default="both", show_default=True,
                 help="Which MAC unit to check.")(
    click.option("--segments", type=click.IntRange(min=1), default=DEFAULT_SEGMENTS,
                 show_default=True, help="Random segments per unit.")(
    click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=DEFAULT_SEED,
                 show_default=True, help="Seed of the random-segment generator.")(
    click.option("--output", "-o", type=click.Path(dir_okay=False), default=str(DEFAULT_OUTPUT),
                 show_default=True, help="Provenance record to (re)write.")(
    click.option("--chunk", type=click.IntRange(min=1), default=DEFAULT_CHUNK, show_default=True,
                 help="Segments per golden work item.")(
    click.option("--workers", type=click.IntRange(min=1), default=None,
                 help="Golden worker processes [default: every CPU].")(
        _gpu_check)))))))
