"""``if4mac verilog``: write a MAC top as Verilog, optionally with the reference-interface wrapper.

Registered in the main ``if4mac`` group (if4mac/cli.py). Like every ``if4mac`` command, a
problem the user can cause ends with a one-line message and exit status 2, and the output
paths are checked before the (seconds-long) generation and written atomically.
"""

from __future__ import annotations

import click

from if4mac.command import Command, arch_options, block_size_callback, mac_config
from if4mac.errors import UserError
from if4mac.golden import MAX_BLOCK_SIZE, REDUCTIONS, UNITS
from if4mac.golden.mac import DEFAULT_BLOCK_SIZE
from if4mac.safe_output import check_output, write_text

__all__ = ["verilog"]


@click.command(name="verilog", cls=Command)
@click.option("--unit", default=None, type=click.Choice(UNITS),
              help="MAC unit (required unless --chipware-standins).")
@click.option("--block-size", type=int, default=DEFAULT_BLOCK_SIZE, callback=block_size_callback,
              show_default=True, help=f"Lanes per beat (the block size), 1..{MAX_BLOCK_SIZE}.")
@click.option("--reduction", type=click.Choice(REDUCTIONS), default="pipelined",
              show_default=True,
              help="pipelined: every result, one tree level per cycle; shared: the reference's "
                   "B/2 reused adders, sticky overrun when a result is lost.")
@arch_options
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              metavar="FILE", help="Verilog output file.")
@click.option("--compat", is_flag=True,
              help="Also write the reference-interface SystemVerilog wrapper to FILE's stem "
                   "+ _compat.sv.")
@click.option("--chipware-standins", type=click.Choice(("ieee", "reduced")), default=None,
              help="Instead of a MAC: write CW_fp_add / CW_fp_mult stand-ins with ChipWare's "
                   "port lists, built from this project's FP units (docs/external.md).")
def verilog(unit, block_size, reduction, arch_options, output, compat, chipware_standins):
    """Write the NVFP4 or IF4 MAC top as Verilog to FILE.

    The module is named UNIT_mac_bN_REDUCTION (e.g. if4_mac_b16_pipelined); its ports are
    clk, rst_n, en, first, a_in, a_sf, w_in, w_sf, acc, done (and overrun for the shared
    tree), with a_in/w_in packed. --arch fused-fp32 / fused-exact write the fused block
    dot-product tops instead (module e.g. if4_mac_b16_fused_exact_w66; fused-exact adds the
    sticky overflow, and overrun with --converter serial). --compat also writes FILE's stem
    + _compat.sv: the module if4_mac / nvfp4_mac with the reference design's port list
    (unpacked lane arrays, parameter BLOCK_SIZE), which instantiates the core; compile both
    files.
    """
    from .compat import compat_path, compat_wrapper
    from .design import mac_design
    from .mac import mac_verilog

    output = check_output(output)
    if chipware_standins:
        if unit or compat or arch_options["arch"] != "reference":
            raise UserError("--chipware-standins writes the FP stand-ins only; drop --unit, "
                            "--arch and --compat")
        from .chipware import STANDIN_FORMATS, chipware_standins as standins

        write_text(output, standins(chipware_standins))
        click.echo(f"CW_fp_add, CW_fp_mult ({chipware_standins} variant; (sig_width, "
                   "exp_width) in " + ", ".join(f"({f.man_bits}, {f.exp_bits})"
                                                for f in STANDIN_FORMATS)
                   + f") -> {output}")
        return
    if unit is None:
        raise UserError("--unit is required (or --chipware-standins)")
    # Validated once, here at the edge; everything below trusts the config.
    config = mac_config(unit, block_size, reduction, arch_options)
    if compat and config.arch != "reference":
        raise UserError(f"--compat wraps the reference architecture's port list; "
                        f"{config.arch} has its own ports (drop --compat)")
    wrapper_path = compat_path(output)
    if compat:
        check_output(wrapper_path, option="--compat wrapper")
    if compat:
        # The wrapper reads the top's ports: elaborate that one top (mac_design's Verilog).
        top = config.build()
        verilog, name, latency = mac_verilog(top), top.name, top.latency
    else:
        design = mac_design(config)
        verilog, name, latency = design.verilog, design.name, design.latency
    write_text(output, verilog)
    what = (f"{reduction} reduction" if config.arch == "reference" else
            f"{config.arch}" + "".join(f", {k.replace('_', ' ')} {v}"
                                       for k, v in config.options.items()))
    click.echo(f"{name}: {unit} MAC, block size {block_size}, {what}, "
               f"latency {latency} -> {output}")
    if compat:
        write_text(wrapper_path, compat_wrapper(top))
        click.echo(f"{unit}_mac (reference interface, BLOCK_SIZE={block_size}) around "
                   f"{name} -> {wrapper_path}")
