"""The ``if4mac`` command line: one entry point for every job the toolkit does.

Every error a user can cause (a missing file, malformed JSON, a wrong lane count, an unknown
unit, an output path that cannot be written) ends the command with a one-line ``Error: ...``
and exit status 2, never a traceback: commands raise :class:`if4mac.errors.UserError` (or the
library's ``ValueError`` / ``OSError``) and :mod:`if4mac.command` maps them, in one place.
Every file is written through :mod:`if4mac.safe_output`: checked before the work starts,
replaced atomically when it is done. docs/errors.md lists the exit statuses and every limit.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import click
import numpy as np

from if4mac.command import Group
from if4mac.errors import UserError, one_line
from if4mac.golden import (UNITS, StimulusError, load_stimulus, random_stream, run,
                           save_stimulus)
from if4mac.golden.quantize import FORMATS
from if4mac.golden.stimulus import MAX_STIMULUS_BEATS, check_stimulus_beats
from if4mac.safe_output import atomic_file, check_output, check_output_dir, completed, write_text

#: How golden.tensors' messages spell the array-picking options on the command line.
CLI_ARG_NAMES = {"key": "--key", "tensor": "--tensor"}

#: `stimulus --random N`: random segments have 1..40 beats plus about 10 % bubbles, so this
#: many always fit in a stimulus file (MAX_STIMULUS_BEATS), with room for the bubbles.
RANDOM_MAX_LEN = 40
MAX_RANDOM_SEGMENTS = MAX_STIMULUS_BEATS * 4 // (5 * RANDOM_MAX_LEN)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
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
    stream = load_stimulus(stimulus_path)
    try:
        results = run(stream, strict=strict)
    except StimulusError as err:
        raise UserError(f"{stimulus_path}: {err}") from None
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
    """Quantize a real tensor to NVFP4, NVINT4 or IF4 (the IF4 authors' recipe, bit-exact).

    The output is an .npz archive written to exactly OUTPUT (which must end in .npz).
    """
    from if4mac.golden.quantize import (dequantize, error_stats, max_amax,
                                        quantize as quantize_tensor)
    from if4mac.golden.tensors import load_tensor

    out = check_output(output, inputs=[("--input", input_path)], suffix=".npz")
    x = load_tensor(input_path, key=key, tensor=tensor_name, arg_names=CLI_ARG_NAMES)
    try:
        q = quantize_tensor(x, fmt)
    except ValueError as err:
        raise UserError(f"{input_path}: {err}") from None
    # Above max_amax the recipe's binary32 dequantization overflows although the values are
    # finite (docs/errors.md): the statistics then use the float64 evaluation.
    stats = error_stats(x, dequantize(q, float64=q.amax > max_amax(fmt)))
    # Everything is computed before the output is touched; np.savez into an open file writes
    # exactly that file (given a name, it would append .npz to any other suffix).
    with atomic_file(out, "wb") as fh:
        np.savez(fh, codes=q.codes, scales=q.scales, amax=np.float32(q.amax), format=fmt)
    click.echo(f"{fmt}: {q.scales.size} blocks of 16 from {input_path} {tuple(x.shape)}, "
               f"INT4 blocks {q.int_fraction:.1%}, MSE {stats['mse']:.4g}, "
               f"SNR {stats['snr_db']:.2f} dB -> {out}")


def _load_quantized(path, option):
    """A :class:`Quantized` from an ``if4mac quantize`` output; UserError for anything else."""
    from if4mac.golden.quantize import Quantized

    p = Path(path)
    if not p.is_file():
        raise UserError(f"{option} {path}: " + ("no such file" if not p.exists()
                                                 else "not a regular file"))
    if not zipfile.is_zipfile(p):
        raise UserError(f"{option} {path}: not an `if4mac quantize` output (that is an .npz "
                        f"archive; this is not a zip file)")
    try:
        with np.load(p, allow_pickle=False) as data:
            missing = {"codes", "scales", "amax", "format"} - set(data.files)
            if missing:
                raise UserError(f"{option} {path}: not an `if4mac quantize` output (missing "
                                f"{', '.join(sorted(missing))})")
            fmt, amax = data["format"], data["amax"]
            if fmt.shape != () or fmt.dtype.kind != "U":
                raise UserError(f"{option} {path}: 'format' must be a string")
            if amax.shape != () or amax.dtype.kind != "f":
                raise UserError(f"{option} {path}: 'amax' must be a floating-point scalar")
            return Quantized(str(fmt), data["codes"], data["scales"], np.float32(amax))
    except UserError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise UserError(f"{option} {path}: cannot read ({one_line(err)})") from None


def _random_segments(ctx, param, value):
    if value is not None and not 0 <= value <= MAX_RANDOM_SEGMENTS:
        raise click.BadParameter(
            f"{value} is outside 0..{MAX_RANDOM_SEGMENTS:,} (segments have up to "
            f"{RANDOM_MAX_LEN} beats and a stimulus file holds at most "
            f"{MAX_STIMULUS_BEATS:,}; see docs/errors.md)")
    return value


@cli.command()
@click.option("--unit", required=True, type=click.Choice(UNITS))
@click.option("--activations", type=click.Path(dir_okay=False),
              help="Quantized activations (M, K) from `if4mac quantize`.")
@click.option("--weights", type=click.Path(dir_okay=False),
              help="Quantized weights (N, K) from `if4mac quantize`.")
@click.option("--random", "random_segments", type=int, default=None, callback=_random_segments,
              help=f"Instead: this many random segments (all codes, scales and flag mixes; "
                   f"at most {MAX_RANDOM_SEGMENTS:,}).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed for --random.")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False))
def stimulus(unit, activations, weights, random_segments, seed, output):
    """Build a stimulus file: the dot products of quantized tensors, or random segments."""
    out = check_output(output, inputs=[("--activations", activations),
                                       ("--weights", weights)])
    if random_segments is not None:
        if activations or weights:
            raise UserError("give either --random or --activations/--weights, not both")
        stream = random_stream(unit, random_segments, seed=seed, max_len=RANDOM_MAX_LEN,
                               bubble_prob=0.1)
    else:
        if not (activations and weights):
            raise UserError("need --activations and --weights (or --random N)")
        from if4mac.golden.quantize import BLOCK_SIZE, stimulus_from_quantized

        qa = _load_quantized(activations, "--activations")
        qw = _load_quantized(weights, "--weights")
        if qa.codes.ndim == 2 and qw.codes.ndim == 2 and qa.codes.shape[1] == qw.codes.shape[1]:
            # One segment of K/16 beats per output: refuse before building it.
            m_rows, n_rows, k = qa.codes.shape[0], qw.codes.shape[0], qa.codes.shape[1]
            check_stimulus_beats(m_rows * n_rows * (k // BLOCK_SIZE) + 1,
                                 f"{m_rows} x {n_rows} outputs of K = {k}")
        stream = stimulus_from_quantized(qa, qw, unit)
    save_stimulus(stream, out)
    click.echo(f"{unit}: {len(stream)} beats, {int((stream.first & stream.en).sum()) - 1} segments -> {out}")


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

    work = check_output_dir(workdir, option="--workdir")
    work.mkdir(parents=True, exist_ok=True)
    acts = example_tensor("student-t", (4, 64), seed=1)
    wts = example_tensor("gaussian", (4, 64), seed=2, hadamard=True)
    qa, qw = quantize_tensor(acts, unit), quantize_tensor(wts, unit)
    stream = stimulus_from_quantized(qa, qw, unit)
    stim_path = work / f"{unit}_stimulus.json"
    save_stimulus(stream, stim_path)
    results = run(stream, strict=True)
    results_path = work / f"{unit}_golden.json"
    write_text(results_path, json.dumps(results.hex()) + "\n")
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
from if4mac.synth.cli import report, sweep, synth  # noqa: E402  (synthesis flows, reports, sweeps)
from if4mac.gpu_ref.cli import gpu_check  # noqa: E402  (CUDA cross-check of golden)
from if4mac.formal.cli import formal  # noqa: E402  (proofs with SymbiYosys)

for _command in (verilog, sim, synth, report, sweep, gpu_check, formal):
    cli.add_command(_command)


def _interrupted() -> str:
    """What Ctrl-C leaves behind: outputs are replaced only when complete (safe_output)."""
    if completed:
        names = ", ".join(str(p) for p in completed)
        return (f"aborted: interrupted after writing {names} (complete); no other output "
                f"was changed")
    return "aborted: interrupted before any output was written; existing files are unchanged"


def main(argv=None):
    """Console-script entry point: exit 0, 1 (a check failed), 2 (user error), 3 (results
    lost to a shared-tree overrun, ``sim``) or 130 (interrupted)."""
    completed.clear()                   # this invocation's outputs only (tests call main often)
    try:
        cli.main(args=argv, prog_name="if4mac", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo(_interrupted(), err=True)
        sys.exit(130)
    except click.UsageError as err:
        # One line, as for every other user error (click would add the usage and a hint).
        click.echo(f"Error: {' '.join(err.format_message().split())}", err=True)
        sys.exit(err.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()
