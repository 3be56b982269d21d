"""Stand-ins for ChipWare's ``CW_fp_add`` / ``CW_fp_mult``, built from this project's FP units.

Designs written against Cadence's closed ChipWare (or Synopsys DesignWare's ``DW_fp_*``,
which has the same port list) cannot be simulated or synthesised with open tools. The
stand-ins give those modules their public port lists, ``a``, ``b`` (IEEE packing,
``sig_width + exp_width + 1`` bits), ``rnd`` (3 bits) -> ``z``, ``status`` (8 bits), and
their parameters, and compute with :class:`~.fp.FPAdd` / :class:`~.fp.FPMul`:

* ``ieee`` variant: the full IEEE units. ``ieee_compliance=1``: IEEE 754 with subnormals,
  infinities and NaN (canonical quiet NaN ``0x7FC00000`` for binary32), bit-exact with numpy
  float32. ``ieee_compliance=0``: the same, but an operand whose exponent field is 0 reads as a
  zero of its sign and a subnormal result is flushed to a zero of its sign ("IEEE 754 without
  denormal support", as the DesignWare documentation describes the mode).
* ``reduced`` variant: the datapath units (``ieee=False``), smaller, exact only on their
  domain: zero and normal operands whose result rounds to zero or a normal number. Outside
  it the result is garbage (see :class:`~.fp.FPAdd`, :class:`~.fp.FPMul`). Only
  ``ieee_compliance=0`` is accepted.

``rnd``: only ``3'b000`` (round to nearest, ties to even) is implemented. Any other value
gives the canonical NaN on ``z`` with ``status[2]`` (invalid) set, and a simulation-time
``$error`` outside synthesis, so a design that asks for another mode never gets a silently
mis-rounded number.

``status`` (DesignWare's bit assignment): ``[0]`` zero result, ``[1]`` infinite result,
``[2]`` invalid (a NaN result, or an unsupported ``rnd``), ``[4]`` huge (an infinite result
from finite operands, i.e. overflow), ``[3]`` tiny only where ``ieee_compliance=0`` flushed a
subnormal result; ``[5]`` inexact and ``[7:6]`` are always 0 (the units do not expose their
rounding bits).

Parameters: ``CW_fp_add #(sig_width, exp_width, ieee_compliance, ieee_NaN_compliance,
arch)``, ``CW_fp_mult #(sig_width, exp_width, ieee_compliance, arch, return_signed_nans)``
(the fifth ``CW_fp_mult`` parameter is the one the IF4 authors' RTL passes positionally; its
name in the real IP is not public). ``arch`` selects a faster architecture in the real IP
and is ignored; ``ieee_NaN_compliance`` and ``return_signed_nans`` must be 0. Unsupported
widths or values instantiate a module that does not exist,
``CW_fp_add_standin_unsupported_parameters`` (``..._mult_...``), so every simulator and
synthesis tool stops at elaboration with that name in its error.

All stand-ins are combinational (latency 0), as the real ``CW_fp_add`` / ``CW_fp_mult`` are.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from if4mac.errors import ParameterTypeError

from .fp import BINARY16, BINARY32, FloatFormat, FPAdd, FPMul

__all__ = ["STANDIN_VARIANTS", "STANDIN_FORMATS", "ChipWareFP", "chipware_standins",
           "UNSUPPORTED_MODULE"]

#: ``ieee``: the IEEE 754 units; ``reduced``: the datapath units (zeros and normals only).
STANDIN_VARIANTS = ("ieee", "reduced")
#: (exp_width, sig_width) pairs the stand-ins are generated for: binary32, binary16, bfloat16.
STANDIN_FORMATS = (BINARY32, BINARY16, FloatFormat(8, 7))
#: What an unsupported parameter set instantiates (``{op}`` is ``add`` or ``mult``).
UNSUPPORTED_MODULE = "CW_fp_{op}_standin_unsupported_parameters"

#: rnd = 3'b000: round to nearest, ties to even (the only mode the FP units implement).
RND_NEAREST_EVEN = 0
STATUS_WIDTH = 8
STATUS_ZERO, STATUS_INF, STATUS_INVALID, STATUS_TINY, STATUS_HUGE = 0, 1, 2, 3, 4


class ChipWareFP(wiring.Component):
    """One fixed-width stand-in: ``z = a + b`` or ``a * b`` with ChipWare's ports.

    Combinational: ``latency = 0``, one result per cycle. See the module docstring for what
    ``variant`` and ``flush`` (``ieee_compliance=0`` in the ``ieee`` variant) do.

    Parameters
    ----------
    op : "add" or "mult"
    fmt : FloatFormat
        Operand and result format.
    variant : "ieee" or "reduced"
    flush : bool
        Flush subnormal operands and results to zero (only with ``variant="ieee"``; the
        reduced units have no subnormals to begin with).

    Ports
    -----
    a, b : In(fmt.width)
    rnd : In(3)
    z : Out(fmt.width)
    status : Out(8)
    """

    def __init__(self, op: str, fmt: FloatFormat = BINARY32, *, variant: str = "ieee",
                 flush: bool = False):
        if op not in ("add", "mult"):
            raise ValueError(f"ChipWareFP op must be 'add' or 'mult', got {op!r}")
        if not isinstance(fmt, FloatFormat):
            raise ParameterTypeError(f"ChipWareFP fmt must be a FloatFormat, got {fmt!r}")
        if variant not in STANDIN_VARIANTS:
            raise ValueError(f"ChipWareFP variant must be one of {', '.join(STANDIN_VARIANTS)}, "
                             f"got {variant!r}")
        if not isinstance(flush, bool):
            raise ParameterTypeError(f"ChipWareFP flush must be a bool, got {flush!r}")
        if flush and variant != "ieee":
            raise ValueError("ChipWareFP flush applies to the ieee variant only")
        self._op, self._fmt, self._variant, self._flush = op, fmt, variant, flush
        super().__init__({
            "a": In(fmt.width), "b": In(fmt.width), "rnd": In(3),
            "z": Out(fmt.width), "status": Out(STATUS_WIDTH),
        })

    @property
    def latency(self) -> int:
        """Cycles from operands to result: 0 (combinational)."""
        return 0

    @property
    def name(self) -> str:
        """Module name, e.g. ``cw_standin_fp_add_e8m23_ieee_ftz``."""
        return _core_name(self._op, self._fmt, self._variant, self._flush)

    def elaborate(self, platform):
        m = Module()
        fmt = self._fmt
        ieee = self._variant == "ieee"
        unit = (FPAdd(fmt, ieee=ieee) if self._op == "add"
                else FPMul(fmt, fmt, fmt, ieee=ieee))
        m.submodules.unit = unit
        a = data.View(fmt.layout, self.a)
        b = data.View(fmt.layout, self.b)

        def flushed(x):
            # Exponent field 0: a zero of the operand's sign, whatever the fraction.
            return Mux(x.exp == 0, Cat(Const(0, fmt.width - 1), x.sign), x.as_value())

        if self._flush:
            m.d.comb += [unit.a.eq(flushed(a)), unit.b.eq(flushed(b))]
        else:
            m.d.comb += [unit.a.eq(self.a), unit.b.eq(self.b)]

        out = data.View(fmt.layout, unit.result)
        subnormal_out = (out.exp == 0) & (out.man != 0)
        result = flushed(out) if self._flush else unit.result
        bad_rnd = self.rnd != RND_NEAREST_EVEN
        z = Mux(bad_rnd, Const(fmt.qnan_bits, fmt.width), result)
        m.d.comb += self.z.eq(z)

        zv = data.View(fmt.layout, self.z)
        special = zv.exp == fmt.exp_all_ones
        finite_in = (a.exp != fmt.exp_all_ones) & (b.exp != fmt.exp_all_ones)
        status = [Const(0, 1)] * STATUS_WIDTH
        status[STATUS_ZERO] = (zv.exp == 0) & (zv.man == 0)
        status[STATUS_INF] = special & (zv.man == 0)
        status[STATUS_INVALID] = (special & (zv.man != 0)) | bad_rnd
        status[STATUS_HUGE] = special & (zv.man == 0) & finite_in & ~bad_rnd
        if self._flush:
            status[STATUS_TINY] = subnormal_out & ~bad_rnd
        m.d.comb += self.status.eq(Cat(*status))
        return m


def _core_name(op: str, fmt: FloatFormat, variant: str, flush: bool) -> str:
    return f"cw_standin_fp_{op}_{fmt.tag}_{variant}" + ("_ftz" if flush else "")


def _wrapper(op: str, variant: str, formats) -> str:
    """The parameterised ``CW_fp_<op>`` module selecting a fixed-width stand-in."""
    params = (["sig_width = 23", "exp_width = 8", "ieee_compliance = 0",
               "ieee_NaN_compliance = 0", "arch = 0"] if op == "add" else
              ["sig_width = 23", "exp_width = 8", "ieee_compliance = 0", "arch = 0",
               "return_signed_nans = 0"])
    zero_param = "ieee_NaN_compliance" if op == "add" else "return_signed_nans"
    branches = []
    for fmt in formats:
        modes = ((1, False), (0, True)) if variant == "ieee" else ((0, False),)
        for compliance, flush in modes:
            branches.append((
                f"(sig_width == {fmt.man_bits} && exp_width == {fmt.exp_bits} && "
                f"ieee_compliance == {compliance} && {zero_param} == 0)",
                _core_name(op, fmt, variant, flush)))
    lines = [f"module CW_fp_{op} #(", "    parameter " + ",\n    parameter ".join(params),
             ") (",
             "    input  [sig_width+exp_width:0] a,",
             "    input  [sig_width+exp_width:0] b,",
             "    input  [2:0] rnd,",
             "    output [sig_width+exp_width:0] z,",
             "    output [7:0] status",
             ");",
             "  generate"]
    for i, (cond, core) in enumerate(branches):
        kw = "if" if i == 0 else "end else if"
        lines.append(f"    {kw} {cond} begin : g_standin")
        lines.append(f"      {core} u (.a(a), .b(b), .rnd(rnd), .z(z), .status(status));")
    lines += ["    end else begin : g_unsupported",
              f"      {UNSUPPORTED_MODULE.format(op=op)} u ();",
              "    end",
              "  endgenerate",
              "`ifndef SYNTHESIS",
              "  always @(rnd)",
              # `!=` (not `!==`): an undriven rnd (X) at time 0 is not an error.
              "    if (rnd != 3'b000)",
              f"      $error(\"CW_fp_{op} stand-in: only rnd = 3'b000 (round to nearest even) "
              "is implemented, got %b\", rnd);",
              "`endif",
              "endmodule", ""]
    return "\n".join(lines)


def chipware_standins(variant: str, formats=STANDIN_FORMATS) -> str:
    """Verilog of ``CW_fp_add`` and ``CW_fp_mult`` (and their fixed-width cores) for ``variant``."""
    from .design import emit_verilog

    if variant not in STANDIN_VARIANTS:
        raise ValueError(f"unknown stand-in variant {variant!r}; choose one of "
                         f"{', '.join(STANDIN_VARIANTS)}")
    formats = tuple(formats)
    parts = [f"// ChipWare-compatible FP stand-ins ({variant} variant), generated by "
             "if4mac from its own FP units.\n"
             "// Supported (sig_width, exp_width): "
             + ", ".join(f"({f.man_bits}, {f.exp_bits})" for f in formats)
             + (" with ieee_compliance 0 or 1" if variant == "ieee" else
                " with ieee_compliance 0")
             + "; rnd 3'b000 only. See docs/external.md.\n"]
    for op in ("add", "mult"):
        parts.append(_wrapper(op, variant, formats))
        for fmt in formats:
            flushes = (False, True) if variant == "ieee" else (False,)
            for flush in flushes:
                unit = ChipWareFP(op, fmt, variant=variant, flush=flush)
                parts.append(emit_verilog(unit, unit.name))
    return "\n".join(parts)
