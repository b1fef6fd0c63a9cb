"""The few-line Python entry point for notebooks."""
from __future__ import annotations

from pathlib import Path

from fupin_sim.experiments.draws import read_draws
from fupin_sim.experiments.ensemble import run_ensemble
from fupin_sim.results import simulate
from fupin_sim.scenario import Scenario, load_scenario


def run(scenario: str | Path | Scenario = "baseline", *, households: int | None = None,
        years: tuple[int, int] | str | None = None, seed: int | None = None, reps: int = 1,
        panel: bool = False, n_jobs: int = 1, parameters: dict | None = None, draws: str | Path | None = None,
        instrument_scale: dict[str, float] | None = None):
    """Run a scenario (a bundled name, a file, or a `Scenario`).

    With `reps` > 1 the result is an ensemble: replicate seeds derived from `seed`, the
    summary is the mean over replicates, and `result.bands` holds quantile bands. `draws`
    (a calibration folder or its draws.csv) runs replicate r with parameter draw r mod their
    number, so the bands carry parameter uncertainty too. `instrument_scale`
    ({instrument: factor}) multiplies instruments' budgets (`Scenario.edit`).
    """
    sc = load_scenario(scenario).edit(households=households, years=years, seed=seed, parameters=parameters,
                                      instrument_scale=instrument_scale)
    if reps > 1 or draws is not None:
        sets = read_draws(draws) if draws is not None else None
        return run_ensemble(sc, reps=reps, n_jobs=n_jobs, parameter_sets=sets,
                            draws_file=None if draws is None else str(draws))
    return simulate(sc, panel=panel)
