"""`if4mac formal`: its lines, its exit statuses, and a counterexample golden can run."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

import if4mac.hdl.mac as mac_module
from if4mac.cli import cli

from .test_proofs import _ExtraLevelTree


def test_proven_property_prints_one_pass_line(tmp_path):
    out = CliRunner().invoke(cli, ["formal", "--property", "fpmul-modes",
                                   "--workdir", str(tmp_path)])
    assert out.exit_code == 0, out.output
    assert re.search(r"^PASS\s+fpmul-modes\s+reference\s+-\s+[\d.]+ s$", out.output, re.M)
    assert "1 of 1 proven" in out.output


def test_counterexample_beats_run_through_golden(tmp_path, monkeypatch):
    monkeypatch.setattr(mac_module, "PipelinedTree", _ExtraLevelTree)
    out = CliRunner().invoke(cli, ["formal", "--property", "control-pipelined",
                                   "--block-size", "2", "--workdir", str(tmp_path)])
    assert out.exit_code == 1, out.output
    assert re.search(r"^FAIL\s+control-pipelined\s+reference\s+B=2 .*done_timing", out.output,
                     re.M), out.output
    vcd = re.search(r"trace: (\S+\.vcd)", out.output).group(1)
    beats = re.search(r"beats: (\S+\.json)", out.output).group(1)
    assert tmp_path.as_posix() in vcd and tmp_path.as_posix() in beats
    golden = CliRunner().invoke(cli, ["golden", "--stimulus", beats])
    assert golden.exit_code == 0, golden.output
    assert len(json.loads(golden.output)) >= 1     # the segment whose `done` came late


def test_bad_arguments_are_one_line_errors():
    for args, message in ((["--property", "nope"], "unknown property 'nope'"),
                          (["--arch", "nope"], "unknown architecture 'nope'")):
        out = CliRunner().invoke(cli, ["formal", *args])
        assert out.exit_code == 2
        assert message in out.output and "Traceback" not in out.output


def test_list_names_the_properties_and_what_is_not_proven():
    out = CliRunner().invoke(cli, ["formal", "--list", "--arch", "fused-exact"])
    assert out.exit_code == 0, out.output
    names = [line.split(":")[0] for line in out.output.splitlines()]
    assert {"overflow", "exact-term-bound", "equiv-accumulator", "converter-equiv"} <= set(names)
    assert "not proven" in names
    ref = CliRunner().invoke(cli, ["formal", "--list"])
    assert {"compat-pipelined", "compat-shared"} <= {line.split(":")[0]
                                                     for line in ref.output.splitlines()}
