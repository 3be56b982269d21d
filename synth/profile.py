"""Where a flow's time goes: per-step wall times read from a time-stamped Yosys log.

Yosys run with ``-t`` prefixes every log line with the seconds since it started
(``[00003.391060] 6. Executing ABC pass ...``). A top-level pass lasts from its own header
to the next top-level header (or the log's last stamp). The steps reported:

* ``yosys_synth`` -- reading the Verilog, ``hierarchy``/``flatten`` and the generic
  ``synth`` (which runs ABC once itself, on simple gates, without the library);
* ``abc`` -- the ``abc -liberty`` pass: technology mapping to the standard cells, the
  step that decides area and delay, and the slowest one;
* ``yosys_other`` -- flip-flop mapping, clean-up, statistics and writing the netlist.

The ASIC flow runs Yosys twice (synth/asic.py): the generic part (its log has
``yosys_synth`` and, for writing the RTLIL, ``yosys_other``) and the mapping (its log,
read with ``mapping=True``, has ``abc`` and ``yosys_other``, reading the RTLIL included).
"""

from __future__ import annotations

import re

__all__ = ["yosys_steps", "strip_stamps"]

_HEADER = re.compile(r"^\[(\d+\.\d+)\]\s+(\d+)\.\s+Executing\s+(\S+)")
_STAMP = re.compile(r"^\[(\d+\.\d+)\]")


def yosys_steps(log: str, *, mapping: bool = False) -> dict[str, float]:
    """Seconds spent in ``yosys_synth``, ``abc`` (library mapping) and ``yosys_other``.

    ``log`` is the text of a ``yosys -t`` log. Passes after the last ``synth`` other than
    ``abc`` count as ``yosys_other`` (passes between two ``synth`` runs are synthesis);
    with ``mapping`` (the log of a run that starts from the generic part's RTLIL) every
    pass but ``abc`` does. A log without time stamps gives an empty dict.
    """
    headers: list[tuple[float, str]] = []
    last = None
    for line in log.splitlines():
        mt = _HEADER.match(line)
        if mt:
            headers.append((float(mt.group(1)), mt.group(3).upper()))
        st = _STAMP.match(line)
        if st:
            last = float(st.group(1))
    if not headers or last is None:
        return {}
    steps = {"yosys_synth": 0.0, "abc": 0.0, "yosys_other": 0.0}
    # Generic synthesis lasts to the end of the last SYNTH pass: the generic script runs
    # ``synth -run :coarse``, synth's coarse passes by name, then ``synth -run fine:``.
    synth_headers = [i for i, (_, name) in enumerate(headers) if name == "SYNTH"]
    synth_end = -1 if mapping else (synth_headers[-1] if synth_headers else len(headers))
    for i, ((t, name), (t_next, _)) in enumerate(zip(headers, headers[1:] + [(last, "")])):
        if name == "ABC":
            step = "abc"
        elif i <= synth_end:
            step = "yosys_synth"
        else:
            step = "yosys_other"
        steps[step] += max(0.0, t_next - t)
    if mapping:
        del steps["yosys_synth"]
    return {k: round(v, 2) for k, v in steps.items()}


_LINE_STAMP = re.compile(r"^\[\d+\.\d+\] ?", re.M)


def strip_stamps(text: str) -> str:
    """``text`` without ``yosys -t``'s line stamps (``tee`` copies them into its files)."""
    return _LINE_STAMP.sub("", text)
