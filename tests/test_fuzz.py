"""Property-based fuzzing (hypothesis): no input makes the toolkit print a traceback.

Over the stimulus JSON parser, the tensor loaders (.npy, .npz, .safetensors) and every
command's numeric options, any input either succeeds or ends with one ``Error: ...`` line and
exit status 2 (or, for the library calls, a ``ValueError``). Examples are bounded (and
derandomized, so CI runs the same cases every time): the whole file takes well under a
minute on the 2-core development machine.
"""

from __future__ import annotations

import io
import json
import math
import struct
import tempfile
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from if4mac.golden import StimulusFormatError, load_stimulus, parse_stimulus, run
from if4mac.golden.tensors import load_tensor
from tests.cli_harness import Reached, assert_one_line_error, invoke

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# --- the stimulus parser --------------------------------------------------------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-300, 300),
                     st.integers(), st.floats(allow_nan=True), st.text(max_size=8))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=6), inner, max_size=5)),
    max_leaves=40)
_codes = st.lists(st.integers(-2, 17), min_size=0, max_size=6)
_beat = st.fixed_dictionaries(
    {}, optional={"en": st.one_of(st.integers(-1, 2), _json), "first": st.integers(-1, 2),
                  "reset": st.integers(0, 1), "a_sf": st.integers(-1, 257),
                  "w_sf": st.one_of(st.integers(0, 255), _json), "a": _codes, "w": _codes,
                  "x": _json})
_doc = st.one_of(
    _json,
    st.fixed_dictionaries(
        {"unit": st.sampled_from(["if4", "nvfp4", "fp8", 4])},
        optional={"block_size": st.one_of(st.integers(-2, 70), _json),
                  "beats": st.lists(_beat, max_size=6), "extra": _json}))


def _check_stream(stream):
    assert 1 <= stream.block_size <= 64 and len(stream) == len(stream.en)
    run(stream)                         # whatever parses, golden can run


@FUZZ
@given(_doc)
def test_parse_stimulus_never_crashes(doc):
    try:
        stream = parse_stimulus(doc)
    except StimulusFormatError as err:
        assert "\n" not in str(err)
        return
    _check_stream(stream)


@FUZZ
@given(st.one_of(st.binary(max_size=200),
                 _doc.map(lambda d: json.dumps(d).encode()),
                 _doc.map(lambda d: json.dumps(d).encode()).flatmap(
                     lambda b: st.integers(0, len(b)).map(lambda n: b[:n]))))
def test_load_stimulus_never_crashes(data):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.json"
        path.write_bytes(data)
        try:
            stream = load_stimulus(path)
        except StimulusFormatError as err:
            assert str(path) in str(err) and "\n" not in str(err)
            return
        _check_stream(stream)


# --- the tensor loaders ---------------------------------------------------------------------

def _npy_bytes(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _valid_files():
    """(extension, bytes) of small valid tensor files, to be mutated."""
    x = np.arange(32, dtype=np.float32).reshape(2, 16)
    npz = io.BytesIO()
    np.savez(npz, a=x, b=x.astype(">f8"))
    from safetensors.numpy import save

    header = json.dumps({"w": {"dtype": "BF16", "shape": [2, 16], "data_offsets": [0, 64]}})
    header += " " * (-len(header) % 8)
    bf16 = struct.pack("<Q", len(header)) + header.encode() + bytes(64)
    return [(".npy", _npy_bytes(x)), (".npy", _npy_bytes(x.astype(">f4"))),
            (".npz", npz.getvalue()), (".safetensors", save({"t": x})),
            (".safetensors", bf16)]


_VALID = _valid_files()


@st.composite
def _mutated(draw):
    ext, data = draw(st.sampled_from(_VALID))
    data = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        if not data:
            break
        kind = draw(st.sampled_from(["flip", "cut", "insert"]))
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return ext, bytes(data)


@FUZZ
@given(st.one_of(_mutated(), st.tuples(st.sampled_from([".npy", ".npz", ".safetensors"]),
                                       st.binary(max_size=300))),
       st.sampled_from([None, "a", "b", "t", "w"]))
def test_load_tensor_never_crashes(file, name):
    ext, data = file
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{ext}"
        path.write_bytes(data)
        kwargs = {"key": name} if ext == ".npz" else {"tensor": name} if ext == ".safetensors" \
            else {}
        try:
            arr = load_tensor(path, **kwargs)
        except ValueError as err:
            assert "\n" not in str(err)
            return
        assert isinstance(arr, np.ndarray) and arr.dtype.isnative


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.one_of(_mutated(), st.tuples(st.just(".npz"), st.binary(max_size=300))))
def test_quantize_cli_on_any_file(file):
    ext, data = file
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"f{ext}"
        path.write_bytes(data)
        out = Path(tmp) / "q.npz"
        code, stdout, err = invoke("quantize", "--format", "if4", "--input", path, "-o", out)
        if code != 0:
            assert_one_line_error(code, stdout, err)
            assert not out.exists()
        # A quantize output, or any file, fed to `stimulus` as an operand.
        code, stdout, err = invoke("stimulus", "--unit", "if4", "--activations",
                                   out if out.exists() else path, "--weights",
                                   out if out.exists() else path, "-o", Path(tmp) / "s.json")
        if code != 0:
            assert_one_line_error(code, stdout, err)


# --- every command's numeric options --------------------------------------------------------

_number_text = st.one_of(
    st.integers(-10**30, 10**30).map(str),
    st.integers(-5, 100).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", "1e309", "-0", "0x10", "1_000", "", " 3", "1e-320",
                     "9" * 400, "abc"]),
)

#: (command prefix, the real work that a valid input reaches, numeric options).
_COMMANDS = [
    (["verilog", "--unit", "if4", "-o", "{tmp}/v.v"], "if4mac.golden.config.MacConfig.build",
     ["--block-size"]),
    (["stimulus", "--unit", "if4", "-o", "{tmp}/s.json"], "if4mac.cli.random_stream",
     ["--random", "--seed"]),
    (["synth", "--target", "asic", "--workdir", "{tmp}/w"], "if4mac.synth.cli.synthesize",
     ["--block-size", "--width", "--clock-ps", "--timeout"]),
    (["synth", "--target", "ecp5", "--workdir", "{tmp}/w"], "if4mac.synth.cli.synthesize",
     ["--freq-mhz"]),
    (["report", "--workdir", "{tmp}/w", "--output-dir", "{tmp}/r"],
     "if4mac.synth.report.collect", ["--block-size", "--jobs", "--timeout"]),
    (["gpu-check", "-o", "{tmp}/g.json"], "if4mac.gpu_ref.device.gpu_available",
     ["--segments", "--seed", "--chunk", "--workers"]),
    (["demo", "--workdir", "{tmp}/d"], "if4mac.golden.tensors.example_tensor", []),
]


@pytest.mark.parametrize("prefix, work, options", _COMMANDS,
                         ids=[f"{c[0][0]}-{i}" for i, c in enumerate(_COMMANDS)])
@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_numeric_options(prefix, work, options, data):
    chosen = data.draw(st.lists(st.sampled_from(options), unique=True, max_size=len(options))) \
        if options else []
    with tempfile.TemporaryDirectory() as tmp, mock.patch(work, side_effect=Reached) as stub:
        args = [a.format(tmp=tmp) for a in prefix]
        for option in chosen:
            args += [option, data.draw(_number_text, label=option)]
        if prefix[0] == "stimulus" and "--random" not in chosen:
            args += ["--random", "5"]
        try:
            code, out, err = invoke(*args)
        except Reached:
            # The command got to its real work: only with sane numbers (finite, bounded).
            values = list(stub.call_args.args) + [v for k, v in stub.call_args.kwargs.items()
                                                  if k != "seed"]
            for v in values:
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    assert math.isfinite(v) and abs(v) <= 7 * 24 * 3600 * 1e3, (args, v)
            return
        assert_one_line_error(code, out, err)
