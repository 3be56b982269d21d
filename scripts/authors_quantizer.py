"""Run the IF4 authors' reference quantizer on fixed tensors and save its outputs as test data.

The authors' code (fouroversix, ``src/fouroversix/quantize/pytorch/reference.py``) is not part
of this project: fetch it yourself and point ``--authors-src`` at its ``src`` folder. This
script writes only its outputs, which tests/test_quantize_authors.py compares with golden's
quantizers in CI. Needs PyTorch (and a CUDA GPU for ``--devices cuda``)::

    git clone https://github.com/mit-han-lab/fouroversix /tmp/fouroversix
    git -C /tmp/fouroversix checkout dadfad6901d473a734fe71e0b082e70ee993e23a
    python3 scripts/authors_quantizer.py --authors-src /tmp/fouroversix/src \\
        --out tests/data/authors_quantizer --devices cpu,cuda

The small tensors are made here with numpy from fixed seeds and saved beside the outputs
(inputs.npz). Each has zero blocks and blocks scaled down by 2^-8 .. 2^-30 (subnormal and zero
E4M3 block scales, and the E2M1 saturation case of golden/quantize.py), and is quantized as
float32 and as bfloat16 (rounded to nearest from the float32 values by torch).

One large float32 tensor (:func:`make_large`, 262,144 blocks) is built from PCG64's raw bit
stream with integer arithmetic only, so the test rebuilds it exactly instead of storing it;
for it only digests of the outputs are kept, and IF4's scale bytes (each block's INT/FP
choice), where a GPU's summation order shows up.

Outputs (outputs.npz), for every tensor, input dtype, device and format
(``{tensor}.{dtype}.{device}.{format}.{what}``):

* ``codes``  -- the reference's packed codes as it returns them, uint8, two per byte (element
  2i in the low nibble, 2i+1 in the high one), shape (rows, cols / 2);
* ``scales`` -- its block scales (float8_e4m3fn bits, bit 7 the IF4 INT4 flag), uint8, one per
  16 elements in row-major order (``use_blackwell_scale_layout=False``);
* ``amax``   -- its tensor amax, float32.

For the large tensor (``large.float32.{device}.{format}``): ``codes_sha256`` and
``scales_sha256`` (SHA-256 of those two arrays' bytes), ``amax``, and for IF4 ``scales``.

Formats and rules as golden/quantize.py reads them: NVFP4 and NVINT4 with the static rule
(``ScaleRule.static_6``), IF4 with the MSE rule, round to nearest. provenance.json records
the authors' commit, torch, device and the command line.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import importlib
import json
import platform
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

#: rows x cols of the random tensors: 4,096 blocks of 16 each.
SHAPE = (128, 512)
BLOCK = 16
#: Fraction of blocks set to zero, and of blocks scaled down by 2^-8 .. 2^-30.
ZERO_BLOCKS = 0.03
TINY_BLOCKS = 0.08
TENSORS = ("gaussian", "student_t", "tiny_blocks", "near_ties", "all_zero")
#: near_ties: its amax, and the pool of Student-t blocks its order-sensitive blocks come from.
#: (Under a round amax such as 200, no block of the pool is sensitive to the summation order.)
NEAR_TIE_AMAX = 203.71
NEAR_TIE_POOL = 1 << 21
#: rows x cols of the large tensor, and its seed.
LARGE_SHAPE = (1024, 4096)
LARGE_SEED = 20261127
DTYPES = ("float32", "bfloat16")
FORMATS = ("nvfp4", "nvint4", "if4")


def make_tensor(name: str) -> np.ndarray:
    """The float32 input tensor ``name`` (fixed seeds)."""
    if name == "all_zero":
        return np.zeros((4, 64), dtype=np.float32)
    if name == "near_ties":
        return make_near_ties()
    rng = np.random.default_rng([20261127, TENSORS.index(name)])
    if name == "gaussian":
        x = rng.standard_normal(SHAPE)
    elif name == "student_t":
        x = rng.standard_t(3, SHAPE)                     # heavy tails: amax ~ 30-100 sigma
    elif name == "tiny_blocks":
        # Every block at its own magnitude, spread over 2^0 .. 2^-30 of the largest.
        x = rng.standard_normal(SHAPE)
        scale = np.exp2(-rng.uniform(0, 30, (SHAPE[0], SHAPE[1] // BLOCK)))
        x = x * np.repeat(scale, BLOCK, axis=1)
    else:
        raise ValueError(f"unknown tensor {name!r}")
    blocks = x.reshape(-1, BLOCK)
    pick = rng.random(len(blocks))
    blocks[pick < ZERO_BLOCKS] = 0
    tiny = (pick >= ZERO_BLOCKS) & (pick < ZERO_BLOCKS + TINY_BLOCKS)
    blocks[tiny] *= np.exp2(-rng.integers(8, 31, int(tiny.sum())))[:, None]
    return blocks.reshape(x.shape).astype(np.float32)


def _if4_error_terms(blocks: np.ndarray, amax: np.float32):
    """IF4's squared error terms of both candidates, per element, in golden's binary32 steps
    (with the INT candidate's 6/7 applied before or after the division by 2688)."""
    from if4mac.golden.formats import E2M1_VALUES, INT4_VALUES, INT_EXPANSION, decode_scale
    from if4mac.golden.quantize import INT_CANDIDATE_GAIN, e2m1_codes, int4_codes, \
        round_scale_e4m3

    f32 = np.float32
    encode = f32(2688) / amax
    decode = f32(1) / encode
    s = decode_scale(round_scale_e4m3(np.abs(blocks).max(axis=1) / f32(6) * encode))
    x_s = blocks * (f32(1) / (decode * s))[:, None]
    fp, it = e2m1_codes(x_s), int4_codes(x_s * INT_CANDIDATE_GAIN)
    d_fp = ((E2M1_VALUES[fp] * s[:, None]) * amax) / f32(2688)
    d_int = (((INT4_VALUES[it] * s[:, None]) * amax) * INT_EXPANSION) / f32(2688)
    d_int_late = (((INT4_VALUES[it] * s[:, None]) * amax) / f32(2688)) * INT_EXPANSION
    return [(d - blocks) ** 2 for d in (d_fp, d_int, d_int_late)]


def make_near_ties() -> np.ndarray:
    """IF4 blocks whose INT/FP choice depends on the order of the error arithmetic.

    From a pool of Student-t (df=3) blocks with outliers, under a fixed amax, the blocks
    where golden's choice changes if the 16 squared errors are summed in another order
    (left to right, right to left, pairwise, exactly) or if 6/7 is applied after the division
    by 2688: the reference reproduces golden on these only if it does the same operations in
    the same order. The first block carries the amax alone; ordinary pool blocks fill any
    space left.
    """
    # Needs the package installed (on a bare machine: pip install --no-deps
    # --no-build-isolation -e ., docs/gpu_ref.md).
    from if4mac.golden.quantize import block_error_sum

    amax = np.float32(NEAR_TIE_AMAX)
    rng = np.random.default_rng([20261127, 7])
    # Student-t elements, and one outlier of 20 to 60 standard deviations (sqrt(3)) in one
    # block of 64, as in golden.tensors.example_tensor("student-t").
    pool = np.clip(rng.standard_t(3, (NEAR_TIE_POOL, BLOCK)), 1 - amax, amax - 1)
    rows = np.flatnonzero(rng.random(NEAR_TIE_POOL) < 1 / 64)
    pool[rows, rng.integers(0, BLOCK, rows.size)] = (
        rng.choice([-1.0, 1.0], rows.size) * np.sqrt(3) * rng.uniform(20, 60, rows.size))
    pool = pool.astype(np.float32)
    t_fp, t_int, t_int_late = _if4_error_terms(pool, amax)
    choice = block_error_sum(t_int) < block_error_sum(t_fp)

    def forward(t):
        acc = t[:, 0].copy()
        for i in range(1, BLOCK):
            acc += t[:, i]
        return acc

    def pairwise(t):
        while t.shape[1] > 1:
            t = t[:, 0::2] + t[:, 1::2]
        return t[:, 0]

    order = np.zeros(len(pool), dtype=bool)
    for total in (forward, lambda t: forward(t[:, ::-1].copy()), pairwise,
                  lambda t: t.astype(np.float64).sum(axis=1)):
        order |= (total(t_int) < total(t_fp)) != choice
    late = (block_error_sum(t_int_late) < block_error_sum(t_fp)) != choice
    n_blocks = SHAPE[0] * SHAPE[1] // BLOCK // 2          # half the size of the others
    # Order-sensitive blocks first (the rarer kind), then 6/7-position-sensitive, then others.
    picked = np.concatenate([np.flatnonzero(order), np.flatnonzero(late & ~order),
                             np.flatnonzero(~order & ~late)])[:n_blocks - 1]
    make_near_ties.sensitive = {"sum_order": int(order[picked].sum()),
                                "expansion_position": int((late & ~order)[picked].sum())}
    blocks = np.zeros((n_blocks, BLOCK), dtype=np.float32)
    blocks[0, 0] = amax
    blocks[1:] = pool[picked]
    return blocks.reshape(SHAPE[0] // 2, SHAPE[1])


def make_large(shape=LARGE_SHAPE, seed: int = LARGE_SEED) -> np.ndarray:
    """The large float32 tensor: exact values from integer arithmetic on PCG64's raw bits.

    Element: the sum of four uniform 16-bit integers, centred (nearly Gaussian, |s| < 2^18),
    times 2^(e - 16), with e uniform in 0..8 per block (block magnitudes spread over 2^8) and 2
    more for 1 element in 64 (outliers). Every value is exact in binary32, and PCG64's raw
    stream does not change between numpy versions, unlike its distributions' samplers.
    """
    rows, cols = shape
    n = rows * cols
    raw = np.random.PCG64([seed, 1]).random_raw(n)
    fields = [(raw >> np.uint64(16 * i)) & np.uint64(0xFFFF) for i in range(4)]
    centred = (fields[0] + fields[1] + fields[2] + fields[3]).astype(np.int64) - 2 * 0xFFFF
    block_exp = np.random.PCG64([seed, 2]).random_raw(n // BLOCK) % np.uint64(9)
    outlier = np.random.PCG64([seed, 3]).random_raw(n) % np.uint64(64) == 0
    exp = np.repeat(block_exp.astype(np.int64), BLOCK) - 16 + 2 * outlier
    return np.ldexp(centred.astype(np.float32), exp.astype(np.int32)).reshape(shape)


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def import_reference(src: Path):
    """The authors' reference module and their enums, without their package's heavy
    ``__init__`` files (model wrappers, kernels): the parent packages are made empty."""
    for name in ("fouroversix", "fouroversix.quantize", "fouroversix.quantize.pytorch"):
        package = types.ModuleType(name)
        package.__path__ = [str(src.joinpath(*name.split(".")))]
        sys.modules[name] = package
    reference = importlib.import_module("fouroversix.quantize.pytorch.reference")
    enums = importlib.import_module("fouroversix.utils")
    return reference, enums


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def git_commit(src: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors-src", type=Path, required=True,
                        help="the fouroversix checkout's src folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--devices", default="cpu,cuda", help="comma-separated torch devices")
    parser.add_argument("--authors-commit", default=None,
                        help="their commit, when --authors-src is not a git checkout")
    args = parser.parse_args(argv)

    import torch

    reference, enums = import_reference(args.authors_src.resolve())
    rules = {"nvfp4": enums.ScaleRule.static_6, "nvint4": enums.ScaleRule.static_6,
             "if4": enums.ScaleRule.mse}
    devices = args.devices.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    inputs, outputs = {}, {}

    def run(x, dev, fmt):
        """The reference's (packed codes, scale bytes, amax) as numpy arrays."""
        codes, scales, amax = reference.quantize(
            x.to(dev), fp4_format=enums.DataType(fmt), scale_rule=rules[fmt],
            use_blackwell_scale_layout=False)
        return (codes.cpu().numpy().astype(np.uint8), scales.cpu().view(torch.uint8).numpy(),
                amax.cpu().float().numpy().reshape(()))

    for name in TENSORS:
        x32 = make_tensor(name)
        for dtype in DTYPES:
            xt = torch.from_numpy(x32)
            if dtype == "bfloat16":
                xt = xt.bfloat16()
                inputs[f"{name}.{dtype}"] = xt.view(torch.int16).numpy().view(np.uint16)
            else:
                inputs[f"{name}.{dtype}"] = x32
            for dev in devices:
                for fmt in FORMATS:
                    key = f"{name}.{dtype}.{dev}.{fmt}"
                    (outputs[f"{key}.codes"], outputs[f"{key}.scales"],
                     outputs[f"{key}.amax"]) = run(xt, dev, fmt)
                    print(key, flush=True)
    xt = torch.from_numpy(make_large())
    for dev in devices:
        for fmt in FORMATS:
            key = f"large.float32.{dev}.{fmt}"
            codes, scales, outputs[f"{key}.amax"] = run(xt, dev, fmt)
            outputs[f"{key}.codes_sha256"] = np.array(sha256(codes))
            outputs[f"{key}.scales_sha256"] = np.array(sha256(scales))
            if fmt == "if4":
                outputs[f"{key}.scales"] = scales
            print(key, flush=True)
    np.savez_compressed(args.out / "inputs.npz", **inputs)
    np.savez_compressed(args.out / "outputs.npz", **outputs)
    provenance = {
        "what": "outputs of the IF4 authors' reference quantizer "
                "(fouroversix.quantize.pytorch.reference.quantize) on the tensors in inputs.npz",
        "authors_repository": "https://github.com/mit-han-lab/fouroversix",
        "authors_commit": args.authors_commit or git_commit(args.authors_src),
        "authors_file": "src/fouroversix/quantize/pytorch/reference.py",
        "call": "quantize(x, fp4_format=DataType(format), scale_rule=static_6 for nvfp4 and "
                "nvint4, mse for if4, round_style=nearest, use_blackwell_scale_layout=False)",
        "date": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "devices": {dev: (torch.cuda.get_device_name(torch.device(dev)) if dev.startswith("cuda")
                          else cpu_name())
                    for dev in devices},
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "command": "python3 scripts/authors_quantizer.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
        "tensors": {**{name: list(make_tensor(name).shape) for name in TENSORS},
                    "large": list(LARGE_SHAPE)},
        "near_ties_order_sensitive_blocks": getattr(make_near_ties, "sensitive", None),
        "dtypes": list(DTYPES),
        "formats": list(FORMATS),
    }
    (args.out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
