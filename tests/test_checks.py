"""The one home of argument checks: the words every layer uses to refuse a bad number."""
import math
import re

import numpy as np
import pytest

from tinysiam.engine.checks import check_integer, check_number, int_pair, integer_problem, number_problem


@pytest.mark.parametrize("value", [0.5, 1, np.float32(2.5), np.int64(3)])
def test_numbers_in_range_pass_unchanged(value):
    assert check_number("x", value, low=0, high=10) is value


@pytest.mark.parametrize("value, bounds, message", [
    (0, dict(low=0, low_included=False), "x must be a finite number > 0, got 0"),
    (-1.0, dict(low=0), "x must be a finite number >= 0, got -1.0"),
    (1.0, dict(low=0, high=1), "x must be a finite number >= 0 and < 1, got 1.0"),
    (math.nan, dict(low=0), "x must be a finite number >= 0, got nan"),
    (math.inf, dict(), "x must be a finite number, got inf"),
    (True, dict(), "x must be a finite number, got True"),
    ("1", dict(), "x must be a finite number, got '1'"),
])
def test_bad_numbers_are_named_with_their_value(value, bounds, message):
    with pytest.raises(ValueError) as error:
        check_number("x", value, **bounds)
    assert str(error.value) == message
    assert message.endswith(number_problem(value, **bounds))


@pytest.mark.parametrize("value, message", [
    (0, "n must be an integer >= 1, got 0"), (2.0, "n must be an integer >= 1, got 2.0"),
    (False, "n must be an integer >= 1, got False"), (None, "n must be an integer >= 1, got None"),
])
def test_bad_integers_are_named_with_their_value(value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        check_integer("n", value, low=1)
    assert integer_problem(np.int32(5), low=1) is None and check_integer("n", np.int64(7), low=1) == 7


def test_int_pair_takes_an_int_or_two():
    assert int_pair("stride", 2) == (2, 2) and int_pair("stride", (1, np.int64(3))) == (1, 3)
    for bad in (1.5, (1, 2, 3), (1, 2.0), True, "ab"):
        with pytest.raises(ValueError, match=re.escape(f"stride must be an int or a pair of ints, got {bad!r}")):
            int_pair("stride", bad)
