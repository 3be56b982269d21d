"""Synthesis flows (Yosys, OpenSTA, nextpnr) and report generation."""
