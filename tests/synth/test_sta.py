"""STA post-processing: stage numbering and report parsing, on hand-made inputs."""

from __future__ import annotations

import pytest

from if4mac.synth.sta import group_key, parse_full_path, parse_summary, stage_levels

FULL = """\
Startpoint: lane_acc_0/a[2]_reg (rising edge-triggered flip-flop clocked by clk)
Endpoint: tree/result[30]_reg (rising edge-triggered flip-flop clocked by clk)
Path Group: clk
Path Type: max

    Delay      Time   Description
-------------------------------------------------------------
   0.0000    0.0000   clock clk (rise edge)
   0.0000    0.0000   clock network delay (ideal)
   0.0000    0.0000 ^ lane_acc_0/a[2]_reg/CK (DFFR_X1)
   0.1319    0.1319 ^ lane_acc_0/a[2]_reg/Q (DFFR_X1)
   0.0161    0.1480 v lane_acc_0/_1312_/ZN (INV_X1)
   0.0454    0.1934 ^ tree/_17_/ZN (OAI22_X1)
   0.0000    0.1934 ^ tree/result[30]_reg/D (DFFR_X1)
             0.1934   data arrival time

  10.0000   10.0000   clock clk (rise edge)
   0.0000   10.0000   clock network delay (ideal)
   0.0000   10.0000   clock reconvergence pessimism
            10.0000 ^ tree/result[30]_reg/CK (DFFR_X1)
  -0.0421    9.9579   library setup time
             9.9579   data required time
-------------------------------------------------------------
             9.9579   data required time
            -0.1934   data arrival time
-------------------------------------------------------------
             9.7645   slack (MET)
"""


def test_parse_full_path():
    p = parse_full_path(FULL)
    assert p.startpoint == "lane_acc_0/a[2]_reg" and p.endpoint == "tree/result[30]_reg"
    assert p.arrival == pytest.approx(0.1934) and p.slack == pytest.approx(9.7645)
    assert p.setup == pytest.approx(0.0421)
    # period - slack = arrival + setup (ideal clock): the path's minimum clock period.
    assert 10.0 - p.slack == pytest.approx(p.arrival + p.setup)
    assert [pin for pin, _ in p.pins] == [
        "lane_acc_0/a[2]_reg/CK", "lane_acc_0/a[2]_reg/Q", "lane_acc_0/_1312_/ZN",
        "tree/_17_/ZN", "tree/result[30]_reg/D"]
    assert parse_full_path("No paths found.") is None


def test_parse_summary():
    text = ("Startpoint    Endpoint    Slack\n-----\n\n"
            "a[1]_reg/Q (DFF_X1)     p[14]_reg/D (DFF_X1)        8.8571\n"
            "b_q[0]_reg/Q (DFF_X1)   x/y[3]_reg/D (DFFR_X1)     -0.5000\n")
    assert parse_summary(text) == [("a[1]_reg/Q", "p[14]_reg/D", 8.8571),
                                   ("b_q[0]_reg/Q", "x/y[3]_reg/D", -0.5)]


def test_group_key():
    assert group_key("lane_acc_3/acc[17]_reg") == "lane_acc_3/acc_reg"
    assert group_key("m$43[0]_reg") == "m$43_reg"


def ref_longest_chain(fanin, ports):
    """Brute force: the longest simple register chain to each group from a chain start (a
    group fed by an input port, or by no register at all)."""
    best = {}

    def walk(g, depth, seen):
        if depth > best.get(g, 0):
            best[g] = depth
        for nxt, srcs in fanin.items():
            if g in srcs and nxt not in seen:
                walk(nxt, depth + 1, seen | {nxt})

    for g, srcs in fanin.items():
        if srcs & ports or not (srcs - ports - {g}):
            walk(g, 1, {g})
    return best


def test_stage_levels_on_a_mac_like_graph():
    fanin = {
        "a0": {"a_in"}, "sf0": {"a_sf"}, "v0": {"en"},
        "p": {"a0", "sf0", "v0"}, "sf1": {"sf0", "v0"}, "v1": {"v0"},
        "m": {"p", "sf1", "v1"}, "v2": {"v1"},
        "acc": {"acc", "m", "v2"},                    # the accumulator loop
        "t1": {"acc", "v2"}, "result": {"t1"},
    }
    levels = stage_levels(fanin, {"a_in", "a_sf", "en"})
    assert levels == {"a0": 1, "sf0": 1, "v0": 1, "p": 2, "sf1": 2, "v1": 2, "m": 3, "v2": 3,
                      "acc": 4, "t1": 5, "result": 6}


def test_stage_levels_collapse_loops_and_match_brute_force_on_dags():
    # A two-register loop shares one stage.
    loop = {"x": {"in"}, "y": {"x", "z"}, "z": {"y"}, "w": {"z"}}
    assert stage_levels(loop, {"in"}) == {"x": 1, "y": 2, "z": 2, "w": 3}
    # On acyclic graphs the stage is exactly the longest chain.
    import random
    rnd = random.Random(5)
    for _ in range(30):
        names = [f"r{i}" for i in range(9)]
        fanin = {n: set() for n in names}
        for i, n in enumerate(names):
            if i < 2 or rnd.random() < 0.2:
                fanin[n].add("in")
            for j in range(i):
                if rnd.random() < 0.3:
                    fanin[n].add(names[j])
        assert stage_levels(fanin, {"in"}) == ref_longest_chain(fanin, {"in"})
