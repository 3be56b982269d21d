"""``if4mac gpu-check``: run the GPU cross-check and (re)write its provenance record."""

from __future__ import annotations

import json

import click

from if4mac.command import Command
from if4mac.errors import UserError
from if4mac.golden import UNITS
from if4mac.safe_output import check_output, write_text

from .crosscheck import (ARCHS, DEFAULT_CHUNK, DEFAULT_FUSED_OUTPUT, DEFAULT_OUTPUT, DEFAULT_SEED,
                         DEFAULT_SEGMENTS, load_fused_record, load_record, merge_fused_record,
                         merge_record, run_crosscheck, summary_lines)

__all__ = ["gpu_check"]


def _progress(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="chunk", mininterval=2.0)


def _write_record(path, record: dict) -> None:
    """Written here, not by crosscheck.write_record: replaced atomically (if4mac.safe_output)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(record, indent=2) + "\n")


@click.command(name="gpu-check", cls=Command)
@click.option("--unit", type=click.Choice(UNITS + ("both",)), default="both", show_default=True,
              help="Which MAC unit to check.")
@click.option("--arch", type=click.Choice(ARCHS + ("all",)), default="all", show_default=True,
              help="Which architecture to check.")
@click.option("--segments", type=click.IntRange(min=1), default=DEFAULT_SEGMENTS,
              show_default=True, help="Random segments per unit.")
@click.option("--seed", type=click.IntRange(0, 2**64 - 1), default=DEFAULT_SEED,
              show_default=True, help="Seed of the random-segment generator.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=str(DEFAULT_OUTPUT),
              show_default=True, help="Reference architecture's provenance record.")
@click.option("--fused-output", type=click.Path(dir_okay=False),
              default=str(DEFAULT_FUSED_OUTPUT), show_default=True,
              help="Fused architectures' provenance record.")
@click.option("--chunk", type=click.IntRange(min=1), default=DEFAULT_CHUNK, show_default=True,
              help="Segments per golden work item.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Golden worker processes [default: every CPU].")
def gpu_check(unit, arch, segments, seed, output, fused_output, chunk, workers):
    """Cross-check the CUDA reference against the golden model on a GPU, bit for bit.

    For each architecture (--arch; all three by default) and unit: all 2**24 single-beat
    cases, N random segments (golden on every CPU core, in chunks; one generated chunk serves
    every architecture) and golden random streams with bubbles and resets. Writes the
    provenance records (device, versions, seeds, counts, digests, mismatches): the reference
    architecture's to --output, the fused ones' to --fused-output, keeping entries of other
    units and architectures already there. Exits non-zero on any mismatch.
    """
    from . import device

    units = UNITS if unit == "both" else (unit,)
    archs = ARCHS if arch == "all" else (arch,)
    # The outputs are checked (and existing records read) before minutes of GPU work.
    output = check_output(output, create_parents=True)
    fused_output = check_output(fused_output, option="--fused-output", create_parents=True)
    try:
        previous = load_record(output) if "reference" in archs else None
        previous_fused = (load_fused_record(fused_output)
                          if any(a != "reference" for a in archs) else None)
    except (OSError, ValueError, AttributeError) as err:     # a file that is not a record
        raise UserError(f"cannot read a record: {err}") from None
    if not device.gpu_available():
        raise UserError(device.NO_GPU_MESSAGE)
    try:
        result = run_crosscheck(units, segments=segments, seed=seed, chunk=chunk,
                                workers=workers, progress_factory=_progress, archs=archs)
    except device.GpuUnavailable as err:
        raise click.ClickException(str(err)) from None
    if "reference" in result:
        _write_record(output, merge_record(previous, result["reference"]))
        click.echo(f"record -> {output}")
    fused = {a: units for a, units in result.items() if a != "reference"}
    if fused:
        _write_record(fused_output, merge_fused_record(previous_fused, fused))
        click.echo(f"fused record -> {fused_output}")
    for name, units_result in result.items():
        for line in summary_lines(units_result, name):
            click.echo(line)
    sweeps = ("exhaustive", "random", "stream")
    entries = [e for units_result in result.values() for e in units_result.values()]
    bad = sum(e[s]["mismatches"] for e in entries for s in sweeps)
    bad += sum(e["random"]["stream_kernel_first_chunk_mismatches"] or 0 for e in entries)
    if bad:
        raise click.ClickException(f"{bad} mismatches between the GPU and golden (see the "
                                   f"records)")

