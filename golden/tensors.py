"""Tensors to quantize: read from .npy / .npz / .safetensors files, or made up on the spot.

No PyTorch: safetensors files are read through ``safetensors``' numpy side, and bfloat16
(which plain numpy lacks, and which ``safetensors.numpy`` cannot load) through ml_dtypes.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import ml_dtypes
import numpy as np

__all__ = ["load_tensor", "example_tensor", "EXAMPLE_KINDS", "hadamard_16"]

#: The built-in example distributions.
EXAMPLE_KINDS = ("gaussian", "laplace", "student-t")

#: safetensors dtypes that numpy only has through ml_dtypes (little-endian in the file).
_ML_DTYPES = {
    "BF16": ml_dtypes.bfloat16,
    "F8_E4M3": ml_dtypes.float8_e4m3fn,
    "F8_E5M2": ml_dtypes.float8_e5m2,
}

#: Student-t degrees of freedom: heavy tails with a finite variance, like LLM activations.
_STUDENT_T_DF = 3
#: Outliers added to the student-t example: about one per this many elements (at least one),
#: at this many standard deviations of the bulk, so that they set the tensor's amax.
_OUTLIER_EVERY = 1024
_OUTLIER_SIGMAS = (20.0, 60.0)


def _names(names) -> str:
    return ", ".join(repr(n) for n in names) or "(none)"


def load_tensor(path, key: str | None = None, tensor: str | None = None) -> np.ndarray:
    """One array from a ``.npy``, ``.npz`` (``key``) or ``.safetensors`` (``tensor``) file.

    ``key`` / ``tensor`` may be left out when the file holds exactly one array. The dtype is
    kept (bfloat16 comes back as ``ml_dtypes.bfloat16``). Every problem -- a missing file, an
    unknown extension, a name that is missing or needed, an unreadable file -- raises a
    one-line ``ValueError``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    ext = path.suffix.lower()
    if ext not in (".npy", ".npz", ".safetensors"):
        raise ValueError(f"unknown tensor file extension {path.suffix!r} ({path.name}): "
                         f"expected .npy, .npz or .safetensors")
    if ext != ".npz" and key is not None:
        raise ValueError(f"key= names an array in a .npz file; {path.name} is {ext}"
                         + (" (use tensor=)" if ext == ".safetensors" else ""))
    if ext != ".safetensors" and tensor is not None:
        raise ValueError(f"tensor= names a tensor in a .safetensors file; {path.name} is {ext}"
                         + (" (use key=)" if ext == ".npz" else ""))
    try:
        if ext == ".npy":
            return np.load(path, allow_pickle=False)
        if ext == ".npz":
            return _load_npz(path, key)
        return _load_safetensors(path, tensor)
    except _NameProblem:
        raise
    except Exception as e:  # noqa: BLE001 -- every reader's own error becomes one clear line
        detail = " ".join(str(e).split()) or type(e).__name__
        raise ValueError(f"cannot read {path}: {detail}") from e


class _NameProblem(ValueError):
    """A missing or needed array name: its message is already the one to show."""


def _pick(names: list[str], wanted: str | None, path: Path, what: str, arg: str) -> str:
    if wanted is None:
        if len(names) == 1:
            return names[0]
        raise _NameProblem(f"{path.name} holds {len(names)} {what}s; pass {arg}= one of: "
                           f"{_names(names)}")
    if wanted not in names:
        raise _NameProblem(f"no {what} {wanted!r} in {path.name}; available: {_names(names)}")
    return wanted


def _load_npz(path: Path, key: str | None) -> np.ndarray:
    with np.load(path, allow_pickle=False) as archive:
        return archive[_pick(list(archive.files), key, path, "array", "key")]


def _load_safetensors(path: Path, tensor: str | None) -> np.ndarray:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        names = list(f.keys())
        name = _pick(names, tensor, path, "tensor", "tensor")
        dtype = f.get_slice(name).get_dtype()
        if dtype not in _ML_DTYPES:
            return f.get_tensor(name)
    # safetensors' numpy loader has no bfloat16/float8: read the bytes the header points at.
    # The layout is 8 bytes of little-endian header length, the JSON header, then the data.
    with open(path, "rb") as fh:
        (header_len,) = struct.unpack("<Q", fh.read(8))
        info = json.loads(fh.read(header_len))[name]
        start, stop = info["data_offsets"]
        fh.seek(8 + header_len + start)
        raw = fh.read(stop - start)
    item = np.dtype(_ML_DTYPES[dtype]).newbyteorder("<")
    return np.frombuffer(raw, dtype=item).astype(_ML_DTYPES[dtype]).reshape(info["shape"])


def hadamard_16() -> np.ndarray:
    """The normalized 16-point Sylvester Hadamard matrix H/4 (orthonormal, symmetric), float64."""
    h = np.array([[1.0]])
    for _ in range(4):
        h = np.block([[h, h], [h, -h]])
    return h / 4


def example_tensor(kind: str, shape, seed: int = 0, *, hadamard: bool = False) -> np.ndarray:
    """A reproducible float32 example tensor.

    ``kind``: "gaussian" (standard normal), "laplace" (unit variance) or "student-t" (df=3,
    plus about one large outlier, 20 to 60 standard deviations, per 1024 elements).
    ``hadamard=True`` rotates each block of 16 along the last axis by :func:`hadamard_16`,
    which spreads outliers over their block (the last axis must then be a multiple of 16).
    The same (kind, shape, seed, hadamard) always gives the same tensor.
    """
    if kind not in EXAMPLE_KINDS:
        raise ValueError(f"unknown example kind {kind!r}: expected one of "
                         f"{', '.join(EXAMPLE_KINDS)}")
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not shape or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
        raise ValueError(f"shape must be one or more positive integers; got {shape!r}")
    if hadamard and shape[-1] % 16:
        raise ValueError(f"hadamard=True needs a last axis that is a multiple of 16; got "
                         f"{shape[-1]}")
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        x = rng.standard_normal(shape)
    elif kind == "laplace":
        x = rng.laplace(0.0, 1 / np.sqrt(2), shape)      # scale 1/sqrt(2): unit variance
    else:
        x = rng.standard_t(_STUDENT_T_DF, shape)
        flat = x.reshape(-1)
        count = max(1, flat.size // _OUTLIER_EVERY)
        where = rng.choice(flat.size, size=count, replace=False)
        sigma = np.sqrt(_STUDENT_T_DF / (_STUDENT_T_DF - 2))
        flat[where] = rng.choice([-1.0, 1.0], size=count) * sigma * \
            rng.uniform(*_OUTLIER_SIGMAS, size=count)
    if hadamard:
        blocks = x.reshape(shape[:-1] + (-1, 16))
        x = (blocks @ hadamard_16().T).reshape(shape)
    return x.astype(np.float32)
