"""The formal proofs at B = 2, and proofs that cannot fail are worthless: mutants must FAIL.

Each proof runs SymbiYosys (see formal/flow.py); a B = 2 proof takes 5 to 20 s on two
cores. The FP-unit mode proofs take far longer and are marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

import if4mac.hdl.fused as fused_module
import if4mac.hdl.mac as mac_module
from if4mac.formal import harness as H
from if4mac.formal.flow import prove, trace_inputs, trace_to_stream
from if4mac.formal.properties import overflow_acc_width, properties
from if4mac.golden import load_stimulus, run, save_stimulus
from if4mac.golden.fused import run_arch
from if4mac.golden.formats import unit_spec
from if4mac.hdl.lane_mul import LaneMul
from if4mac.hdl.mac import mac_unit

FAST = ["equiv-pipelined", "equiv-shared", "control-pipelined", "control-shared",
        "compat-pipelined", "compat-shared", "fpmul-modes", "fpmul-product"]
MAC_INPUTS = {"rst_n", "en", "first", "a_in", "w_in", "a_sf", "w_sf"}


@pytest.mark.parametrize("name", FAST)
def test_property_proven_at_block_size_2(name, tmp_path):
    job = properties()[name].build(2)
    result = prove(name, job.harness, tmp_path, depth=job.depth, cex_depth=job.cex_depth)
    assert result.status == "PASS", result.detail


@pytest.mark.slow
def test_fp_adder_modes(tmp_path):
    """2.5 minutes on a loaded two-core machine: too long for the default run."""
    job = properties()["fpadd-modes"].build(2)
    result = prove("fpadd-modes", job.harness, tmp_path, depth=job.depth)
    assert result.status == "PASS", result.detail


@pytest.mark.parametrize("arch, name", [("fused-fp32", "equiv-pipelined"),
                                        ("fused-exact", "control-pipelined"),
                                        ("fused-exact", "overflow"),
                                        ("fused-exact", "exact-term-bound"),
                                        ("fused-exact", "converter-equiv")])
def test_fused_architecture(arch, name, tmp_path):
    job = properties(arch)[name].build(2)
    result = prove(name, job.harness, tmp_path, depth=job.depth, cex_depth=job.cex_depth)
    assert result.status == "PASS", result.detail


def test_control_block_size_5_shared(tmp_path):
    """An odd block size: a pass-through value in the tree, L = 3 levels, busy for 2 edges."""
    job = properties()["control-shared"].build(5)
    result = prove("control-shared", job.harness, tmp_path, depth=job.depth)
    assert result.status == "PASS", result.detail


# --- Mutants ----------------------------------------------------------------------------------

def test_wrong_latency_in_the_property_fails_with_a_counterexample(tmp_path):
    """The property claims one edge more than the RTL takes: a trace from reset refutes it,
    and its beats are a stimulus file that golden accepts, with a closing beat in it."""
    top = mac_unit("if4", 2, "pipelined")
    harness = H.ControlHarness(top)
    harness._top = _LatencyOverride(top, top.latency + 1)
    result = prove("mutant", harness, tmp_path, depth=harness.induction_depth + 1,
                   cex_depth=harness.induction_depth + 1)
    assert result.status == "FAIL"
    assert "done_timing" in result.detail
    rows = trace_inputs(result.trace, MAC_INPUTS)
    stream = trace_to_stream(rows, "if4", 2)
    path = tmp_path / "cex.json"
    save_stimulus(stream, path)
    loaded = load_stimulus(path)
    assert len(run(loaded).bits) >= 1     # golden sees the closed segment whose done is late


class _LatencyOverride:
    """A MAC top that claims another latency (everything else forwarded)."""

    def __init__(self, top, latency):
        self._inner, self.latency = top, latency

    def __getattr__(self, name):
        return getattr(self._inner, name)


class _ExtraLevelTree(mac_module.PipelinedTree):
    """An RTL mutant: one register level more than the tree needs (a late `done`)."""

    @property
    def levels(self):
        return super().levels + 1


def test_rtl_mutant_extra_tree_stage_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(mac_module, "PipelinedTree", _ExtraLevelTree)
    job = properties()["control-pipelined"].build(2)
    result = prove("mutant", job.harness, tmp_path, depth=job.depth, cex_depth=job.cex_depth)
    assert result.status == "FAIL"
    assert "done_timing" in result.detail


class _WrongLaneMul(wiring.Component):
    """An RTL mutant of NVFP4's lane multiplier: wrong for the one code pair 0x7 x 0x7."""

    def __init__(self, unit):
        self._inner = LaneMul(unit)
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        m.d.comb += [inner.a.eq(self.a), inner.w.eq(self.w)]
        if hasattr(self, "a_int"):
            m.d.comb += [inner.a_int.eq(self.a_int), inner.w_int.eq(self.w_int)]
        m.d.comb += self.p.eq(inner.p ^ ((self.a == 7) & (self.w == 7)))
        return m


def test_rtl_mutant_lane_multiplier_breaks_equivalence(tmp_path, monkeypatch):
    def lane_mul(unit):
        return _WrongLaneMul(unit) if unit_spec(unit).name == "nvfp4" else LaneMul(unit)
    monkeypatch.setattr(mac_module, "LaneMul", lane_mul)
    job = properties()["equiv-pipelined"].build(2)
    result = prove("mutant", job.harness, tmp_path, depth=job.depth, cex_depth=job.cex_depth)
    assert result.status == "FAIL"
    stream = trace_to_stream(trace_inputs(result.trace, MAC_INPUTS), "if4", 2)
    enabled = stream.en
    assert ((stream.a[enabled] == 7) & (stream.w[enabled] == 7)).any(), \
        "the counterexample must feed the one wrong code pair"


def _operands(result, a_fmt, b_fmt):
    import numpy as np
    row = trace_inputs(result.trace, {"a", "b"})[0]
    a = np.array([row["a"]], dtype=a_fmt).view(np.float16 if a_fmt == np.uint16 else np.float32)
    b = np.array([row["b"]], dtype=b_fmt).view(np.float32)
    return row, a[0], b[0]


def test_fp_adder_property_without_its_operand_domain_fails(tmp_path):
    """Reduced mode reads a subnormal operand as half its value: the solver must find one."""
    result = prove("mutant", H.FPModeEquivalence("add", domain=False), tmp_path)
    assert result.status == "FAIL"
    row, _, _ = _operands(result, np.uint32, np.uint32)
    exponents = [(row[k] >> 23) & 0xFF for k in ("a", "b")]
    fractions = [row[k] & 0x7FFFFF for k in ("a", "b")]
    assert any(e == 0 and f != 0 for e, f in zip(exponents, fractions)), row


class _FixedA(wiring.Component):
    """The multiplier mode harness on the real units, with ``a`` fixed to 2**-7 (0x2000):
    a power of two keeps the search off the multiplier's hard part, ``b`` stays free."""

    A = 0x2000

    def __init__(self):
        super().__init__({"b": wiring.In(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = H.FPModeEquivalence("mul", cuts=False, domain=False)
        m.d.comb += [inner.a.eq(self.A), inner.b.eq(self.b)]
        return m


def test_fp_multiplier_property_without_its_exact_product_domain_fails(tmp_path):
    """An exact product just below 2**-126 that IEEE rounds up to the smallest normal is
    outside the multiplier's documented domain; without that assumption the proof fails,
    and numpy confirms the counterexample is such a product (on the real multipliers, not
    the free product of the proof, whose counterexamples may be products no multiplier
    makes)."""
    result = prove("mutant", _FixedA(), tmp_path)
    assert result.status == "FAIL"
    b_bits = trace_inputs(result.trace, {"b"})[0]["b"]
    a = np.array([_FixedA.A], dtype=np.uint16).view(np.float16)[0]
    b = np.array([b_bits], dtype=np.uint32).view(np.float32)[0]
    exact = abs(float(a) * float(b))              # exact: 11 x 24 significant bits
    assert 0 < exact < 2.0 ** -126
    assert abs(np.float32(a) * b) == np.float32(2.0 ** -126)


# --- fused-exact's overflow -----------------------------------------------------------------

class _LongerCountAccumulator(fused_module.WideAccumulator):
    """An RTL mutant: the beat counter lets one beat more than the stated length through."""

    def __init__(self, width, term_width, max_segment):
        super().__init__(width, term_width, max_segment + 1)


def test_rtl_mutant_late_overflow_fails_and_golden_confirms(tmp_path, monkeypatch):
    """The counterexample's beats hold a segment longer than the stated length: golden
    (run_arch, the same acc_width) lists its first beat too many, which the mutant let by."""
    monkeypatch.setattr(fused_module, "WideAccumulator", _LongerCountAccumulator)
    job = properties("fused-exact")["overflow"].build(2)
    result = prove("mutant", job.harness, tmp_path, depth=job.depth, cex_depth=job.cex_depth)
    assert result.status == "FAIL"
    assert "overflow_exact" in result.detail or "count" in result.detail, result.detail
    stream = trace_to_stream(trace_inputs(result.trace, MAC_INPUTS), "if4", 2)
    golden = run_arch(stream, arch="fused-exact", acc_width=overflow_acc_width("if4", 2))
    assert golden.overflow, "the counterexample must overflow the stated length"


class _NarrowAccumulator(fused_module.WideAccumulator):
    """An RTL mutant: the accumulator register is one bit narrower than its stated width
    (the counter still allows the stated length), so a long enough segment wraps."""

    def __init__(self, width, term_width, max_segment):
        super().__init__(width - 1, term_width, max_segment)


def test_rtl_mutant_narrow_accumulator_wraps(tmp_path, monkeypatch):
    monkeypatch.setattr(fused_module, "WideAccumulator", _NarrowAccumulator)
    job = properties("fused-exact")["overflow"].build(2)
    result = prove("mutant", job.harness, tmp_path, depth=job.depth, cex_depth=job.cex_depth)
    assert result.status == "FAIL"
    assert "exact_sum" in result.detail, result.detail


def test_overflow_property_with_a_longer_stated_length_fails(tmp_path):
    """Claiming one beat more than golden's exact_max_segment: the RTL raises overflow at a
    beat the claim calls fine, so a trace from reset refutes it."""
    from if4mac.golden.fused import exact_max_segment
    from if4mac.hdl.fused import fused_mac

    width = overflow_acc_width("if4", 2)
    top = fused_mac("fused-exact", "if4", 2, acc_width=width)
    wrong = H.OverflowHarness(top, stated_length=exact_max_segment("if4", 2, width) + 1)
    result = prove("mutant", wrong, tmp_path, depth=wrong.induction_depth,
                   cex_depth=wrong.cex_depth)
    assert result.status == "FAIL"


# --- The compat wrapper ------------------------------------------------------------------------

@pytest.mark.parametrize("mutate, failing", [
    # Lanes handed to the core in reverse order.
    (lambda text: text.replace("= a_in[i];", "= a_in[CORE_BLOCK_SIZE-1-i];"),
     "wrapped.u_core.a_in == a_in"),
    # `done` one edge late: a register between the core and the port.
    (lambda text: text.replace(".done    (done)", ".done    (done_core)").replace(
        "    localparam int CORE_BLOCK_SIZE",
        "    logic done_core;\n    always_ff @(posedge clk) done <= done_core;\n"
        "    localparam int CORE_BLOCK_SIZE"),
     "done == wrapped.u_core.done"),
])
def test_compat_wrapper_mutants_fail(mutate, failing, tmp_path):
    from if4mac.hdl.compat import compat_wrapper

    core = mac_unit("if4", 2, "pipelined")
    text = compat_wrapper(core)
    mutant = mutate(text)
    assert mutant != text
    result = prove("mutant", H.CompatWiring(core, wrapper=mutant), tmp_path)
    assert result.status == "FAIL"
    assert failing in result.detail, result.detail


def test_converter_property_without_the_extra_stage_fails(tmp_path):
    """Claiming IF4's converter as fast as NVFP4's: a trace from reset refutes it."""
    result = prove("mutant", H.ConverterEquivalence(12, lag=0), tmp_path, depth=4)
    assert result.status == "FAIL"
    assert "valid_equal" in result.detail, result.detail
