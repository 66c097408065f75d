"""One parser per kind of option value (pytest_scaling.values)."""

import argparse
import math

import pytest

from pytest_scaling.values import argument, finite_number, multipliers, positive_number, whole_number


def test_positive_numbers():
    assert positive_number("2.5") == 2.5 and positive_number(3) == 3.0 and positive_number("1e-3") == 0.001
    for bad in ["0", "-1", "inf", "nan", "x", True, None, math.inf]:
        with pytest.raises(ValueError, match=r"expected a (finite )?number"):
            positive_number(bad)


def test_finite_numbers():
    assert finite_number("-2.5") == -2.5 and finite_number(0) == 0.0 and finite_number("1e3") == 1000.0
    for bad in ["inf", "nan", "x", True, None]:
        with pytest.raises(ValueError, match=r"expected a (finite )?number"):
            finite_number(bad)


def test_whole_numbers():
    assert whole_number("2e6", 1) == 2_000_000 and whole_number("0") == 0 and whole_number(7.0, 7) == 7
    with pytest.raises(ValueError, match="expected a number, got 'two'"):
        whole_number("two")
    for bad in ["1.5", "inf", "0"]:
        with pytest.raises(ValueError, match=f"expected an integer >= 1, got '{bad}'"):
            whole_number(bad, 1)


def test_multipliers_are_distinct_positive_and_sorted():
    assert multipliers("2,0.5,1") == [0.5, 1.0, 2.0] == multipliers([2, 0.5, 1])
    for bad in ["", "1,1", "0.5,-1", "a,b", 5, [], ["1", True]]:
        with pytest.raises(ValueError, match="expected distinct finite numbers > 0"):
            multipliers(bad)


def test_argument_turns_the_reason_into_an_argparse_error():
    seconds = argument(positive_number, "expected a number of seconds > 0, got {text!r}")
    assert seconds("2") == 2.0
    with pytest.raises(argparse.ArgumentTypeError, match="expected a number of seconds > 0, got '0'"):
        seconds("0")
    with pytest.raises(argparse.ArgumentTypeError, match="expected an integer >= 1, got '0'"):
        argument(lambda text: whole_number(text, 1))("0")
