"""A MAC top's ports edge by edge: what golden's results imply, and what pysim shows.

Shared by tests/hdl/test_mac.py (the reference tops) and tests/hdl/test_fused.py (the fused
tops): every architecture has the same beat ports and the same result ports (``done``, ``acc``)
plus its own sticky flags (``overrun``, ``overflow``), so one driver and one trace rule serve
all of them. The schedule (which edge samples each stream row, which edges hold ``rst_n`` low)
is the caller's, from ``test_mac.drive_schedule``.
"""

from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

__all__ = ["HALF_PERIOD", "packed", "result_ports", "sticky", "simulate_ports"]

HALF_PERIOD = 5e-9


def packed(codes: np.ndarray) -> list[int]:
    """Each row's lane codes as one integer, lane i at bits [4*i+3 : 4*i]."""
    weights = [1 << (4 * i) for i in range(codes.shape[1])]
    return [sum(int(c) * wt for c, wt in zip(row, weights)) for row in codes]


def result_ports(results, row_edge: np.ndarray, reset_edge: np.ndarray, edges: int,
                 latency: int) -> tuple[np.ndarray, np.ndarray]:
    """``done`` and ``acc`` per edge for golden ``results``: a ``done`` pulse ``latency``
    edges after each closing beat, the result on ``acc`` from then on, held until the next
    result, and 0 from each reset edge."""
    done = np.zeros(edges, dtype=bool)
    acc = np.zeros(edges, dtype=np.uint32)
    done_at = row_edge[results.close_beat] + latency
    done[done_at] = True
    events = sorted([(int(t), 1, int(bits)) for t, bits in zip(done_at, results.bits)]
                    + [(int(t), 0, 0) for t in reset_edge])
    value, cursor = 0, 0
    for t, kind, bits in events:
        acc[cursor:t] = value
        value = bits if kind else 0
        cursor = t
    acc[cursor:] = value
    return done, acc


def sticky(rows, row_edge: np.ndarray, reset_edge: np.ndarray, edges: int,
           stage: int) -> np.ndarray:
    """A sticky flag per edge: set from the edge at which each of ``rows`` reaches pipeline
    stage ``stage`` until the next reset edge."""
    flag = np.zeros(edges, dtype=bool)
    for row in rows:
        t = row_edge[row] + stage
        later = reset_edge[reset_edge >= t]
        flag[t:int(later[0]) if len(later) else edges] = True
    return flag


def simulate_ports(stream, top, row_edge: np.ndarray, reset_edge: np.ndarray, edges: int,
                   flags=()) -> dict[str, np.ndarray]:
    """Drive ``stream`` into ``top`` in the Amaranth simulator on the given schedule, and
    record ``done``, ``acc`` and each output named in ``flags`` after every rising edge."""
    a_packed, w_packed = packed(np.asarray(stream.a)), packed(np.asarray(stream.w))
    trace = {"done": np.zeros(edges, dtype=bool), "acc": np.zeros(edges, dtype=np.uint32)}
    trace.update({name: np.zeros(edges, dtype=bool) for name in flags})
    reset_set = set(reset_edge.tolist())
    edge_row = {int(e): r for r, e in enumerate(row_edge)}

    async def testbench(ctx):
        ctx.set(top.rst_n, 0)            # power-on reset (asynchronous: no edge needed)
        await ctx.delay(HALF_PERIOD)
        ctx.set(top.rst_n, 1)
        for edge in range(edges):
            row = edge_row.get(edge)
            ctx.set(top.rst_n, 0 if edge in reset_set else 1)
            if row is None:
                ctx.set(top.en, 0)
            else:
                ctx.set(top.en, int(stream.en[row]))
                ctx.set(top.first, int(stream.first[row]))
                ctx.set(top.a_in.as_value(), a_packed[row])
                ctx.set(top.w_in.as_value(), w_packed[row])
                ctx.set(top.a_sf, int(stream.a_sf[row]))
                ctx.set(top.w_sf, int(stream.w_sf[row]))
            await ctx.delay(HALF_PERIOD)
            ctx.set(top.clk, 1)
            for name, values in trace.items():
                values[edge] = ctx.get(getattr(top, name))
            await ctx.delay(HALF_PERIOD)
            ctx.set(top.clk, 0)

    sim = Simulator(top)
    sim.add_testbench(testbench)
    sim.run()
    return trace
