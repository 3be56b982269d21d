"""What the format and the architecture buy: matrix-product error of NVFP4, NVINT4 and IF4, and
of each MAC architecture's binary32 results, against exact products on real-sized tensors.

Run it on the GPU machine (after ``pip install --no-deps --no-build-isolation -e .`` in the
checkout ``R``, docs/gpu_ref.md), from outside the checkout (``python3 -m`` puts the current
directory first on ``sys.path``, and the checkout's ``if4mac/`` folder would hide the installed
package's ``if4mac.gpu_ref``)::

    cd /tmp && python3 -m if4mac.gpu_ref.accuracy --out-dir $R/reports

It writes gpu_accuracy.json, gpu_accuracy.md and the plots gpu_accuracy.png (formats) and
gpu_accuracy_<arch>.png (one per architecture; they need matplotlib: without it,
``--render FILE.json`` redraws the report and plots from the JSON on any machine). The module
needs numpy, click and the golden model only (no Amaranth, no cocotb); CuPy only for
``--kernel cuda``, the default.

For each pair of example tensors (activations A (M, K), weights W (N, K), from
``golden.tensors.example_tensor``; M = N = 128, K = 4096), the reference is the exact product
``A W^T`` (float64), and each format is measured:

* **dequantized** -- ``dequantize(A_q) dequantize(W_q)^T`` in float64: the format's own
  quantization error, with exact arithmetic after it;

and each format with a MAC unit (:data:`MAC_UNITS`), under each architecture (:data:`ARCHS`:
``reference``, ``fused-fp32``, ``fused-exact``):

* **MAC** -- the architecture's binary32 results on ``stimulus_from_quantized`` times
  ``dot_product_scale``: what the hardware returns. Its error against ``A W^T`` (the total),
  and against the exact product of the quantized operands (:func:`quantized_values`, every
  INT4 element worth exactly 6/7 of its integer): the architecture's arithmetic error alone.
  fused-exact rounds each exact dot product once, so its arithmetic error is at most 2**-24
  (relative, per output and so in the Frobenius norm).

The MAC results come from a *kernel*: ``"cuda"`` launches the CUDA reference's stream kernels
(``device.run``, gpu_ref/mac.cu and fused.cu) and checks every result bit for bit against
golden (``golden.fused.run_arch``) on the CPU, in worker processes while the GPU works;
``"golden"`` computes them with golden itself (no GPU, no check: for the CPU tests and small
shapes). Everything but the kernel launch is the same code on both. The error is
``||Y - R||_F / ||R||_F``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np

from if4mac.golden.formats import (DEFAULT_BLOCK_SIZE, E2M1_VALUES, INT4_VALUES, UNITS,
                                   decode_scale, scale_is_int)
from if4mac.golden.fused import ARCHS
from if4mac.golden.quantize import FORMATS

__all__ = ["CASES", "FORMATS", "MAC_UNITS", "ARCHS", "SHAPE", "KERNELS", "golden_kernel",
           "cuda_kernel", "operands", "quantized_values", "compute", "render_markdown",
           "render_plots", "write_outputs", "main"]

#: (name, activation kind, weight kind, Hadamard-rotate both): random and heavy-tailed inputs.
CASES = (
    ("gaussian", "gaussian", "gaussian", False),
    ("laplace", "laplace", "gaussian", False),
    ("student-t + outliers", "student-t", "gaussian", False),
    ("student-t + outliers, Hadamard", "student-t", "gaussian", True),
)
#: The formats with a MAC unit: the formats layer's units (NVINT4 has none).
MAC_UNITS = UNITS
#: Operand shapes (M, N, K): 128 x 128 outputs, each a dot product of K = 4096 (256 beats).
SHAPE = (128, 128, 4096)

#: A kernel: (stream, arch) -> the binary32 bit patterns (uint32) of ``golden.fused.run_arch``.
Kernel = Callable[[object, str], np.ndarray]


def golden_kernel(stream, arch: str) -> np.ndarray:
    """The MAC results of ``stream`` under ``arch`` from the golden model (CPU)."""
    from if4mac.golden.fused import run_arch

    return np.asarray(run_arch(stream, arch=arch).bits, dtype=np.uint32)


def cuda_kernel(stream, arch: str) -> np.ndarray:
    """The MAC results of ``stream`` under ``arch`` from the CUDA stream kernels (GPU)."""
    from . import device

    return np.asarray(device.run(stream, arch=arch).bits, dtype=np.uint32)


#: The kernels by the name ``--kernel`` takes; "cuda" results are checked against golden.
KERNELS = {"cuda": cuda_kernel, "golden": golden_kernel}


def _check_shape(shape) -> tuple[int, int, int]:
    m, n, k = (int(v) for v in shape)
    if min(m, n, k) < 1 or k % DEFAULT_BLOCK_SIZE:
        raise ValueError(f"shape (M, N, K) must be positive with K a multiple of the block size "
                         f"{DEFAULT_BLOCK_SIZE}; got {tuple(shape)}")
    return m, n, k


def operands(case: tuple, seed: int, shape=SHAPE) -> tuple[np.ndarray, np.ndarray]:
    """The float32 activations (M, K) and weights (N, K) of one case."""
    from if4mac.golden.tensors import example_tensor

    m, n, k = _check_shape(shape)
    _, a_kind, w_kind, hadamard = case
    a = example_tensor(a_kind, (m, k), seed=2 * seed + 1, hadamard=hadamard)
    w = example_tensor(w_kind, (n, k), seed=2 * seed + 2, hadamard=hadamard)
    return a, w


def quantized_values(q) -> np.ndarray:
    """The values a MAC unit multiplies, float64, in its own units: element times decoded scale,
    times exactly 6/7 in IF4's INT4 blocks (the format's definition, not f32(6/7)). The MAC's
    result times ``dot_product_scale`` is the dot product of these rows, up to its rounding."""
    codes = q.codes.reshape(q.codes.shape[:-1] + (-1, DEFAULT_BLOCK_SIZE))
    scale = decode_scale(q.scales).astype(np.float64)[..., None]
    values = E2M1_VALUES[codes].astype(np.float64)
    if q.format == "if4":
        is_int = scale_is_int(q.scales)[..., None]
        values = np.where(is_int, INT4_VALUES[codes].astype(np.float64) * (6 / 7), values)
    elif q.format != "nvfp4":
        raise ValueError(f"{q.format} has no MAC unit: expected one of {', '.join(MAC_UNITS)}")
    return (values * scale).reshape(q.codes.shape)


def _rel(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(y - ref) / np.linalg.norm(ref))


def _mac_stream(case_index: int, unit: str, seed: int, shape):
    from if4mac.golden.quantize import quantize, stimulus_from_quantized

    a, w = operands(CASES[case_index], seed, shape)
    qa, qw = quantize(a, unit), quantize(w, unit)
    return qa, qw, stimulus_from_quantized(qa, qw, unit)


def _golden_job(job: tuple) -> tuple:
    """Golden's MAC results for one (case, unit, arch): the CPU side of the bit-exact check."""
    case_index, unit, arch, seed, shape = job
    _, _, stream = _mac_stream(case_index, unit, seed, shape)
    return (case_index, unit, arch), golden_kernel(stream, arch)


def _mismatches(got: np.ndarray, want: np.ndarray) -> int:
    if got.shape != want.shape:
        return max(got.size, want.size)
    return int(np.count_nonzero(got != want))


def compute(seed: int = 0, *, shape=SHAPE, kernel: str = "cuda", workers: int | None = None,
            archs=ARCHS) -> dict:
    """Every case's errors (float64) and, with the "cuda" kernel, the golden-agreement count.

    ``kernel`` names an entry of :data:`KERNELS` (a callable ``(stream, arch) -> bits`` is also
    taken, and then checked against golden like "cuda"). ``workers``: golden check processes
    (None: every CPU; 0: in this process, after the kernel).
    """
    from if4mac.golden.quantize import dequantize, dot_product_scale, error_stats, quantize

    m, n, k = shape = _check_shape(shape)
    if isinstance(kernel, str) and kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}: expected one of {', '.join(KERNELS)}")
    launch = KERNELS[kernel] if isinstance(kernel, str) else kernel
    checked = launch is not golden_kernel
    info = {"kernel": kernel if isinstance(kernel, str) else getattr(kernel, "__name__", "?")}
    if launch is cuda_kernel:
        from . import device

        device.require_gpu()
        info["device"] = device.device_info()
    jobs = [(i, unit, arch, seed, shape) for i in range(len(CASES)) for unit in MAC_UNITS
            for arch in archs] if checked else []
    pool = None
    if jobs and workers != 0:
        ctx = multiprocessing.get_context("spawn")
        pool = ctx.Pool(min(len(jobs), workers or os.cpu_count() or 1))
    try:
        pending = pool.map_async(_golden_job, jobs) if pool else None
        rows, mac_rows, mac_bits = [], [], {}
        for i, case in enumerate(CASES):
            a, w = operands(case, seed, shape)
            exact = a.astype(np.float64) @ w.astype(np.float64).T
            for fmt in FORMATS:
                qa, qw = quantize(a, fmt), quantize(w, fmt)
                deq = (dequantize(qa).astype(np.float64) @ dequantize(qw).astype(np.float64).T)
                rows.append({
                    "case": case[0], "format": fmt,
                    "a_snr_db": error_stats(a, dequantize(qa))["snr_db"],
                    "w_snr_db": error_stats(w, dequantize(qw))["snr_db"],
                    "int_blocks": (qa.int_fraction + qw.int_fraction) / 2,
                    "dequantized_rel_err": _rel(deq, exact),
                })
                if fmt not in MAC_UNITS:
                    continue
                from if4mac.golden.quantize import stimulus_from_quantized

                stream = stimulus_from_quantized(qa, qw, fmt)
                scale = dot_product_scale(qa, qw)
                exact_q = (quantized_values(qa) @ quantized_values(qw).T) * scale
                for arch in archs:
                    bits = launch(stream, arch)
                    mac_bits[(i, fmt, arch)] = bits
                    y = bits.view(np.float32).astype(np.float64).reshape(m, n) * scale
                    mac_rows.append({
                        "case": case[0], "unit": fmt, "arch": arch,
                        "rel_err": _rel(y, exact),
                        "arith_rel_err": _rel(y, exact_q),
                        "dequantized_rel_err": rows[-1]["dequantized_rel_err"],
                    })
        if checked:
            golden = pending.get() if pending else map(_golden_job, jobs)
            mismatches = sum(_mismatches(mac_bits[key], bits) for key, bits in golden)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    result = {"shape": {"M": m, "N": n, "K": k}, "seed": seed, **info,
              "sources_sha256": accuracy_source_digests(),
              "archs": list(archs), "rows": rows, "mac_rows": mac_rows}
    if checked:
        result["mac_results_checked_against_golden"] = m * n * len(jobs)
        result["mac_golden_mismatches"] = mismatches
    return result


#: The files the report's numbers depend on beyond the cross-check records' (quantizers,
#: tensors, this module): with the fused record's sources, what the report pins by SHA-256
#: (a GPU machine's checkout may have no usable git history, so no commit is claimed).
ACCURACY_EXTRA_SOURCES = ("gpu_ref/accuracy.py", "golden/quantize.py", "golden/tensors.py")


def accuracy_source_digests() -> dict:
    """SHA-256 of every file the accuracy report depends on, as they are now."""
    import hashlib

    from .crosscheck import REPO_ROOT, record_sources

    files = dict.fromkeys(record_sources("fused-exact") + ACCURACY_EXTRA_SOURCES)
    return {f: hashlib.sha256((REPO_ROOT / f).read_bytes()).hexdigest() for f in files}


def sources_digest(digests: dict) -> str:
    """One digest over the per-file digests (the report header's short form)."""
    import hashlib

    text = "".join(f"{name} {digests[name]}\n" for name in sorted(digests))
    return hashlib.sha256(text.encode()).hexdigest()


# -- the report ---------------------------------------------------------------------------------

def _fmt(x, digits=3):
    return "n/a" if x is None else f"{x:.{digits}e}"


def _provenance(result: dict) -> str:
    dev = result.get("device")
    if dev:
        return (f"on {dev['name']} (driver {dev['driver_version']}, CUDA {dev['cuda_runtime']}, "
                f"CuPy {dev['cupy']})")
    return f"with the {result.get('kernel', 'golden')} kernel (no GPU)"


def _check_line(result: dict) -> str:
    if "mac_golden_mismatches" in result:
        return (f"The MAC results come from the CUDA reference's stream kernels and were "
                f"checked bit for bit against the golden model: "
                f"{result['mac_results_checked_against_golden']:,} results, "
                f"{result['mac_golden_mismatches']} mismatches.")
    return "The MAC results come from the golden model (no GPU run, so no cross-check)."


def render_markdown(result: dict) -> str:
    shape = result["shape"]
    beats = shape["K"] // DEFAULT_BLOCK_SIZE
    lines = [
        "# Matrix-product accuracy: IF4 vs NVFP4 vs NVINT4, and the three MAC architectures",
        "",
        f"Generated by `gpu_ref/accuracy.py` {_provenance(result)}; seed {result['seed']}.",
        "",
        *([f"Sources: SHA-256 {sources_digest(result['sources_sha256'])[:16]} over the "
           f"{len(result['sources_sha256'])} files the numbers depend on (per file in "
           f"gpu_accuracy.json, `sources_sha256`; tests/test_gpu_accuracy.py checks them "
           f"against the tree).", ""] if "sources_sha256" in result else []),
        f"Each case multiplies activations A ({shape['M']} x {shape['K']}) by weights W "
        f"({shape['N']} x {shape['K']}) transposed: {shape['M'] * shape['N']:,} dot products of "
        f"length {shape['K']} ({beats} MAC beats each). The reference is the exact product "
        "A W^T in float64; the error is ||Y - A W^T||_F / ||A W^T||_F.",
        "",
        "Tensors (`golden.tensors.example_tensor`): gaussian (standard normal), laplace (unit "
        "variance), student-t (df 3, plus one 20-60 sigma outlier per 1024 elements); the "
        f"Hadamard case rotates every block of {DEFAULT_BLOCK_SIZE} of both operands (which "
        "leaves A W^T unchanged). Weights are gaussian throughout. SNR is of the quantized "
        "tensors (A / W).",
        "",
        "## Formats (dequantized)",
        "",
        "Y = deq(A_q) deq(W_q)^T in float64: the format's quantization error alone.",
        "",
        "| case | format | INT4 blocks | SNR A / W (dB) | dequantized |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['case']} | {r['format']} | {r['int_blocks']:.1%} | "
                     f"{r['a_snr_db']:.2f} / {r['w_snr_db']:.2f} | "
                     f"{_fmt(r['dequantized_rel_err'])} |")
    lines += ["", "![relative error per case and format](gpu_accuracy.png)", ""]
    by_case = {}
    for r in result["rows"]:
        by_case.setdefault(r["case"], {})[r["format"]] = r["dequantized_rel_err"]
    if all({"if4", "nvfp4"} <= set(v) for v in by_case.values()):
        lines.append("IF4's error relative to NVFP4's (dequantized): " + "; ".join(
            f"{case} {v['if4'] / v['nvfp4']:.3f}x" for case, v in by_case.items()) + ".")
        lines.append("")
    lines += [
        "## MAC architectures",
        "",
        "Y = the MAC's binary32 results times the tensors' scale factor (`dot_product_scale`): "
        "what the hardware returns. " + _check_line(result),
        "",
        "* **vs A W^T**: the total error, quantization included (compare the dequantized "
        "column).",
        "* **arithmetic**: against the exact product of the quantized operands (every INT4 "
        "element worth exactly 6/7 of its integer): the architecture's own rounding. "
        "fused-exact rounds each dot product once, so it is at most 2^-24 = 5.96e-08.",
        "",
    ]
    mac = result["mac_rows"]
    archs = result["archs"]
    lookup = {(r["case"], r["unit"], r["arch"]): r for r in mac}
    pairs = list(dict.fromkeys((r["case"], r["unit"]) for r in mac))
    lines += ["Arithmetic error by architecture:", "",
              "| case | unit | " + " | ".join(archs) + " |",
              "| --- | --- |" + " ---: |" * len(archs)]
    for case, unit in pairs:
        lines.append(f"| {case} | {unit} | " + " | ".join(
            _fmt(lookup[(case, unit, a)]["arith_rel_err"], 2) for a in archs) + " |")
    lines.append("")
    for arch in archs:
        lines += [f"### {arch}", "",
                  "| case | unit | dequantized | MAC vs A W^T | arithmetic |",
                  "| --- | --- | ---: | ---: | ---: |"]
        for case, unit in pairs:
            r = lookup[(case, unit, arch)]
            lines.append(f"| {case} | {unit} | {_fmt(r['dequantized_rel_err'])} | "
                         f"{_fmt(r['rel_err'])} | {_fmt(r['arith_rel_err'], 2)} |")
        lines += ["", f"![{arch}: error per case and unit](gpu_accuracy_{arch}.png)", ""]
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _bars(ax, cases, series, ylabel):
    width = 0.8 / len(series)
    x = np.arange(len(cases))
    for j, (label, values, style) in enumerate(series):
        ax.bar(x + (j - (len(series) - 1) / 2) * width, values, width, label=label, **style)
    for j, (_, values, _) in enumerate(series):
        for xi, v in zip(x, values):
            if v == 0:          # invisible on a log axis: say it
                ax.annotate("0", (xi + (j - (len(series) - 1) / 2) * width, 0),
                            xycoords=("data", "axes fraction"), ha="center", va="bottom",
                            fontsize=8)
    ax.set_xticks(x, [c.replace(" + ", "\n+ ") for c in cases], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)


def _save(fig, path) -> None:
    from if4mac.safe_output import atomic_file

    fig.tight_layout()
    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=120)


def render_plots(result: dict, out_dir) -> list[Path]:
    """gpu_accuracy.png (formats, dequantized) and gpu_accuracy_<arch>.png per architecture
    (total and arithmetic error of its MAC results) in ``out_dir``; needs matplotlib."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    shape = result["shape"]
    cases = list(dict.fromkeys(r["case"] for r in result["rows"]))
    deq = {(r["case"], r["format"]): r["dequantized_rel_err"] for r in result["rows"]}
    color = {fmt: f"C{i}" for i, fmt in enumerate(FORMATS)}
    written = []
    fig, ax = plt.subplots(figsize=(10, 4.8))
    _bars(ax, cases, [(fmt.upper(), [deq[(c, fmt)] for c in cases], {"color": color[fmt]})
                      for fmt in FORMATS], "relative error ||Y - AW^T|| / ||AW^T||")
    ax.set_title(f"Dequantized matrix product vs exact, M=N={shape['M']}, K={shape['K']}")
    _save(fig, out_dir / "gpu_accuracy.png")
    plt.close(fig)
    written.append(out_dir / "gpu_accuracy.png")
    mac = {(r["case"], r["unit"], r["arch"]): r for r in result["mac_rows"]}
    units = list(dict.fromkeys(r["unit"] for r in result["mac_rows"]))
    for arch in result["archs"]:
        fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
        series = [(f"{u.upper()} dequantized", [deq[(c, u)] for c in cases],
                   {"color": color[u]}) for u in units]
        series += [(f"{u.upper()} MAC", [mac[(c, u, arch)]["rel_err"] for c in cases],
                    {"color": color[u], "hatch": "//", "alpha": 0.55}) for u in units]
        _bars(left, cases, series, "relative error vs A W^T")
        left.set_title("total error")
        _bars(right, cases, [(f"{u.upper()} MAC", [mac[(c, u, arch)]["arith_rel_err"]
                                                    for c in cases], {"color": color[u]})
                             for u in units], "relative error vs exact quantized product")
        right.set_yscale("log")
        right.axhline(2.0**-24, color="k", lw=0.8, ls="--", label="2^-24")
        right.legend(fontsize=8)
        right.set_title("arithmetic error (log scale)")
        fig.suptitle(f"{arch}: MAC results, M=N={shape['M']}, K={shape['K']}")
        path = out_dir / f"gpu_accuracy_{arch}.png"
        _save(fig, path)
        plt.close(fig)
        written.append(path)
    return written


def write_outputs(result: dict, out_dir) -> list[Path]:
    """gpu_accuracy.json, .md and (when matplotlib is there) the plots in ``out_dir``."""
    from if4mac.safe_output import write_text

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "gpu_accuracy.json", out_dir / "gpu_accuracy.md"]
    write_text(written[0], json.dumps(result, indent=2) + "\n")
    write_text(written[1], render_markdown(result))
    try:
        written += render_plots(result, out_dir)
    except ImportError:
        click.echo("matplotlib is missing: no plots (redraw later with --render)", err=True)
    return written


@click.command(name="accuracy")
@click.option("--out-dir", type=click.Path(file_okay=False), default="reports", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--kernel", type=click.Choice(tuple(KERNELS)), default="cuda", show_default=True,
              help="Where the MAC results come from: the CUDA kernels (checked against golden) "
                   "or golden alone (no GPU).")
@click.option("--shape", type=(click.IntRange(min=1),) * 3, default=SHAPE, show_default=True,
              metavar="M N K", help="Operand shapes: A is M x K, W is N x K.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Golden check processes [default: every CPU; 0: none, in this process].")
@click.option("--render", "render_from", type=click.Path(dir_okay=False, exists=True),
              default=None, help="Only redraw the report and plots from this JSON (no GPU).")
def main(out_dir, seed, kernel, shape, workers, render_from):
    """Matrix-product error of IF4, NVFP4 and NVINT4, and of the reference, fused-fp32 and
    fused-exact MACs' binary32 results, vs exact products."""
    from . import device

    if render_from:
        result = json.loads(Path(render_from).read_text())
        if "mac_rows" not in result:
            raise click.ClickException(f"{render_from} is not an accuracy result of this "
                                       f"version (no per-architecture MAC rows)")
    else:
        if shape[2] % DEFAULT_BLOCK_SIZE:
            raise click.BadParameter(f"K = {shape[2]} is not a multiple of the block size "
                                     f"{DEFAULT_BLOCK_SIZE}", param_hint="--shape")
        if kernel == "cuda" and not device.gpu_available():
            raise click.ClickException(device.no_gpu_message("accuracy") +
                                       " (--kernel golden runs without one)")
        result = compute(seed, shape=shape, kernel=kernel, workers=workers)
    for path in write_outputs(result, out_dir):
        click.echo(f"-> {path}")
    for r in result["rows"]:
        click.echo(f"{r['case']:32} {r['format']:7} deq {_fmt(r['dequantized_rel_err'])}")
    for r in result["mac_rows"]:
        click.echo(f"{r['case']:32} {r['unit']:7} {r['arch']:12} MAC {_fmt(r['rel_err'])} "
                   f"arithmetic {_fmt(r['arith_rel_err'], 2)}")


if __name__ == "__main__":
    main()
