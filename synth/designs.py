"""What gets synthesised: the MAC tops, small calibration designs, and the FPGA pin wrapper.

Every design is an :class:`if4mac.hdl.design.Design` from the one emitter: for a MAC top it is
the very text ``if4mac verilog`` writes and the simulators run (:func:`mac_design`). Its
Verilog has one module per submodule, each named by its hierarchical path (e.g.
``if4_mac_b16_pipelined.lane_mul_3``), and the design carries what the flows need: the clock
and asynchronous reset ports, and its block map (area category -> child instance names, as
published by :attr:`if4mac.hdl.mac.MacUnit.blocks`).

The ASIC flow keeps one level of hierarchy: the top's direct children (one per block
instance) stay separate modules so their area can be read per block; everything below them
is flattened into them so Yosys and ABC optimise each block as a whole.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, Module, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from if4mac.golden import DEFAULT_BLOCK_SIZE, MacConfig, check_block_size, check_unit
from if4mac.hdl.design import CONTROL, Design, emit_verilog
from if4mac.hdl.design import mac_design as _mac_design
from if4mac.hdl.mac import MacUnit

__all__ = [
    "Design", "BLOCK_ORDER", "REGISTERS", "CONTROL", "mac_design", "mac_config",
    "ARCH_OPTIONS", "config_params",
    "RegisteredMultiplier", "Registered", "SerialLoader", "registered_multiplier_design",
    "lane_mul_design", "scale_mul_design", "serial_loader_design", "DESIGN_KINDS",
    "make_design", "fpga_design", "SERIAL_WIDTH",
]

#: Area categories that are not blocks: every flip-flop (the top's own glue is CONTROL).
REGISTERS = "registers"

#: Every area category in report order: the MAC's blocks as the top publishes them.
BLOCK_ORDER = tuple(name for name, _ in MacUnit.BLOCK_INSTANCES) + (CONTROL, REGISTERS)

#: Operand bits the FPGA wrapper loads per clock (one byte: two element codes).
SERIAL_WIDTH = 8


def _design(top, name: str, params: dict, blocks=()) -> Design:
    """A calibration or wrapper design (no MAC config) from the one emitter."""
    return Design(None, None, None, name, getattr(top, "latency", None),
                  emit_verilog(top, name), params, blocks=blocks)


# --- The MAC tops ------------------------------------------------------------------------------

def mac_config(unit: str | MacConfig = "if4", block_size: int = DEFAULT_BLOCK_SIZE,
               reduction: str = "pipelined", *, arch: str = "reference",
               acc_width: int | None = None, converter: str | None = None) -> MacConfig:
    """The :class:`MacConfig` the flows synthesise: ``unit`` itself when it is one (the other
    arguments must then be left at their defaults), else one built (and validated) from the
    fields."""
    if isinstance(unit, MacConfig):
        given = (block_size, reduction, arch, acc_width, converter)
        if given != (DEFAULT_BLOCK_SIZE, "pipelined", "reference", None, None):
            raise ValueError("pass either a MacConfig or its fields, not both")
        return unit
    # The flows' own callers pass a bare number: name it as the option users know.
    check_block_size(block_size, "block size")
    return MacConfig(unit, block_size, reduction, arch, acc_width, converter)


def mac_design(unit: str | MacConfig = "if4", block_size: int = DEFAULT_BLOCK_SIZE,
               reduction: str = "pipelined", *, cache_dir=None, **arch_options) -> Design:
    """The MAC top of any architecture (``MacConfig.build``) as a :class:`Design`: pass a
    :class:`MacConfig`, or its fields (``arch``, ``acc_width``, ``converter`` as keywords);
    ``cache_dir`` keeps the emitted Verilog on disk between runs."""
    return _mac_design(mac_config(unit, block_size, reduction, **arch_options),
                       cache_dir=cache_dir)


#: The keyword arguments that pick a MAC's architecture (:class:`MacConfig`'s fields).
ARCH_OPTIONS = ("arch", "acc_width", "converter")


def config_params(config: MacConfig) -> dict:
    """What a synthesis record states about a MAC configuration: unit, block size,
    reduction, architecture and the architecture's options."""
    return {"unit": config.unit, "block_size": config.block_size,
            "reduction": config.reduction, "arch": config.arch, **config.options}


# --- Calibration designs -------------------------------------------------------------------------

def _local_domain(m: Module, clk, rst_n, name: str = "sync"):
    # Explicit clk / rst_n ports (asynchronous, active low), as the MAC tops have.
    cd = ClockDomain(name, async_reset=True, local=True)
    m.domains += cd
    m.d.comb += [cd.clk.eq(clk), cd.rst.eq(~rst_n)]
    return name


class _Multiplier(wiring.Component):
    """``p = a * b``, unsigned, combinational (latency 0)."""

    def __init__(self, width: int):
        self._width = width
        super().__init__({"a": In(width), "b": In(width), "p": Out(2 * width)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(self.a * self.b)
        return m


class RegisteredMultiplier(wiring.Component):
    """An unsigned ``width`` x ``width`` multiplier between input and output registers.

    The smallest design with a real register-to-register path: it calibrates the flows and
    checks that a library parses in ABC and OpenSTA. Latency 2 (input and output
    registers), throughput one product per cycle.

    Parameters
    ----------
    width : int
        Operand bits (1..64).
    """

    def __init__(self, width: int = 8):
        if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= 64:
            raise ValueError(f"multiplier width must be an integer in 1..64, got {width!r}")
        self._width = width
        super().__init__({"clk": In(1), "rst_n": In(1), "a": In(width), "b": In(width),
                          "p": Out(2 * width)})

    @property
    def latency(self) -> int:
        return 2

    def elaborate(self, platform):
        m = Module()
        d = _local_domain(m, self.clk, self.rst_n)
        m.submodules.mul = mul = _Multiplier(self._width)
        a_q, b_q = Signal(self._width, name="a_q"), Signal(self._width, name="b_q")
        m.d[d] += [a_q.eq(self.a), b_q.eq(self.b), self.p.eq(mul.p)]
        m.d.comb += [mul.a.eq(a_q), mul.b.eq(b_q)]
        return m


class Registered(wiring.Component):
    """A combinational component (instance ``dut``) between input and output registers.

    Every ``In`` port of the component is registered on the way in and every ``Out`` port
    on the way out, so synthesis sees register-to-register paths through it alone.
    Latency 2, throughput one operation per cycle.
    """

    #: The wrapped component's instance name.
    INNER = "dut"

    def __init__(self, dut: wiring.Component):
        self._dut = dut
        ports = {"clk": In(1), "rst_n": In(1)}
        for pname, member in dut.signature.members.items():
            ports[pname] = member
        super().__init__(ports)

    @property
    def latency(self) -> int:
        return 2

    def elaborate(self, platform):
        m = Module()
        d = _local_domain(m, self.clk, self.rst_n)
        m.submodules[self.INNER] = dut = self._dut
        for pname, member in dut.signature.members.items():
            width = Shape.cast(member.shape).width
            reg = Signal(width, name=f"{pname}_q")
            port, inner = getattr(self, pname), getattr(dut, pname)
            if member.flow == In:
                m.d[d] += reg.eq(port)
                m.d.comb += inner.eq(reg)
            else:
                m.d[d] += reg.eq(inner)
                m.d.comb += port.eq(reg)
        return m


class SerialLoader(wiring.Component):
    """FPGA pin wrapper: loads the wrapped design's inputs through a narrow port.

    An FPGA package has a few hundred pins; a block-16 MAC has 148 input bits. The wrapper
    keeps every data input of ``inner`` (all ``In`` ports but ``clk``, ``rst_n`` and
    ``en``) in one ``frame`` register, loaded ``SERIAL_WIDTH`` bits per clock through
    ``din`` while ``shift`` is high (the first bits shifted in end up at the top). ``go``
    drives the inner design's ``en`` (where it has one), so a beat is issued from the
    frame in one cycle, exactly as the inner design's own input registers would see it.
    Outputs pass straight to pins.

    The frame feeds the inner design's input registers directly, so the inner design's
    register-to-register timing is unchanged; the wrapper adds ``frame`` flip-flops (about
    one per input bit, none where an input is unused) and no logic in the inner paths.

    Ports: ``clk``, ``rst_n``, ``din`` (SERIAL_WIDTH), ``shift``, ``go``, and ``inner``'s
    outputs.
    """

    #: The wrapped design's instance name (the ECP5 flow reads its cells by it).
    INNER = "mac"

    def __init__(self, inner: wiring.Component, serial_width: int = SERIAL_WIDTH):
        if isinstance(serial_width, bool) or not isinstance(serial_width, int) \
                or serial_width < 1:
            raise ValueError(f"serial width must be a positive integer, got {serial_width!r}")
        self._inner = inner
        self._serial_width = serial_width
        members = inner.signature.members
        for required in ("clk", "rst_n"):
            if required not in members:
                raise ValueError(f"SerialLoader needs an inner design with a {required!r} port")
        self._loaded = [(n, Shape.cast(mb.shape).width) for n, mb in members.items()
                        if mb.flow == In and n not in ("clk", "rst_n", "en")]
        ports = {"clk": In(1), "rst_n": In(1), "din": In(serial_width), "shift": In(1),
                 "go": In(1)}
        for pname, member in members.items():
            if member.flow == Out:
                ports[pname] = member
        super().__init__(ports)

    @property
    def frame_width(self) -> int:
        """Bits loaded per beat."""
        return sum(w for _, w in self._loaded)

    @property
    def pins(self) -> int:
        """Package pins the wrapper needs (inputs and outputs)."""
        return sum(Shape.cast(mb.shape).width for mb in self.signature.members.values())

    def elaborate(self, platform):
        m = Module()
        d = _local_domain(m, self.clk, self.rst_n, name="io")
        m.submodules[self.INNER] = inner = self._inner
        frame = Signal(self.frame_width, name="frame")
        with m.If(self.shift):
            m.d[d] += frame.eq(Cat(self.din, frame)[:self.frame_width])
        m.d.comb += [inner.clk.eq(self.clk), inner.rst_n.eq(self.rst_n)]
        if "en" in inner.signature.members:
            m.d.comb += inner.en.eq(self.go)
        lo = 0
        for pname, width in self._loaded:
            m.d.comb += getattr(inner, pname).eq(frame[lo:lo + width])
            lo += width
        for pname, member in inner.signature.members.items():
            if member.flow == Out:
                m.d.comb += getattr(self, pname).eq(getattr(inner, pname))
        return m


def registered_multiplier_design(width: int = 8) -> Design:
    """:class:`RegisteredMultiplier` as a :class:`Design` (block "multiplier")."""
    top = RegisteredMultiplier(width)
    name = f"regmul_{width}x{width}"
    return _design(top, name, {"design": "regmul", "width": width},
                   blocks=(("multiplier", ("mul",)),))


def lane_mul_design(unit: str) -> Design:
    """One lane multiplier (``if4mac.hdl.lane_mul.LaneMul``) between registers."""
    from if4mac.hdl.lane_mul import LaneMul

    name = f"{check_unit(unit)}_lane_mul_reg"
    return _design(Registered(LaneMul(unit)), name, {"design": "lane_mul", "unit": unit},
                   blocks=(("lane multipliers", (Registered.INNER,)),))


def scale_mul_design(unit: str) -> Design:
    """The scale-product unit (``if4mac.hdl.scale_mul.ScaleMul``) between registers."""
    from if4mac.hdl.scale_mul import ScaleMul

    name = f"{check_unit(unit)}_scale_mul_reg"
    return _design(Registered(ScaleMul(unit)), name, {"design": "scale_mul", "unit": unit},
                   blocks=(("scale path", (Registered.INNER,)),))


def serial_loader_design(inner: wiring.Component, name: str, params: dict) -> Design:
    """``inner`` inside a :class:`SerialLoader`, for the FPGA flow."""
    wrapper = SerialLoader(inner)
    params = dict(params, serial_width=wrapper._serial_width,
                  frame_width=wrapper.frame_width, pins=wrapper.pins)
    return _design(wrapper, name, params)


#: The designs the CLI can build, besides the MAC tops (``--unit nvfp4|if4``).
DESIGN_KINDS = ("mac", "regmul", "lane_mul", "scale_mul")


def make_design(kind: str, *, unit: str | MacConfig = "if4",
                block_size: int = DEFAULT_BLOCK_SIZE, reduction: str = "pipelined",
                width: int = 8, **arch_options) -> Design:
    """Build the design ``kind`` (one of :data:`DESIGN_KINDS`); for ``"mac"``, ``unit`` may be
    a whole :class:`MacConfig`, or ``arch_options`` (``arch``, ``acc_width``, ``converter``)
    pick the architecture."""
    if kind == "mac":
        return mac_design(unit, block_size, reduction, **arch_options)
    if kind == "regmul":
        return registered_multiplier_design(width)
    if kind == "lane_mul":
        return lane_mul_design(unit)
    if kind == "scale_mul":
        return scale_mul_design(unit)
    raise ValueError(f"unknown design {kind!r}; choose one of {', '.join(DESIGN_KINDS)}")


def fpga_design(kind: str, **kwargs) -> Design:
    """The design ``kind`` inside the :class:`SerialLoader` pin wrapper."""
    if kind == "mac":
        config = mac_config(kwargs.get("unit", "if4"),
                            kwargs.get("block_size", DEFAULT_BLOCK_SIZE),
                            kwargs.get("reduction", "pipelined"),
                            **{k: kwargs[k] for k in ARCH_OPTIONS if k in kwargs})
        inner = config.build()
        params = {"design": "mac", **config_params(config), "latency": inner.latency}
        return serial_loader_design(inner, f"ecp5_{inner.name}", params)
    if kind == "regmul":
        width = kwargs.get("width", 8)
        return serial_loader_design(RegisteredMultiplier(width), f"ecp5_regmul_{width}x{width}",
                                    {"design": "regmul", "width": width})
    if kind in ("lane_mul", "scale_mul"):
        from if4mac.hdl.lane_mul import LaneMul
        from if4mac.hdl.scale_mul import ScaleMul

        unit = check_unit(kwargs.get("unit", "if4"))
        cls = LaneMul if kind == "lane_mul" else ScaleMul
        return serial_loader_design(Registered(cls(unit)), f"ecp5_{unit}_{kind}_reg",
                                    {"design": kind, "unit": unit})
    raise ValueError(f"unknown design {kind!r}; choose one of {', '.join(DESIGN_KINDS)}")

