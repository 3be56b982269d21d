"""GPU throughput of the CUDA reference: lane-products per second, and the exhaustive sweep's time.

Run on a GPU machine: ``python -m if4mac.gpu_ref.bench`` (after ``pip install --no-deps
--no-build-isolation -e .``, see docs/gpu_ref.md). Times are CUDA-event medians after a
warm-up, kernel time only (no host transfers). Three workloads per unit:

* ``exhaustive`` -- the 2**24 single-beat lane results (one thread each, 64 MiB written);
* ``random``     -- generator segments, inputs made in registers (arithmetic-bound);
* ``stream``     -- a raw beat stream in device memory shaped like a matrix product's dot
  products (segments of K/16 beats, then one closing beat), one thread per row: each closing
  beat's thread finds its segment and sums it (reads :data:`BEAT_BYTES` = 35 per beat).
"""

from __future__ import annotations

import json

import click

from if4mac.golden import UNITS
from if4mac.golden.formats import DEFAULT_BLOCK_SIZE, ELEMENT_CODES

#: Bytes the stream kernel reads per beat: a and w codes (a byte each per lane), the two
#: scale bytes and the flags byte.
BEAT_BYTES = 2 * DEFAULT_BLOCK_SIZE + 3

__all__ = ["BEAT_BYTES", "benchmark", "main"]


def benchmark(units=UNITS, *, random_segments: int = 1 << 24, stream_segments: int = 1 << 16,
              stream_k: int = 4096, repeats: int = 20, seed: int = 1) -> list[dict]:
    """One row per (unit, workload): time in ms and lane-products per second."""
    from . import device
    from .generator import segment_headers, segment_lengths

    cupy = device.require_gpu()
    rows = []
    beats_per_segment = stream_k // DEFAULT_BLOCK_SIZE
    beats = stream_segments * beats_per_segment
    cupy.random.seed(seed)

    def draw(high, shape):
        return cupy.random.randint(0, high, size=shape, dtype=cupy.int32).astype(cupy.uint8)

    n_rows = beats + 1                     # the segments' beats, then one closing beat
    lanes = (n_rows, DEFAULT_BLOCK_SIZE)
    a, w = draw(ELEMENT_CODES, lanes), draw(ELEMENT_CODES, lanes)
    a_sf, w_sf = draw(256, n_rows), draw(256, n_rows)
    # Every row a beat; first=1 on each segment's first beat, the last row's included.
    flags = cupy.full(n_rows, device.BEAT_EN, dtype=cupy.uint8)
    flags[::beats_per_segment] |= device.BEAT_FIRST
    random_beats = int(segment_lengths(segment_headers(seed, 0, random_segments)).sum())
    for unit in units:
        out = cupy.empty(device.EXHAUSTIVE_CASES, dtype=cupy.uint32)
        ms = device.kernel_ms(lambda: device.exhaustive_lanes(unit, out=out), repeats)
        rows.append({"unit": unit, "workload": "exhaustive",
                     "lane_products": device.EXHAUSTIVE_CASES, "ms": ms})
        out = cupy.empty(random_segments, dtype=cupy.uint32)
        ms = device.kernel_ms(
            lambda: device.random_segments(unit, seed, 0, random_segments, out=out), repeats)
        rows.append({"unit": unit, "workload": f"random ({random_segments:,} segments)",
                     "lane_products": random_beats * DEFAULT_BLOCK_SIZE, "ms": ms})
        ms = device.kernel_ms(lambda: device.stream_beats(unit, a, w, a_sf, w_sf, flags),
                              repeats)
        rows.append({"unit": unit, "workload": f"stream ({stream_segments:,} x K={stream_k})",
                     "lane_products": beats * DEFAULT_BLOCK_SIZE, "ms": ms,
                     "bytes": beats * BEAT_BYTES})
    for row in rows:
        row["lane_products_per_s"] = row["lane_products"] / (row["ms"] * 1e-3)
        if "bytes" in row:
            row["gb_per_s"] = row["bytes"] / (row["ms"] * 1e-3) / 1e9
    return rows


@click.command(name="bench")
@click.option("--unit", type=click.Choice(UNITS + ("both",)), default="both", show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the rows (and the device) to this JSON file.")
def main(unit, repeats, json_path):
    """Print the CUDA reference's throughput on this machine's GPU."""
    from . import device

    if not device.gpu_available():
        raise click.ClickException(device.no_gpu_message("bench"))
    units = UNITS if unit == "both" else (unit,)
    rows = benchmark(units, repeats=repeats)
    info = device.device_info()
    click.echo(f"device: {info['name']} (driver {info['driver_version']}, "
               f"CUDA {info['cuda_runtime']}, CuPy {info['cupy']})")
    click.echo(f"{'unit':6} {'workload':32} {'ms':>10} {'lane-products/s':>16} {'GB/s':>7}")
    for r in rows:
        gbs = f"{r['gb_per_s']:7.0f}" if "gb_per_s" in r else " " * 7
        click.echo(f"{r['unit']:6} {r['workload']:32} {r['ms']:10.4f} "
                   f"{r['lane_products_per_s']:16.3e} {gbs}")
    if json_path:
        from if4mac.safe_output import write_text

        write_text(json_path, json.dumps({"device": info, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
