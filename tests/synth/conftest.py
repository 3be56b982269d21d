"""Shared fixtures for the synthesis tests: small configurations, run once per session.

Every synthesis here is a block-2 MAC or an 8 x 8 multiplier, so the whole directory stays
within a few minutes on two cores; the block-16 numbers live in reports/.
"""

from __future__ import annotations

import pytest

from if4mac.synth.flow import synthesize


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("synth")


@pytest.fixture(scope="session")
def mac2_asic(synth_dir):
    """IF4 MAC, block 2, pipelined tree, Nangate 45."""
    return synthesize(target="asic", unit="if4", block_size=2, reduction="pipelined",
                      library="nangate45", workdir=synth_dir / "asic")


@pytest.fixture(scope="session")
def mac2_ecp5(synth_dir):
    """IF4 MAC, block 2, pipelined tree, ECP5 inside the serial pin wrapper."""
    return synthesize(target="ecp5", unit="if4", block_size=2, reduction="pipelined",
                      workdir=synth_dir / "ecp5")
