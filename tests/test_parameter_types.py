"""A parameter of the wrong type raises TypeError (Amaranth's and Python's convention) that is
also a ValueError (the toolkit's bad-parameter error), with a one-line message naming it."""

from __future__ import annotations

import pytest

from if4mac.errors import ParameterTypeError
from if4mac.golden import MacConfig
from if4mac.golden.formats import FloatFormat, check_block_size
from if4mac.golden.fused import exact_acc_width


def _hdl_cases():
    from if4mac.hdl.chipware import ChipWareFP
    from if4mac.hdl.fp import BINARY32, FPAdd, FPMul, FPRound, LeadingZeroCounter
    from if4mac.hdl.fp.raw import FPDecode, raw_float_layout

    return [
        (lambda: FPAdd(BINARY32, ieee=1), "FPAdd ieee must be a bool"),
        (lambda: FPAdd("binary32", ieee=True), "FPAdd fmt must be a FloatFormat"),
        (lambda: FPMul(BINARY32, BINARY32, BINARY32, ieee="yes"), "FPMul ieee must be a bool"),
        (lambda: FPRound(BINARY32, sig_width=24.0, exp_bounds=(0, 1), ieee=False), "FPRound sig_width"),
        (lambda: LeadingZeroCounter(8.0), "LeadingZeroCounter width"),
        (lambda: FPDecode(BINARY32, ieee=None), "FPDecode ieee must be a bool"),
        (lambda: raw_float_layout(True, (0, 1), ieee=False), "raw float sig_width"),
        (lambda: ChipWareFP("add", BINARY32, flush=0), "ChipWareFP flush must be a bool"),
    ]


@pytest.mark.parametrize("make, message", [
    (lambda: check_block_size(16.0), "block_size must be a positive integer"),
    (lambda: check_block_size(True), "block_size must be a positive integer"),
    (lambda: MacConfig("if4", "16"), "block_size must be a positive integer"),
    (lambda: FloatFormat(8.0, 23), "FloatFormat exp_bits must be an integer"),
    (lambda: exact_acc_width("if4", 2, 60.0), "acc_width must be an integer"),
])
def test_golden_wrong_types(make, message):
    with pytest.raises(TypeError, match=message) as info:
        make()
    assert isinstance(info.value, ValueError) and isinstance(info.value, ParameterTypeError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("case", range(8))
def test_hdl_wrong_types(case):
    make, message = _hdl_cases()[case]
    with pytest.raises(TypeError, match=message) as info:
        make()
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_wrong_values_stay_value_errors():
    """Right type, wrong value: a ValueError that is not a TypeError."""
    from if4mac.hdl.fp import LeadingZeroCounter

    for make in (lambda: check_block_size(0), lambda: FloatFormat(1, 23),
                 lambda: LeadingZeroCounter(0), lambda: exact_acc_width("if4", 2, 8)):
        with pytest.raises(ValueError) as info:
            make()
        assert not isinstance(info.value, TypeError)
