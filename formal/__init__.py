"""Formal proofs of the MAC RTL: SymbiYosys (YoWASP builds) and an SMT solver from PyPI.

Every property is a harness (:mod:`.harness`): an Amaranth design that instantiates the
units under proof, states what must hold with ``Assert`` (and the input domain with
``Assume``) and is emitted by the project's Verilog path (``hdl.design.emit_verilog``).
:mod:`.flow` runs SymbiYosys on it in ``prove`` mode (k-induction with ``smtbmc``, so every
PASS is unbounded) and turns a counterexample into a waveform and, for MAC harnesses, a
stimulus file that ``if4mac golden`` and ``if4mac sim`` accept. :mod:`.properties` is the
registry that ``if4mac formal`` runs; docs/formal.md states each property in one sentence.
"""
