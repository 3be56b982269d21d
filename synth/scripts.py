"""Script templates for Yosys (ASIC and ECP5) and OpenSTA, filled in by the flows.

They are :class:`string.Template` texts (``$name`` placeholders, ``$$`` for a literal
dollar). Each flow writes the filled-in script next to its outputs, so every run can be
repeated by hand with the same tool.
"""

from __future__ import annotations

from string import Template

__all__ = ["YOSYS_ASIC", "YOSYS_ASIC_GENERIC", "YOSYS_ASIC_MAP", "YOSYS_ECP5", "STA_TIMING", "STA_GROUPS", "STA_PATHS"]

#: Yosys, the generic part of standard-cell synthesis: everything before the library and
#: the clock target come in, so one run serves every clock target, ABC seed and library of
#: a design (synth/asic.py). The top's children keep their own modules (their area is read
#: per block); everything below them is flattened into them. Flip-flops are renamed after
#: the signal they hold, so STA reports read ``lane_acc_3/acc[7]_reg``. The result is
#: written as RTLIL, Yosys's own lossless form of its design database.
#:
#: ``synth``'s coarse steps are written out (Yosys 0.23's list, ``help synth``) so that
#: ``share`` runs with ``-fast``: the full SAT-based pass took 693 and 918 s of the generic
#: part's 908 and 1,178 CPU-s on the authors' NVFP4 and IF4 MACs with IEEE stand-ins, and
#: with ``-fast`` the RTLIL of every design the report maps is byte for byte the same
#: (docs/synthesis.md, "Bounded share"; tests/synth/test_split_flow.py checks it).
_GENERIC = """\
read_verilog $verilog
hierarchy -check -top $top
$keep_hierarchy
flatten
synth -top $top -run :coarse
proc
opt_expr
opt_clean
check
opt -nodffe -nosdff
fsm
opt
wreduce
peepopt
opt_clean
alumacc
share -fast
opt
memory -nomap
opt_clean
synth -top $top -run fine:
rename -wire -suffix _reg t:$$_*DFF*
"""
YOSYS_ASIC_GENERIC = Template("# if4mac ASIC synthesis, generic part: $top\n" + _GENERIC
                              + "write_rtlil $rtlil\n")

#: Yosys, standard-cell mapping of the generic part's RTLIL: flip-flops, ABC (with the
#: clock as its delay target), ties, statistics, the netlist for OpenSTA.
_MAP = """\
dfflibmap -liberty $liberty
abc $abc_options -liberty $liberty
opt_clean -purge
setundef -zero
$hilomap
$insbuf
opt_clean -purge
tee -q -o $stat_json stat -json
tee -q -o $stat_txt stat -liberty $liberty
# Bit-level nets: OpenSTA's Verilog reader rejects assignments to concatenations.
splitnets
opt_clean -purge
write_verilog -noattr -noexpr -nohex -nodec $netlist
"""
YOSYS_ASIC_MAP = Template("# if4mac ASIC synthesis, mapping: $top -> $library_name\n"
                          "read_rtlil $rtlil\n" + _MAP)

#: Both parts in one Yosys process, as the flow ran before it was split: kept so a test
#: can check that going through RTLIL on disk changes no result.
YOSYS_ASIC = Template("# if4mac ASIC synthesis, one process: $top -> $library_name\n"
                      + _GENERIC + _MAP)

#: Yosys (yowasp), Lattice ECP5. The pin wrapper is the top; the wrapped design ($inner)
#: stays a separate module through synthesis so its cells can be counted apart from the
#: wrapper's, then everything is flattened for nextpnr.
YOSYS_ECP5 = Template("""\
# if4mac ECP5 synthesis: $top
read_verilog $verilog
hierarchy -check -top $top
setattr -mod -set keep_hierarchy 1 $inner
synth_ecp5 -top $top
tee -q -o $stat_json stat -json
# The mapped netlist with the design still its own module, for gate-level simulation (not
# written when the run goes on to place and route: ~100 MB at B = 16 that nothing reads).
$write_netlist_v
setattr -mod -unset keep_hierarchy $inner
flatten
opt_clean
write_json $netlist
""")

_STA_SETUP = """\
# if4mac static timing: $top, $library_name
read_liberty $liberty
read_verilog $netlist
link_design $top
$wire_load
create_clock -name clk -period $period [get_ports $clock]
set_input_delay 0 -clock clk [delete_from_list [all_inputs] [get_ports $clock]]
set_output_delay 0 -clock clk [all_outputs]
$io_drive
$false_paths
"""

#: OpenSTA, pass 1: the register-to-register critical path, the I/O paths, and ($groups:
#: :data:`STA_GROUPS` or nothing) every register endpoint's worst path (summary) and for
#: each register group (a register's bits) the startpoints of its fan-in cone, from which
#: the flow numbers the pipeline stages.
STA_TIMING = Template(_STA_SETUP + """\
puts "@@critical"
report_checks -from [all_registers -clock_pins] -to [all_registers -data_pins] \\
    -path_delay max -format full -digits 4
set data_inputs [delete_from_list [all_inputs] [get_ports {$clock $reset}]]
puts "@@input"
report_checks -from $$data_inputs -to [all_registers -data_pins] \\
    -path_delay max -format full -digits 4
puts "@@output"
report_checks -from [all_registers -clock_pins] -to [all_outputs] \\
    -path_delay max -format full -digits 4
puts "@@through"
report_checks -from $$data_inputs -to [all_outputs] -path_delay max -format full -digits 4
$groups
puts "@@end"
""")

#: The endpoint and fan-in listings of pass 1 (only where the stage table is wanted: they
#: are the slow part of pass 1 on a block-16 MAC). Tcl, inserted into :data:`STA_TIMING`.
STA_GROUPS = Template(r"""puts "@@endpoints"
report_checks -from [all_registers -clock_pins] -to [all_registers -data_pins] \
    -path_delay max -group_count 10000000 -endpoint_count 1 -format summary -digits 4
puts "@@groups"
set reps [dict create]
foreach cell [all_registers -cells] {
    regsub -all {\[[0-9]+\]} [get_full_name $$cell] {} key
    if {![dict exists $$reps $$key]} {
        dict set reps $$key [list $$cell $$cell]
    } else {
        dict set reps $$key [list [lindex [dict get $$reps $$key] 0] $$cell]
    }
}
dict for {key cells} $$reps {
    puts "@@group $$key"
    foreach cell $$cells {
        foreach pin [get_fanin -to [get_pins -of_objects $$cell -filter "direction == input"] \
                -startpoints_only -flat] {
            puts "@@from [get_full_name $$pin]"
        }
    }
}
""").substitute()

#: OpenSTA, pass 2: the full worst path into each pipeline stage ($paths: a Tcl list of
#: {start-instance end-pin} pairs, brackets escaped).
STA_PATHS = Template(_STA_SETUP + """\
foreach pair {$paths} {
    puts "@@path"
    report_checks -from [get_cells [lindex $$pair 0]] -to [get_pins [lindex $$pair 1]] \\
        -path_delay max -format full -digits 4
}
puts "@@end"
""")
