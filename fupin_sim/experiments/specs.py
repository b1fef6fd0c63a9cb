"""What the spec files of experiments (sweeps, sensitivity, calibration) share: reading one,
and the scenario it names, sized by its `households` and `years`. Every error names the
file and the key path."""
from __future__ import annotations

from pathlib import Path

from fupin_sim.checks import parse_years, whole
from fupin_sim.errors import InputError
from fupin_sim.yamlfile import read_mapping


def read_spec(spec: str | Path | dict, what: str, keys: str) -> tuple[dict, str | None, Path | None]:
    """(content, file name, path) of a spec given as a file or as its content (a dict);
    `what` names it in errors ('sweep spec'), `keys` lists its keys for an empty file."""
    if isinstance(spec, dict):
        return dict(spec), None, None
    path = Path(spec)
    if not path.is_file():
        raise InputError(f"{what} not found", file=str(spec))
    return read_mapping(path, keys), str(path), path


def sized_scenario(scenario, data: dict, file):
    """The spec's scenario with its `households` and `years` applied, and the spec's seed
    (the scenario's by default)."""
    households = data.get("households")
    if households is not None:
        households = whole(households, file, "households", 1)
    years = parse_years(data["years"], file, "years") if "years" in data else None
    scenario = scenario.edit(households=households, years=years)
    return scenario, whole(data.get("seed", scenario.seed), file, "seed", 0)
