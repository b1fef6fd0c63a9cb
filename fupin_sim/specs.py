"""Validation helpers shared by the spec files users write (sweeps, sensitivity,
calibration): every error names the file and the key path."""
from __future__ import annotations

import math
import numbers

from fupin_sim.errors import InputError, close_match


def check_keys(data: dict, known, file, where: str) -> None:
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
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"expected {what}, got {value!r}", file=file, where=where)
    if value < low:
        raise InputError(f"must be at least {low}, got {value}", file=file, where=where)
    return value


def scaled(value, factor, integer: bool):
    if isinstance(value, dict):
        return {k: scaled(v, factor, integer) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scaled(v, factor, integer) for v in value]
    x = value * factor
    return int(round(x)) if integer else float(x)


def sized_scenario(scenario, data: dict, file):
    """The spec's scenario with its `households` and `years` applied, and the spec's seed
    (the scenario's by default)."""
    from fupin_sim.scenario import parse_years

    households = data.get("households")
    if households is not None:
        households = whole(households, file, "households", 1)
    years = parse_years(data["years"], file, "years") if "years" in data else None
    scenario = scenario.with_options(households=households, years=years)
    return scenario, whole(data.get("seed", scenario.seed), file, "seed", 0)
