"""Tensors to quantize: read from .npy / .npz / .safetensors files, or made up on the spot.

No PyTorch: safetensors files are read through ``safetensors``' numpy side, and bfloat16
(which plain numpy lacks, and which ``safetensors.numpy`` cannot load) through ml_dtypes.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path

import ml_dtypes
import numpy as np

from .formats import DEFAULT_BLOCK_SIZE

__all__ = ["load_tensor", "example_tensor", "EXAMPLE_KINDS", "hadamard_16", "HADAMARD_SIZE",
           "MAX_TENSOR_ELEMENTS"]

#: Most elements a tensor file may hold for loading. Quantizing (and the error statistics the
#: CLI prints) takes about 36 bytes of memory per element, so about 10 GB at this limit, which
#: still admits a 70B-class model's largest weight matrix (8192 x 28672 = 2.3e8 elements).
MAX_TENSOR_ELEMENTS = 2**28

#: How the names of the array-picking arguments are spelled in messages (the CLI passes
#: ``{"key": "--key", "tensor": "--tensor"}``).
API_ARG_NAMES = {"key": "key=", "tensor": "tensor="}

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


def load_tensor(path, key: str | None = None, tensor: str | None = None, *,
                arg_names: Mapping[str, str] = API_ARG_NAMES) -> np.ndarray:
    """One array from a ``.npy``, ``.npz`` (``key``) or ``.safetensors`` (``tensor``) file.

    ``key`` / ``tensor`` may be left out when the file holds exactly one array. The dtype is
    kept, in native byte order (a big-endian ``.npy`` is converted; bfloat16 comes back as
    ``ml_dtypes.bfloat16``). Every problem -- a missing file, an unknown extension, a name
    that is missing or needed, an unreadable file, more than :data:`MAX_TENSOR_ELEMENTS`
    elements -- raises a one-line ``ValueError``; ``arg_names`` spells ``key``/``tensor`` in
    those messages.
    """
    path = Path(path)
    key_arg, tensor_arg = arg_names["key"], arg_names["tensor"]
    if not path.is_file():
        raise ValueError(f"no such file: {path}" if not path.exists()
                         else f"not a regular file: {path}")
    ext = path.suffix.lower()
    if ext not in (".npy", ".npz", ".safetensors"):
        raise ValueError(f"unknown tensor file extension {path.suffix!r} ({path.name}): "
                         f"expected .npy, .npz or .safetensors")
    if ext != ".npz" and key is not None:
        raise ValueError(f"{key_arg} names an array in a .npz file; {path.name} is {ext}"
                         + (f" (use {tensor_arg})" if ext == ".safetensors" else ""))
    if ext != ".safetensors" and tensor is not None:
        raise ValueError(f"{tensor_arg} names a tensor in a .safetensors file; {path.name} is "
                         f"{ext}" + (f" (use {key_arg})" if ext == ".npz" else ""))
    try:
        if ext == ".npy":
            with open(path, "rb") as fh:
                arr = _read_npy(fh, path.name)
        elif ext == ".npz":
            arr = _load_npz(path, key, key_arg)
        else:
            arr = _load_safetensors(path, tensor, tensor_arg)
        return _native(arr)
    except _NameProblem:
        raise
    except Exception as e:  # noqa: BLE001 -- every reader's own error becomes one clear line
        detail = " ".join(str(e).split()) or type(e).__name__
        raise ValueError(f"cannot read {path}: {detail}") from e


class _NameProblem(ValueError):
    """A missing or needed array name: its message is already the one to show."""


def _check_elements(shape, where: str) -> None:
    count = 1
    for n in shape:
        count *= int(n)
    if count > MAX_TENSOR_ELEMENTS:
        raise ValueError(f"{where}: {count:,} elements is more than the {MAX_TENSOR_ELEMENTS:,} "
                           f"a tensor may have (quantizing needs about 36 bytes per element; "
                           f"see docs/errors.md)")


def _native(arr: np.ndarray) -> np.ndarray:
    """``arr`` in the machine's byte order (numpy's ``.npy`` keeps a big-endian file's order)."""
    if not arr.dtype.isnative:
        return arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _read_npy(fh, name: str) -> np.ndarray:
    """One ``.npy`` array from an open file: magic and header checked before any data is read."""
    fmt = np.lib.format
    start = fh.read(len(fmt.MAGIC_PREFIX))
    if start != fmt.MAGIC_PREFIX:
        raise ValueError(f"{name} is not a .npy file (no NumPy header)")
    fh.seek(0)
    version = fmt.read_magic(fh)
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = read_header(fh)
    if dtype.hasobject:
        raise ValueError(f"{name} holds Python objects (dtype {dtype}), not numbers")
    _check_elements(shape, name)
    fh.seek(0)
    return fmt.read_array(fh, allow_pickle=False)


def _pick(names: list[str], wanted: str | None, path: Path, what: str, arg: str) -> str:
    if wanted is None:
        if len(names) == 1:
            return names[0]
        raise _NameProblem(f"{path.name} holds {len(names)} {what}s; pass {arg} one of: "
                           f"{_names(names)}")
    if wanted not in names:
        raise _NameProblem(f"no {what} {wanted!r} in {path.name}; available: {_names(names)}")
    return wanted


def _load_npz(path: Path, key: str | None, arg: str) -> np.ndarray:
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path.name} is not a .npz file (not a zip archive)")
    with zipfile.ZipFile(path) as archive:
        members = {n[:-4]: n for n in archive.namelist() if n.endswith(".npy")}
        name = _pick(list(members), key, path, "array", arg)
        with archive.open(members[name]) as fh:
            return _read_npy(fh, f"{path.name}[{name!r}]")


def _load_safetensors(path: Path, tensor: str | None, arg: str) -> np.ndarray:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        names = list(f.keys())
        name = _pick(names, tensor, path, "tensor", arg)
        _check_elements(f.get_slice(name).get_shape(), f"{path.name}[{name!r}]")
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


#: The rotation's size: one quantization block, so that it spreads an outlier over the block
#: that shares its scale (a power of two, as Sylvester's construction needs).
HADAMARD_SIZE = DEFAULT_BLOCK_SIZE


def hadamard_16() -> np.ndarray:
    """The normalized :data:`HADAMARD_SIZE`-point (16) Sylvester Hadamard matrix
    H/sqrt(16) (orthonormal, symmetric), float64."""
    h = np.array([[1.0]])
    for _ in range(HADAMARD_SIZE.bit_length() - 1):
        h = np.block([[h, h], [h, -h]])
    return h / np.sqrt(HADAMARD_SIZE)


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
    if hadamard and shape[-1] % HADAMARD_SIZE:
        raise ValueError(f"hadamard=True needs a last axis that is a multiple of "
                         f"{HADAMARD_SIZE}; got {shape[-1]}")
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
        blocks = x.reshape(shape[:-1] + (-1, HADAMARD_SIZE))
        x = (blocks @ hadamard_16().T).reshape(shape)
    return x.astype(np.float32)
