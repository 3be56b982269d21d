"""``if4mac verilog``: write a MAC top as Verilog, optionally with the reference-interface wrapper.

Registered in the main ``if4mac`` group (if4mac/cli.py). Like every ``if4mac`` command, a
problem the user can cause ends with a one-line message and exit status 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from if4mac.golden import REDUCTIONS, UNITS, MacConfig
from if4mac.golden.mac import DEFAULT_BLOCK_SIZE

__all__ = ["verilog"]


class _UserError(click.ClickException):
    exit_code = 2


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as err:
        raise _UserError(f"cannot write {path}: {err.strerror or err}") from None


@click.command(name="verilog")
@click.option("--unit", required=True, type=click.Choice(UNITS))
@click.option("--block-size", type=click.IntRange(min=1), default=DEFAULT_BLOCK_SIZE,
              show_default=True, help="Lanes per beat (the block size).")
@click.option("--reduction", type=click.Choice(REDUCTIONS), default="pipelined",
              show_default=True,
              help="pipelined: every result, one tree level per cycle; shared: the reference's "
                   "B/2 reused adders, sticky overrun when a result is lost.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              metavar="FILE", help="Verilog output file.")
@click.option("--compat", is_flag=True,
              help="Also write the reference-interface SystemVerilog wrapper to FILE's stem "
                   "+ _compat.sv.")
def verilog(unit, block_size, reduction, output, compat):
    """Write the NVFP4 or IF4 MAC top as Verilog to FILE.

    The module is named UNIT_mac_bN_REDUCTION (e.g. if4_mac_b16_pipelined); its ports are
    clk, rst_n, en, first, a_in, a_sf, w_in, w_sf, acc, done (and overrun for the shared
    tree), with a_in/w_in packed. --compat also writes FILE's stem + _compat.sv: the module
    if4_mac / nvfp4_mac with the reference design's port list (unpacked lane arrays,
    parameter BLOCK_SIZE), which instantiates the core; compile both files.
    """
    from .compat import compat_path, compat_wrapper
    from .mac import mac_verilog

    output = Path(output)
    if not output.parent.is_dir():
        # Fail before the (seconds-long) generation, with the message a write would give.
        raise _UserError(f"cannot write {output}: No such file or directory")
    try:
        # Validated once, here at the edge; everything below trusts the config.
        top = MacConfig(unit, block_size, reduction).build()
    except ValueError as err:
        raise _UserError(str(err)) from None
    _write(output, mac_verilog(top))
    click.echo(f"{top.name}: {unit} MAC, block size {block_size}, {reduction} reduction, "
               f"latency {top.latency} -> {output}")
    if compat:
        wrapper_path = compat_path(output)
        _write(wrapper_path, compat_wrapper(top))
        click.echo(f"{unit}_mac (reference interface, BLOCK_SIZE={block_size}) around "
                   f"{top.name} -> {wrapper_path}")
