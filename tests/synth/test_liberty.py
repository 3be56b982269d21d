"""The Liberty reader: structure, cell functions, and the checks that guard ABC and OpenSTA."""

from __future__ import annotations

import itertools

import pytest

from if4mac.synth.liberty import (THRESHOLD_ATTRIBUTES, LibertyError, check_liberty,
                                  eval_function, parse_liberty, read_liberty)
from if4mac.synth.libraries import find_library, resolve_library, user_library

_THRESHOLDS = "\n".join(f"  {a} : 50 ;" for a in THRESHOLD_ATTRIBUTES)


def _lib(extra_cells: str = "", *, thresholds: str = _THRESHOLDS, delay_model="table_lookup",
         template_vars: str = "variable_1 : input_net_transition;\n"
                              "    variable_2 : total_output_net_capacitance;") -> str:
    return f"""
/* a hand-made library: two NANDs, a tie cell, a flip-flop */
library (toy) {{
  delay_model : {delay_model} ;
  time_unit : "1ps" ;
  capacitive_load_unit (1,ff) ;
  nom_voltage : 0.9 ;
  nom_temperature : 85 ;
  nom_process : 1 ;
{thresholds}
  lu_table_template (t2) {{
    {template_vars}
    index_1 ("1, 2");
    index_2 ("1, 2");
  }}
  cell (ND2_BIG) {{ area : 3.0 ;
    pin (A) {{ direction : input ; }}
    pin (B) {{ direction : input ; }}
    pin (Y) {{ direction : output ; function : "(A B)'" ; }}
  }}
  cell (ND2_SMALL) {{ area : 1.5 ;
    pin (A) {{ direction : input ; capacitance : 1.25 ; }}
    pin (B) {{ direction : input ; capacitance : 1.5 ; }}
    pin (Y) {{ direction : output ; function : "!(A & B)" ; }}
  }}
  cell (AN2) {{ area : 1.0 ;
    pin (A) {{ direction : input ; }}
    pin (B) {{ direction : input ; }}
    pin (Y) {{ direction : output ; function : "A*B" ; }}
  }}
  cell (BUF1) {{ area : 1.2 ;
    pin (A) {{ direction : input ; capacitance : 0.7 ; }}
    pin (Y) {{ direction : output ; function : "A" ; }}
  }}
  cell (INV1) {{ area : 0.6 ;
    pin (A) {{ direction : input ; }}
    pin (Y) {{ direction : output ; function : "!A" ; }}
  }}
  cell (TIEH) {{ area : 0.5 ; dont_use : true ;
    pin (Z) {{ direction : output ; function : "1" ; }}
  }}
  cell (DFF) {{ area : 4.5 ;
    ff (IQ, IQN) {{ next_state : "D" ; clocked_on : "CK" ; }}
    pin (D) {{ direction : input ; }}
    pin (CK) {{ direction : input ; clock : true ; }}
    pin (Q) {{ direction : output ; function : "IQ" ; }}
  }}
{extra_cells}
}}
"""


def _write(tmp_path, text, name="toy.lib"):
    path = tmp_path / name
    path.write_text(text)
    return path


def ref_function(op: str, a: int, b: int) -> int:
    return {"nand": 1 - (a & b), "and": a & b, "or": a | b, "xor": a ^ b, "nor": 1 - (a | b)}[op]


@pytest.mark.parametrize("expr,op", [
    ("!(A & B)", "nand"), ("(A B)'", "nand"), ("!(A*B)", "nand"), ("A B", "and"),
    ("A+B", "or"), ("A|B", "or"), ("A^B", "xor"), ("!A&!B", "nor"), ("(!(A | B))", "nor"),
])
def test_eval_function_matches_truth_tables(expr, op):
    for a, b in itertools.product((0, 1), repeat=2):
        assert eval_function(expr, {"A": a, "B": b}) == ref_function(op, a, b), (expr, a, b)


def test_eval_function_precedence():
    # AND binds tighter than XOR, which binds tighter than OR (Liberty's order).
    for a, b, c in itertools.product((0, 1), repeat=3):
        env = {"A": a, "B": b, "C": c}
        assert eval_function("A | B & C", env) == a | (b & c)
        assert eval_function("A ^ B C", env) == a ^ (b & c)
        assert eval_function("A + B ^ C", env) == a | (b ^ c)


@pytest.mark.parametrize("bad", ["A &", "(A", "A $ B", "Q"])
def test_eval_function_rejects_bad_input(bad):
    with pytest.raises(LibertyError):
        eval_function(bad, {"A": 1, "B": 0})


def test_toy_library_facts(tmp_path):
    info = check_liberty(read_liberty(_write(tmp_path, _lib())))
    assert info.name == "toy"
    assert set(info.cells) == {"ND2_BIG", "ND2_SMALL", "AN2", "BUF1", "INV1", "TIEH", "DFF"}
    assert info.nand2.name == "ND2_SMALL"          # the smaller of the two NANDs
    assert info.nand2.input_caps == {"A": 1.25, "B": 1.5}
    assert info.buffer.name == "BUF1"               # not the (smaller) inverter
    assert info.tie_high == ("TIEH", "Z")           # found although dont_use
    assert info.tie_low is None
    assert info.cells["DFF"].sequential and not info.cells["AN2"].sequential
    assert info.time_unit_ps == 1.0
    assert info.corner() == "nominal, 0.9 V, 85 C, process 1"
    comb, seq = info.area_of({"ND2_SMALL": 4, "DFF": 2, "AN2": 1})
    assert (comb, seq) == (4 * 1.5 + 1.0, 2 * 4.5)
    with pytest.raises(LibertyError, match="NOPE"):
        info.area_of({"NOPE": 1})


@pytest.mark.parametrize("kwargs,message", [
    ({"thresholds": ""}, "missing threshold attributes: input_threshold_pct_rise"),
    ({"delay_model": "generic_cmos"}, "need table_lookup"),
    ({"template_vars": "variable_1 : input_net_transition;"}, "no two-dimensional"),
])
def test_check_rejects_what_abc_and_opensta_reject(tmp_path, kwargs, message):
    path = _write(tmp_path, _lib(**kwargs))
    with pytest.raises(LibertyError, match=message):
        user_library(path)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(LibertyError, match="not found"):
        read_liberty(tmp_path / "missing.lib")
    with pytest.raises(LibertyError, match="not a Liberty file"):
        read_liberty(_write(tmp_path, "library (x) { cell (A) { area : 1 ; ", "cut.lib"))
    with pytest.raises(LibertyError, match="not a Liberty file"):
        parse_liberty("module foo; endmodule")


def test_resolve_library_arguments(tmp_path):
    path = _write(tmp_path, _lib())
    assert resolve_library(None, path).key == "user"
    with pytest.raises(LibertyError, match="not both"):
        resolve_library("nangate45", path)
    with pytest.raises(LibertyError, match="unknown library"):
        find_library("sky130")


@pytest.mark.parametrize("key,nand2,corner", [
    ("nangate45", "NAND2_X1", "typical, 1.1 V, 25 C"),
    ("osu018", "NAND2X1", "typical, 1.8 V, 25 C"),
])
def test_open_libraries_are_found_and_usable(key, nand2, corner):
    lib = find_library(key)
    assert lib.info.nand2.name == nand2
    assert lib.corner.startswith(corner)
    # Enough cells for synthesis: flip-flops with asynchronous reset, and both NAND2 forms.
    assert sum(c.sequential for c in lib.info.cells.values()) >= 3
    assert lib.nand2_area > 0
