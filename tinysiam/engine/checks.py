"""Argument checks, in one place: every layer of tinysiam refuses a bad number with the same words.

``check_number("margin", 0, low=0, low_included=False)`` raises
``ValueError("margin must be a finite number > 0, got 0")``. The ``*_problem``
functions return that phrase without the name (None when the value is fine),
for callers that raise their own error type (the training config's).
Booleans are refused as numbers: ``True`` is an int to Python, never a size.
"""
import math
import numbers


def number_problem(value, low=None, high=None, low_included=True):
    """Why ``value`` is not a finite real number in [low, high) (or (low, high)), or None if it is."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (low is None or (value >= low if low_included else value > low)) and (high is None or value < high)
    if ok:
        return None
    bounds = ([f"{'>=' if low_included else '>'} {low}"] if low is not None else []) + \
        ([f"< {high}"] if high is not None else [])
    return " ".join(["must be a finite number", " and ".join(bounds)]).rstrip() + f", got {value!r}"


def integer_problem(value, low=None):
    """Why ``value`` is not an integer >= ``low``, or None if it is (NumPy integers count)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and (low is None or value >= low):
        return None
    return f"must be an integer{'' if low is None else f' >= {low}'}, got {value!r}"


def check_number(name, value, low=None, high=None, low_included=True):
    """``value`` if it is a finite real number in range, else ValueError naming ``name``."""
    problem = number_problem(value, low, high, low_included)
    if problem:
        raise ValueError(f"{name} {problem}")
    return value


def check_integer(name, value, low=None):
    """``value`` if it is an integer >= ``low``, else ValueError naming ``name``."""
    problem = integer_problem(value, low)
    if problem:
        raise ValueError(f"{name} {problem}")
    return value


def int_pair(name, value):
    """``value`` as (a, b): an int is used for both, else a pair of ints; ValueError naming ``name`` otherwise."""
    pair = (value, value) if isinstance(value, numbers.Integral) else tuple(value) if hasattr(value, "__len__") else ()
    if len(pair) != 2 or integer_problem(pair[0]) or integer_problem(pair[1]):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair
