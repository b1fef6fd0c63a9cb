"""Validation helpers shared by the spec files users write (sweeps, sensitivity,
calibration): every error names the file and the key path."""
from __future__ import annotations

from fupin_sim.checks import parse_years, whole


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
    households = data.get("households")
    if households is not None:
        households = whole(households, file, "households", 1)
    years = parse_years(data["years"], file, "years") if "years" in data else None
    scenario = scenario.edit(households=households, years=years)
    return scenario, whole(data.get("seed", scenario.seed), file, "seed", 0)
