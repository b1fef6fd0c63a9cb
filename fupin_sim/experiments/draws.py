"""Parameter draws (a calibration's `draws.csv`, `fupin_sim.experiments.abc`) that ensembles,
comparisons and forecasts run over: replicate r runs with draw r mod their number, so their
intervals carry the parameters' uncertainty as well as chance."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from fupin_sim.errors import InputError


def read_draws(path) -> list[dict]:
    """The parameter draws of a calibration: its output folder or its `draws.csv`, as a
    list of scenario parameter overrides (replicate r of an ensemble or a forecast runs with
    draw r mod their number). Errors name the file and row."""
    path = Path(path)
    file = path / "draws.csv" if path.is_dir() else path
    if not file.is_file():
        hint = " (a calibration writes draws.csv only when its spec has `abc:`)" if path.is_dir() else ""
        raise InputError(f"parameter draws not found{hint}", file=str(file))
    try:
        table = pd.read_csv(file)
    except (ValueError, pd.errors.ParserError) as e:
        raise InputError(f"is not a readable CSV table: {e}", file=str(file)) from None
    if "overrides" not in table:
        raise InputError("has no 'overrides' column: expected the draws.csv a calibration writes", file=str(file))
    if table.empty:
        raise InputError("has no draws", file=str(file))
    draws = []
    for i, text in enumerate(table["overrides"]):
        try:
            value = json.loads(text, object_pairs_hook=_years_as_numbers)
        except (TypeError, ValueError):
            value = None
        if not isinstance(value, dict) or not value:
            raise InputError(f"column overrides: expected a JSON mapping of parameter values, got {text!r}",
                             file=str(file), where=f"row {i + 2}")
        draws.append(value)
    return draws


def _years_as_numbers(pairs) -> dict:
    """A JSON object, its year keys numbers again (JSON keys are text; a dated value's are years)."""
    return {int(k) if k.isdigit() else k: v for k, v in pairs}


def scenarios_over(scenario, draws: list[dict], file: str | None = None) -> list:
    """`scenario` with each draw's overrides (validated: an unknown parameter names the
    draws file and row)."""
    out = []
    for i, d in enumerate(draws):
        try:
            out.append(scenario.edit(parameters=d, where="draw"))
        except InputError as e:
            raise InputError(f"does not fit scenario {scenario.name!r}: {e.where}: {e.detail}", file=file,
                             where=f"row {i + 2}") from None
    return out
