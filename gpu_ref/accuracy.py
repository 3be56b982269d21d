"""What the format buys: matrix-product error of NVFP4, NVINT4 and IF4 against exact products.

For each pair of example tensors (activations A (M, K), weights W (N, K), from
``golden.tensors.example_tensor``), the reference is the exact product ``A @ W.T`` in float64
on the GPU (CuPy), and each format is measured two ways:

* **dequantized** -- ``dequantize(A_q) @ dequantize(W_q).T`` in float64: the format's own
  quantization error, with exact arithmetic after it;
* **MAC** -- the MAC unit's results (the CUDA reference's stream kernel on
  ``stimulus_from_quantized``, every result also checked bit for bit against golden on the
  CPU) times ``dot_product_scale``: what the hardware returns, binary32 rounding included.

NVINT4 has no MAC unit (golden models nvfp4 and if4 only), so it is reported dequantized only.
The error is ``||Y - A W^T||_F / ||A W^T||_F``.

Run on a GPU machine: ``python -m if4mac.gpu_ref.accuracy --out-dir reports`` writes
gpu_accuracy.json, gpu_accuracy.md and gpu_accuracy.png (the plot needs matplotlib; without
it, ``--render FILE.json`` redraws both from the JSON on any machine).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import click
import numpy as np

#: (name, activation kind, weight kind, Hadamard-rotate both): random and heavy-tailed inputs.
CASES = (
    ("gaussian", "gaussian", "gaussian", False),
    ("laplace", "laplace", "gaussian", False),
    ("student-t + outliers", "student-t", "gaussian", False),
    ("student-t + outliers, Hadamard", "student-t", "gaussian", True),
)
FORMATS = ("nvfp4", "nvint4", "if4")
MAC_UNITS = ("nvfp4", "if4")
#: Operand shapes: 128 x 128 outputs, each a dot product of K = 4096 (256 beats).
M, N, K = 128, 128, 4096


def _operands(case: tuple, seed: int):
    from if4mac.golden.tensors import example_tensor

    _, a_kind, w_kind, hadamard = case
    a = example_tensor(a_kind, (M, K), seed=2 * seed + 1, hadamard=hadamard)
    w = example_tensor(w_kind, (N, K), seed=2 * seed + 2, hadamard=hadamard)
    return a, w


def _golden_mac(job):
    """Golden MAC results for one (case, unit): the CPU side of the bit-exact check."""
    from if4mac.golden import run
    from if4mac.golden.quantize import quantize, stimulus_from_quantized

    case_index, unit, seed = job
    a, w = _operands(CASES[case_index], seed)
    stream = stimulus_from_quantized(quantize(a, unit), quantize(w, unit), unit)
    return case_index, unit, run(stream).bits


def compute(seed: int = 0, workers: int | None = None) -> dict:
    """Every case's errors (float64), plus the device and the golden-agreement count."""
    import cupy

    from if4mac.golden.quantize import (dequantize, dot_product_scale, error_stats, quantize,
                                        stimulus_from_quantized)

    from . import device

    device.require_gpu()
    jobs = [(i, unit, seed) for i in range(len(CASES)) for unit in MAC_UNITS]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(min(len(jobs), workers or os.cpu_count() or 1)) as pool:
        pending = pool.map_async(_golden_mac, jobs)
        rows, mac_bits = [], {}
        for i, case in enumerate(CASES):
            a, w = _operands(case, seed)
            exact = cupy.asarray(a, dtype=cupy.float64) @ cupy.asarray(w, dtype=cupy.float64).T
            exact_norm = float(cupy.linalg.norm(exact))
            for fmt in FORMATS:
                qa, qw = quantize(a, fmt), quantize(w, fmt)
                deq = (cupy.asarray(dequantize(qa), dtype=cupy.float64)
                       @ cupy.asarray(dequantize(qw), dtype=cupy.float64).T)
                row = {
                    "case": case[0], "format": fmt,
                    "a_snr_db": error_stats(a, dequantize(qa))["snr_db"],
                    "w_snr_db": error_stats(w, dequantize(qw))["snr_db"],
                    "int_blocks": (qa.int_fraction + qw.int_fraction) / 2,
                    "dequantized_rel_err": float(cupy.linalg.norm(deq - exact)) / exact_norm,
                    "mac_rel_err": None, "mac_vs_dequantized_rel_err": None,
                }
                if fmt in MAC_UNITS:
                    bits = device.run(stimulus_from_quantized(qa, qw, fmt)).bits
                    mac_bits[(i, fmt)] = bits
                    y = (cupy.asarray(bits.view(np.float32), dtype=cupy.float64)
                         * dot_product_scale(qa, qw)).reshape(M, N)
                    row["mac_rel_err"] = float(cupy.linalg.norm(y - exact)) / exact_norm
                    row["mac_vs_dequantized_rel_err"] = (float(cupy.linalg.norm(y - deq))
                                                         / float(cupy.linalg.norm(deq)))
                rows.append(row)
        mismatches = 0
        for i, unit, golden_bits in pending.get():
            gpu_bits = mac_bits[(i, unit)]
            if gpu_bits.shape == golden_bits.shape:
                mismatches += int(np.count_nonzero(gpu_bits != golden_bits))
            else:
                mismatches += max(gpu_bits.size, golden_bits.size)
    return {"shape": {"M": M, "N": N, "K": K}, "seed": seed, "device": device.device_info(),
            "mac_results_checked_against_golden": M * N * len(jobs),
            "mac_golden_mismatches": mismatches, "rows": rows}


def _fmt(x, digits=3):
    return "n/a" if x is None else f"{x:.{digits}e}"


def render_markdown(result: dict) -> str:
    shape = result["shape"]
    dev = result["device"]
    lines = [
        "# Matrix-product accuracy: IF4 vs NVFP4 vs NVINT4",
        "",
        f"Generated by `gpu_ref/accuracy.py` on {dev['name']} (driver {dev['driver_version']}, "
        f"CUDA {dev['cuda_runtime']}, CuPy {dev['cupy']}); seed {result['seed']}.",
        "",
        f"Each case multiplies activations A ({shape['M']} x {shape['K']}) by weights W "
        f"({shape['N']} x {shape['K']}) transposed: {shape['M'] * shape['N']:,} dot products of "
        f"length {shape['K']} ({shape['K'] // 16} MAC beats each). The reference is the exact "
        "product A W^T in float64 on the GPU; the error is ||Y - A W^T||_F / ||A W^T||_F.",
        "",
        "* **dequantized**: Y = deq(A_q) deq(W_q)^T in float64, the format's quantization error "
        "alone.",
        "* **MAC**: Y = the MAC unit's binary32 results times the tensors' scale factor "
        "(`dot_product_scale`), i.e. what the hardware returns. The MAC results come from the "
        "CUDA reference and were checked bit for bit against the golden model: "
        f"{result['mac_results_checked_against_golden']:,} results, "
        f"{result['mac_golden_mismatches']} mismatches.",
        "* **MAC vs dequantized**: the MAC results against the float64 product of the "
        "dequantized operands (binary32 values from `dequantize`): the MAC's binary32 "
        "rounding, plus for IF4 the difference between applying 6/7 once to the scale product "
        "(the MAC) and to every INT4 element (`dequantize`).",
        "* NVINT4 has no MAC unit in this project, so it is reported dequantized only.",
        "",
        "Tensors (`golden.tensors.example_tensor`): gaussian (standard normal), laplace (unit "
        "variance), student-t (df 3, plus one 20-60 sigma outlier per 1024 elements); the "
        "Hadamard case rotates every block of 16 of both operands (which leaves A W^T unchanged). "
        "Weights are gaussian throughout. SNR is of the quantized tensors (A / W).",
        "",
        "| case | format | INT4 blocks | SNR A / W (dB) | dequantized | MAC | MAC vs dequantized |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['case']} | {r['format']} | {r['int_blocks']:.1%} | "
            f"{r['a_snr_db']:.2f} / {r['w_snr_db']:.2f} | {_fmt(r['dequantized_rel_err'])} | "
            f"{_fmt(r['mac_rel_err'])} | {_fmt(r['mac_vs_dequantized_rel_err'], 2)} |")
    lines += ["", "![relative error per case and format](gpu_accuracy.png)", ""]
    by_case = {}
    for r in result["rows"]:
        by_case.setdefault(r["case"], {})[r["format"]] = r["dequantized_rel_err"]
    lines.append("IF4's error relative to NVFP4's (dequantized): " + "; ".join(
        f"{case} {v['if4'] / v['nvfp4']:.3f}x" for case, v in by_case.items()) + ".")
    lines.append("")
    return "\n".join(lines)


def render_plot(result: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = list(dict.fromkeys(r["case"] for r in result["rows"]))
    series = [("nvfp4", "dequantized_rel_err", "NVFP4"),
              ("nvint4", "dequantized_rel_err", "NVINT4"),
              ("if4", "dequantized_rel_err", "IF4"),
              ("nvfp4", "mac_rel_err", "NVFP4 MAC"),
              ("if4", "mac_rel_err", "IF4 MAC")]
    lookup = {(r["case"], r["format"]): r for r in result["rows"]}
    fig, ax = plt.subplots(figsize=(10, 4.8))
    width = 0.8 / len(series)
    x = np.arange(len(cases))
    for k, (fmt, key, label) in enumerate(series):
        values = [lookup[(c, fmt)][key] for c in cases]
        ax.bar(x + (k - (len(series) - 1) / 2) * width, values, width, label=label,
               hatch="//" if key == "mac_rel_err" else None,
               color=f"C{['nvfp4', 'nvint4', 'if4'].index(fmt)}",
               alpha=0.55 if key == "mac_rel_err" else 1.0)
    ax.set_xticks(x, cases)
    ax.set_ylabel("relative error ||Y - AW^T|| / ||AW^T||")
    shape = result["shape"]
    ax.set_title(f"Matrix product error vs exact, M=N={shape['M']}, K={shape['K']} "
                 f"(hatched: MAC unit's binary32 output)")
    ax.legend(ncol=5, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    from if4mac.safe_output import atomic_file

    with atomic_file(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=120)
    plt.close(fig)


def write_outputs(result: dict, out_dir) -> list[Path]:
    """gpu_accuracy.json, .md and (when matplotlib is there) .png in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "gpu_accuracy.json", out_dir / "gpu_accuracy.md"]
    from if4mac.safe_output import write_text

    write_text(written[0], json.dumps(result, indent=2) + "\n")
    write_text(written[1], render_markdown(result))
    try:
        render_plot(result, out_dir / "gpu_accuracy.png")
        written.append(out_dir / "gpu_accuracy.png")
    except ImportError:
        click.echo("matplotlib is missing: no plot (redraw later with --render)", err=True)
    return written


@click.command(name="accuracy")
@click.option("--out-dir", type=click.Path(file_okay=False), default="reports", show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--render", "render_from", type=click.Path(dir_okay=False, exists=True),
              default=None, help="Only redraw the report and plot from this JSON (no GPU).")
def main(out_dir, seed, render_from):
    """Matrix-product error of IF4, NVFP4 and NVINT4 vs float64 exact products, on a GPU."""
    from . import device

    if render_from:
        result = json.loads(Path(render_from).read_text())
    else:
        if not device.gpu_available():
            raise click.ClickException(device.no_gpu_message("accuracy"))
        result = compute(seed)
    for path in write_outputs(result, out_dir):
        click.echo(f"-> {path}")
    for r in result["rows"]:
        click.echo(f"{r['case']:32} {r['format']:7} deq {_fmt(r['dequantized_rel_err'])} "
                   f"MAC {_fmt(r['mac_rel_err'])}")


if __name__ == "__main__":
    main()
