"""Ensembles: replicates of one scenario, with seeds derived from one base seed, summarised
as the mean and quantile bands (5/25/50/75/95%) of every yearly metric.

Replicates are independent of `n_jobs` and of the order they finish in: replicate r always
runs with seed `replicate_seeds(base, reps)[r]`, and with parameter draws (a calibration's
`draws.csv`, `fupin_sim.experiments.draws`) with draw r mod their number, so the bands carry
the parameters' uncertainty as well as chance.
"""
from __future__ import annotations

import pandas as pd

from fupin_sim.experiments.draws import scenarios_over
from fupin_sim.experiments.executor import execute
from fupin_sim.experiments.seeds import replicate_seeds
from fupin_sim.results import Result, manifest, simulate
from fupin_sim.scenario import Scenario

QUANTILES = {"q05": 0.05, "q25": 0.25, "q50": 0.5, "q75": 0.75, "q95": 0.95}


def one_run(task: tuple[Scenario, int]) -> tuple[pd.DataFrame, dict]:
    """Worker: (summary, population manifest) of one (scenario, seed)."""
    result = simulate(*task)
    return result.summary, result.manifest["population"]


def run_ensemble(scenario: Scenario, reps: int, n_jobs: int = 1, parameter_sets: list[dict] | None = None,
                 draws_file: str | None = None) -> Result:
    """`reps` replicates of `scenario`; with `parameter_sets` (overrides, e.g. from
    `draws.read_draws(draws_file)`) replicate r runs with set r mod their number."""
    if reps < 1:
        raise ValueError("reps must be at least 1")
    seeds = replicate_seeds(scenario.seed, reps)
    scenarios = scenarios_over(scenario, parameter_sets, draws_file) if parameter_sets else [scenario]
    runs, _ = execute(one_run, [(scenarios[r % len(scenarios)], s) for r, s in enumerate(seeds)], n_jobs=n_jobs)
    frames = [summary for summary, _ in runs]
    replicates = pd.concat([f.assign(rep=r, seed=s) for r, (f, s) in enumerate(zip(frames, seeds))],
                           ignore_index=True)
    if parameter_sets:
        replicates["draw"] = replicates["rep"] % len(scenarios)
    metrics = [c for c in frames[0].columns if c != "year"]
    summary = replicates.groupby("year", as_index=False)[metrics].mean()
    bands = bands_of(replicates, metrics)
    man = manifest(scenario, scenario.seed, runs[0][1]["origin"], runs[0][1]["households_simulated"],
                   replicates=reps, replicate_seeds=seeds, summary="mean over replicates")
    if scenario.instrument_scale:
        man["instrument_scale"] = scenario.instrument_scale
    if parameter_sets:
        man["parameter_draws"] = {"file": draws_file, "count": len(parameter_sets), "used": min(reps, len(scenarios)),
                                  "rule": "replicate r runs with draw r mod count", "sets": parameter_sets}
    return Result(summary=summary, manifest=man, params=scenario.params, replicates=replicates, bands=bands)


def bands_of(replicates: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Long table: year, metric, q05, q25, q50, q75, q95."""
    long = replicates.melt(id_vars=["year"], value_vars=metrics, var_name="metric")
    grouped = long.groupby(["year", "metric"])["value"]
    out = pd.concat({name: grouped.quantile(q) for name, q in QUANTILES.items()}, axis=1).reset_index()
    return out.sort_values(["metric", "year"], ignore_index=True)
