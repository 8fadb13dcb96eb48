"""The small argument checks shared by the classes and the command lines."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from darts_timesclip._checks import check_positive_int, non_negative_float, positive_int


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_positive_integers_pass(value):
    check_positive_int("n", value)


@pytest.mark.parametrize("value", [0, -2, 1.0, True, "3", None])
def test_anything_else_is_refused_naming_the_argument_and_value(value):
    with pytest.raises(ValueError, match=rf"`n` must be a positive integer, got `{value!r}`"):
        check_positive_int("n", value)


def test_command_line_types():
    assert positive_int("1") == 1 and positive_int("12") == 12
    assert non_negative_float("0") == 0.0 and non_negative_float("2.5") == 2.5
    for text in ("0", "-3", "1.5", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match=rf"expected a positive integer, got `{text}`"):
            positive_int(text)
    for text in ("-0.1", "nan", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match=rf"expected a number >= 0, got `{text}`"):
            non_negative_float(text)
