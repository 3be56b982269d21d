"""The ``if4mac`` command line: one entry point for every job the toolkit does.

Every error a user can cause (a missing file, malformed JSON, a wrong lane count, an unknown
unit) ends the command with a one-line message and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from if4mac.golden import (UNITS, StimulusFormatError, load_stimulus, random_stream, run,
                           save_stimulus)
from if4mac.golden.quantize import FORMATS


class UserError(click.ClickException):
    """A problem with the user's input: printed as one line, exit status 2."""

    exit_code = 2


def _fail(err: Exception) -> UserError:
    return UserError(str(err))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="if4mac")
def cli():
    """if4mac: IF4 and NVFP4 multiply-accumulate units, from golden model to gates."""


@cli.command()
@click.option("--stimulus", "stimulus_path", required=True, type=click.Path(dir_okay=False),
              help="Stimulus JSON file.")
@click.option("--strict/--total", default=False, show_default=True,
              help="--strict rejects code 0x8 in INT4 blocks; --total computes it as -8, "
                   "as the hardware does.")
def golden(stimulus_path, strict):
    """Print the golden results (JSON list of hex binary32) of a stimulus file."""
    try:
        stream = load_stimulus(stimulus_path)
        results = run(stream, strict=strict)
    except ValueError as err:
        raise _fail(err) from None
    click.echo(json.dumps(results.hex()))


@cli.command()
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS))
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False),
              help="Tensor to quantize: .npy, .npz or .safetensors.")
@click.option("--key", default=None, help="Array name inside an .npz file.")
@click.option("--tensor", "tensor_name", default=None, help="Tensor name inside a .safetensors file.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Output .npz with codes, scales, amax and format.")
def quantize(fmt, input_path, key, tensor_name, output):
    """Quantize a real tensor to NVFP4, NVINT4 or IF4 (the IF4 authors' recipe, bit-exact)."""
    from if4mac.golden.quantize import dequantize, error_stats, quantize as quantize_tensor
    from if4mac.golden.tensors import load_tensor

    try:
        x = load_tensor(input_path, key=key, tensor=tensor_name)
        q = quantize_tensor(x, fmt)
    except ValueError as err:
        raise _fail(err) from None
    np.savez(output, codes=q.codes, scales=q.scales, amax=np.float32(q.amax), format=fmt)
    stats = error_stats(x, dequantize(q))
    click.echo(f"{fmt}: {q.scales.size} blocks of 16 from {input_path} {tuple(x.shape)}, "
               f"INT4 blocks {q.int_fraction:.1%}, MSE {stats['mse']:.4g}, "
               f"SNR {stats['snr_db']:.2f} dB -> {output}")


def _load_quantized(path):
    from if4mac.golden.quantize import Quantized

    try:
        with np.load(path) as data:
            missing = {"codes", "scales", "amax", "format"} - set(data.files)
            if missing:
                raise UserError(f"{path}: not an `if4mac quantize` output (missing "
                                f"{', '.join(sorted(missing))})")
            return Quantized(str(data["format"]), data["codes"], data["scales"],
                             np.float32(data["amax"]))
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read ({err})") from None


@cli.command()
@click.option("--unit", required=True, type=click.Choice(UNITS))
@click.option("--activations", type=click.Path(dir_okay=False),
              help="Quantized activations (M, K) from `if4mac quantize`.")
@click.option("--weights", type=click.Path(dir_okay=False),
              help="Quantized weights (N, K) from `if4mac quantize`.")
@click.option("--random", "random_segments", type=int, default=None,
              help="Instead: this many random segments (all codes, scales and flag mixes).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --random.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False))
def stimulus(unit, activations, weights, random_segments, seed, output):
    """Build a stimulus file: the dot products of quantized tensors, or random segments."""
    if random_segments is not None:
        if activations or weights:
            raise UserError("give either --random or --activations/--weights, not both")
        try:
            stream = random_stream(unit, random_segments, seed=seed, bubble_prob=0.1)
        except ValueError as err:
            raise _fail(err) from None
    else:
        if not (activations and weights):
            raise UserError("need --activations and --weights (or --random N)")
        from if4mac.golden.quantize import stimulus_from_quantized

        try:
            stream = stimulus_from_quantized(_load_quantized(activations),
                                             _load_quantized(weights), unit)
        except ValueError as err:
            raise _fail(err) from None
    save_stimulus(stream, output)
    click.echo(f"{unit}: {len(stream)} beats, {int((stream.first & stream.en).sum()) - 1} segments -> {output}")


@cli.command()
@click.option("--workdir", type=click.Path(file_okay=False), default="build/demo",
              show_default=True, help="Where the demo writes its files.")
@click.option("--unit", type=click.Choice(UNITS), default="if4", show_default=True)
def demo(workdir, unit):
    """The main job on a built-in example: quantize, build a stimulus, print golden results."""
    from if4mac.golden import float32_from_bits
    from if4mac.golden.quantize import (dequantize, dot_product_scale,
                                        quantize as quantize_tensor, stimulus_from_quantized)
    from if4mac.golden.tensors import example_tensor

    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    acts = example_tensor("student-t", (4, 64), seed=1)
    wts = example_tensor("gaussian", (4, 64), seed=2, hadamard=True)
    qa, qw = quantize_tensor(acts, unit), quantize_tensor(wts, unit)
    stream = stimulus_from_quantized(qa, qw, unit)
    stim_path = work / f"{unit}_stimulus.json"
    save_stimulus(stream, stim_path)
    results = run(stream, strict=True)
    results_path = work / f"{unit}_golden.json"
    results_path.write_text(json.dumps(results.hex()) + "\n")
    click.echo(f"1. quantized activations {acts.shape} (Student-t) and weights {wts.shape} "
               f"(Gaussian, Hadamard-rotated) to {unit}; INT4 blocks: "
               f"{qa.int_fraction:.0%} / {qw.int_fraction:.0%}")
    click.echo(f"2. stimulus: {len(stream)} beats, {len(results)} segments -> {stim_path}")
    click.echo(f"3. golden results -> {results_path}:")
    click.echo(f"   {json.dumps(results.hex())}")
    # What the results mean: each is a dot product of the quantized operands, up to one
    # tensor-wide factor and the MAC's binary32 rounding.
    mac = float32_from_bits(results.bits).astype(np.float64) * dot_product_scale(qa, qw)
    exact = (acts.astype(np.float64) @ wts.astype(np.float64).T).reshape(-1)
    dequant = (dequantize(qa).astype(np.float64) @ dequantize(qw).astype(np.float64).T).reshape(-1)
    click.echo(f"   as dot products: {np.array2string(mac[:4], precision=4)} ... ; relative "
               f"error vs the float64 product of the inputs "
               f"{np.linalg.norm(mac - exact) / np.linalg.norm(exact):.3%}, vs the dequantized "
               f"operands {np.linalg.norm(mac - dequant) / np.linalg.norm(dequant):.1e}")


# Commands of the other subpackages: each lives next to the code it drives.
from if4mac.hdl.cli import verilog  # noqa: E402  (Verilog of the MAC tops)
from if4mac.sim.cli import sim  # noqa: E402  (RTL simulation against golden)
from if4mac.synth.cli import report, synth  # noqa: E402  (synthesis flows and reports)
from if4mac.gpu_ref.cli import gpu_check  # noqa: E402  (CUDA cross-check of golden)

for _command in (verilog, sim, synth, report, gpu_check):
    cli.add_command(_command)


def main(argv=None):
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="if4mac", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except StimulusFormatError as err:
        click.echo(f"Error: {err}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
