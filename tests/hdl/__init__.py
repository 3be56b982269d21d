"""Tests of the Amaranth RTL (hdl/), each against an independent reference model."""
