"""Synthesis flows (Yosys, ABC, OpenSTA, nextpnr) and the NVFP4 / IF4 comparison report.

* :func:`synthesize` -- one configuration on one target (``asic`` or ``ecp5``), returning a
  JSON-ready record; :func:`write_result` / :func:`summary` save and describe it.
* :func:`generate_report` -- every configuration side by side, written to ``reports/``.
* :func:`find_library` / :func:`user_library` -- the Liberty libraries, checked.

The command line is ``if4mac synth`` and ``if4mac report`` (:mod:`.cli`); docs/synthesis.md
describes the flows.
"""

from .flow import TARGETS, summary, synthesize, write_result
from .libraries import LIBRARIES, find_library, user_library
from .report import generate_report

__all__ = ["TARGETS", "LIBRARIES", "synthesize", "write_result", "summary",
           "generate_report", "find_library", "user_library"]
