"""The types of options, checked in plain Python: never scripted, never traced.

The constructors of the loss and metric Modules call these once, so that a string, None or a bool
where a number goes is refused by name instead of being read as one (``float("2")``) or failing
deep inside with Python's own error. The functional forms call :func:`check_number` through
:func:`unetweights.losses._reduce.check_finite_option` in eager mode only: TorchScript has already
checked the annotated types, and a traced graph sees numbers Dynamo made.
"""

import numbers
from typing import Any, List, Optional, Sequence

import numpy as np


def _is_flag(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def check_number(value: Any, name: str, expected: str = "a number") -> None:
    """Raise unless ``value`` is a real number (a Python or numpy int or float, not a bool);
    ``expected`` says what the option takes."""
    if _is_flag(value) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected {expected}, got {value!r} ({type(value).__name__})")


def checked_real(value: Any, name: str, expected: str = "a number") -> float:
    """``value`` as a float once :func:`check_number` accepts it (its range is checked elsewhere)."""
    check_number(value, name, expected)
    return float(value)


def checked_int(value: Any, name: str, expected: str = "an integer") -> int:
    """``value`` as an int: a Python or numpy integer, not a bool and not a float such as 2.5."""
    if _is_flag(value) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected {expected}, got {value!r} ({type(value).__name__})")
    return int(value)


def checked_flag(value: Any, name: str) -> bool:
    """``value`` as a bool: True or False only (``bool("False")`` is True)."""
    if not _is_flag(value):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def checked_reals(values: Any, name: str, expected: str = "a sequence of numbers, one per spatial axis") -> List[float]:
    """A sequence of numbers (a list, tuple or 1-d array, not a string) as a list of floats."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise ValueError(f"{name}: expected {expected}, got {values!r}")
    return [checked_real(value, name) for value in values]


def checked_index(value: Any, name: str = "ignore_index") -> Optional[int]:
    """An optional class index such as ``ignore_index``: None, or an integer as :func:`checked_int` takes it."""
    return None if value is None else checked_int(value, name)
