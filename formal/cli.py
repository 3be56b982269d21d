"""``if4mac formal``: run the proofs, one PASS/FAIL line each with its time.

Registered in the main ``if4mac`` group (if4mac/cli.py). Amaranth, the harnesses and the
tools load only when the command runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

__all__ = ["formal"]


class _UserError(click.ClickException):
    exit_code = 2


def _property_names():
    from .properties import properties
    return list(properties())


@click.command(name="formal")
@click.option("--property", "names", multiple=True, metavar="NAME",
              help="Prove only this property (repeatable); default: all. See --list.")
@click.option("--block-size", type=click.IntRange(min=1), default=2, show_default=True,
              help="Lanes of the MAC tops under proof (block-size-free properties ignore it).")
@click.option("--arch", default="reference", show_default=True,
              help="MAC architecture: reference, fused-fp32, fused-exact (the registry in "
                   "formal/properties.py).")
@click.option("--workdir", type=click.Path(file_okay=False), default=None,
              help="Where the harnesses, sby runs and counterexamples go (default: a new "
                   "temporary folder).")
@click.option("--timeout", type=click.FloatRange(min=1), default=None,
              help="Seconds allowed per property (default: no limit).")
@click.option("--list", "list_only", is_flag=True, help="List the properties and exit.")
def formal(names, block_size, arch, workdir, timeout, list_only):
    """Prove the MAC's properties with SymbiYosys (unbounded: k-induction).

    Prints one line per property: PASS, FAIL (with a counterexample: a VCD and, for a MAC,
    its beats as a stimulus file for `if4mac golden` and `if4mac sim`), UNKNOWN (the
    induction did not close and no counterexample was found), TIMEOUT or ERROR. Exits 1
    unless every property passes.
    """
    from .properties import properties
    from .tools import FormalToolError

    try:
        registry = properties(arch)
    except ValueError as err:
        raise _UserError(str(err)) from None
    if list_only:
        from .properties import NOT_PROVEN

        for prop in registry.values():
            extra = "" if prop.closes else " (no verdict yet: run only when named; see below)"
            click.echo(f"{prop.name}: {prop.statement}{extra}")
        for reason in NOT_PROVEN.get(arch, ()):
            click.echo(f"not proven: {reason}")
        return
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise _UserError(f"unknown property {unknown[0]!r}; known: {', '.join(registry)}")
    selected = ([registry[n] for n in names] if names
                else [prop for prop in registry.values() if prop.closes])
    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="if4mac-formal-"))
    try:
        work.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _UserError(f"cannot create {work}: {err.strerror or err}") from None
    try:
        results = [_run_one(prop, arch, block_size, work, timeout) for prop in selected]
    except FormalToolError as err:
        raise _UserError(str(err)) from None
    failed = [r for r in results if not r.passed]
    click.echo(f"{len(results) - len(failed)} of {len(results)} proven; work in {work}")
    if failed:
        raise click.exceptions.Exit(1)


def _run_one(prop, arch, block_size, work, timeout):
    from .flow import prove, trace_inputs, trace_to_stream

    try:
        job = prop.build(block_size)
    except ValueError as err:
        raise _UserError(f"{prop.name}: {err}") from None
    label = f"B={block_size}" if prop.block_sized else "-"
    folder = work / (f"{prop.name}-b{block_size}" if prop.block_sized else prop.name)
    result = prove(prop.name, job.harness, folder, depth=job.depth, cex_depth=job.cex_depth,
                   timeout=timeout)
    line = f"{result.status:7} {prop.name:20} {arch:10} {label:5} {result.seconds:8.1f} s"
    if result.detail:
        line += f"  ({result.detail})"
    click.echo(line)
    if result.status == "FAIL" and result.trace is not None:
        click.echo(f"        trace: {result.trace}")
        if job.unit is not None:
            from if4mac.golden import save_stimulus

            rows = trace_inputs(result.trace, {"rst_n", "en", "first", "a_in", "w_in",
                                               "a_sf", "w_sf"})
            stimulus = folder / "counterexample.json"
            save_stimulus(trace_to_stream(rows, job.unit, job.block_size), stimulus)
            result.stimulus = stimulus
            click.echo(f"        beats: {stimulus}  (if4mac golden --stimulus {stimulus}; "
                       f"if4mac sim --unit {job.unit} --stimulus {stimulus})")
        else:
            rows = trace_inputs(result.trace, {"a", "b"})
            if rows:
                operands = ", ".join(f"{k}=0x{v:08x}" for k, v in sorted(rows[0].items()))
                click.echo(f"        operands: {operands}")
    return result
