"""Checks of what users write (scenario files, spec files, options): each error names the
file and the key path. A low room, like `errors`: scenarios, interventions and experiments
all use it."""
from __future__ import annotations

import math
import numbers
from typing import Any

from fupin_sim.errors import InputError, close_match

FIRST_YEAR, LAST_YEAR = 1991, 2100  # years a scenario may simulate


def check_keys(data: dict, known, file, where: str) -> None:
    """Every key of `data` is known (an unknown one is named, with a close match)."""
    for key in data:
        if key not in known:
            at = f"{where}.{key}" if where else str(key)
            raise InputError(f"unknown key{close_match(str(key), known)}; known keys: {list(known)}",
                             file=file, where=at)


def number(value, file, where) -> float | int:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise InputError(f"expected a finite number, got {value!r}", file=file, where=where)
    return value


def whole(value, file, where, low: int, what: str = "a whole number") -> int:
    """A whole number of at least `low` (spec files)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"expected {what}, got {value!r}", file=file, where=where)
    if value < low:
        raise InputError(f"must be at least {low}, got {value}", file=file, where=where)
    return value


def whole_in(value: Any, file, where, low: int | None = None, high: int | None = None) -> int:
    """A whole number within [low, high] (scenario files)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"expected a whole number, got {value!r}", file=file, where=where)
    if (low is not None and value < low) or (high is not None and value > high):
        raise InputError(f"{value} is outside [{low}, {high if high is not None else '∞'}]", file=file, where=where)
    return value


def parse_years(value: Any, file=None, where="years") -> tuple[int, int]:
    """[2016, 2020], '2016-2020' or a single year, as (first, last)."""
    if isinstance(value, str):
        parts = value.replace("–", "-").split("-")
        try:
            value = [int(x) for x in parts]
        except ValueError:
            raise InputError(f"expected years as 'A-B' or [A, B], got {value!r}", file=file, where=where) from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise InputError(f"expected years as [first, last], got {value!r}", file=file, where=where)
    first, last = (whole_in(v, file, f"{where}[{i}]", FIRST_YEAR, LAST_YEAR) for i, v in enumerate(value))
    if first > last:
        raise InputError(f"first year {first} is after last year {last}", file=file, where=where)
    return first, last
