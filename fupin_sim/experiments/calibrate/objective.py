"""A calibration's objective: the simulated moments of a run (the engine's summary and the
:data:`DERIVED` columns, observed year by year), and the distance of a parameter vector,
Σ weight × ((simulated − observed) / sd)² over the target rows, where the simulated moment
is the mean over the replicates. Every replicate uses the same seeds at every parameter
vector, so the objective moves with the parameters, not with the draws.

* **Derived moments** are computed from the household state each year, beside the
  engine's summary columns: shares of the register at the start, exits in persons, exits
  that pass the income test without the year's programme transfers ("development" exits,
  as against exits carried by the social-assistance backstop), and the income of every
  filed (建档立卡) household, exited or not.
* **Evaluations** go through the executor with the trial log as its store: a batch of
  vectors (a generation of the optimiser) runs in parallel, and a vector already in the log
  is not simulated again.
"""
from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from fupin_sim.experiments.calibrate.trials import Trial, TrialLog, trial_key
from fupin_sim.experiments.executor import execute
from fupin_sim.metrics import Metric
from fupin_sim.population import schema as S
from fupin_sim.population.rules import poverty_line
from fupin_sim.results import summary_columns
from fupin_sim.scenario import Scenario
from fupin_sim.simulation import Observer, Simulation
from fupin_sim.status import test_income

METRICS = (  # the moments derived from the household state, beside the engine's summary columns
    Metric("registered_share", "ratio", "share", "Registered share of households", "建档立卡户占比",
           about="registered households / households (end of year)"),
    Metric("registered_persons_share", "ratio", "share", "Registered share of persons", "建档立卡人口占比",
           about="registered persons / persons (end of year)"),
    Metric("registered_persons_ratio", "ratio", "share", "Registered persons / starting register", "在册贫困人口/期初人数",
           about="registered persons at the end of the year / registered persons at the start of the first year "
                 "(the register's stock before the run)"),
    Metric("exits_persons_share", "ratio", "share", "Exits (persons) / starting register", "当年脱贫人数/期初人数",
           about="exits_persons / registered persons at the start of the first year"),
    Metric("cum_exits_persons_share", "ratio", "share", "Cumulative exits / starting register", "累计脱贫人数/期初人数",
           about="cumulative exits_persons from the first year to this one / registered persons at the start of the "
                 "first year (administrative exits, relapsed and re-exited counted again, as official cumulative "
                 "exit figures do)"),
    Metric("exits_development_persons_share", "ratio", "share", "Development exits / starting register",
           "开发式脱贫人数/期初人数",
           about="persons exiting in the year whose per-capita test income without the year's programme transfers "
                 "(低保, 特困, aged support and the other instruments paid as transfer income: the backstop 兜底保障) "
                 "already clears the exit line / registered persons at the start"),
    Metric("cum_development_exit_share", "ratio", "share", "Development share of cumulative exits", "累计开发式脱贫占比",
           about="cumulative development exits (persons, as above) / cumulative exits (persons)"),
    # over the register as adjusted (动态调整): everyone on it during the run, as a province reports
    # its register after the adjustments (Jiangsu's 2.542 m, 003); the model removes nobody
    # wrongly registered, so its entrants stand in for the net of entries and removals
    Metric("registered_persons_of_adjusted", "ratio", "share", "Registered persons / adjusted register",
           "在册贫困人口/动态调整后建档立卡人数",
           about="registered persons at the end of the year / persons ever on the register in the run (the starting "
                 "register and every household newly registered up to the last year, at registration)"),
    Metric("exits_persons_of_adjusted", "ratio", "share", "Exits (persons) / adjusted register",
           "当年脱贫人数/动态调整后建档立卡人数", about="exits_persons / persons ever on the register in the run"),
    Metric("cum_exits_persons_of_adjusted", "ratio", "share", "Cumulative exits / adjusted register",
           "累计脱贫人数/动态调整后建档立卡人数",
           about="cumulative exits_persons from the first year / persons ever on the register in the run"))
ADJUSTED = ("registered_persons_of_adjusted", "exits_persons_of_adjusted", "cum_exits_persons_of_adjusted")
DERIVED = {m.name: m.about for m in METRICS}


class Moments(Observer):
    """The :data:`DERIVED` columns of each year of the scenario's years, from the household
    state: persons registered at the start, who exited in the year, and with what income."""

    def start(self, sim: Simulation) -> None:
        h = sim.state.h
        w0 = h["weight"] * h["size"]
        self.start_persons = float(np.sum(w0[h["status"] == S.POOR]))
        self.ever_registered = self.start_persons
        self.before = h["status"].copy()
        self.cum_exits = self.cum_dev = 0.0
        self.rows: list[dict] = []

    def observe(self, sim: Simulation, year: int, row: dict) -> None:
        h = sim.state.h
        status = h["status"]
        p = sim.params.at(year)
        wp = h["weight"] * h["size"]
        n = len(self.before)  # households formed this year were not registered at its start
        exited_now = np.zeros(len(status), bool)
        exited_now[:n] = (self.before == S.POOR) & (status[:n] == S.EXITED)
        entered = float(np.sum(wp[:n][(self.before == S.NONPOOR) & (status[:n] == S.POOR)]))
        self.before = status.copy()
        line = poverty_line(p) * p["exit.income_ratio"]
        # backstop exits need this year's programme transfers to clear the line, as the exit assessment
        # sees incomes (status.step's development exits); pensions and private transfers (remittances
        # count as transfer income in NBS surveys) are not the backstop
        no_backstop = test_income(sim.state, p) - h["programme_transfer"] / np.maximum(h["size"], 1)
        no_backstop *= h["assessment_factor"]  # every household has its factor once status has stepped
        exits_p = float(np.sum(wp[exited_now]))
        dev_p = float(np.sum(wp[exited_now & (no_backstop >= line)]))
        if year < sim.scenario.years[0]:
            return
        self.ever_registered += entered
        self.cum_exits += exits_p
        self.cum_dev += dev_p
        households, persons, start = row["households"], row["persons"], self.start_persons
        self.rows.append({
            "year": year,
            "registered_share": row["registered_poor"] / households if households else 0.0,
            "registered_persons_share": row["registered_poor_persons"] / persons if persons else 0.0,
            "registered_persons_ratio": row["registered_poor_persons"] / start if start else 0.0,
            "exits_persons_share": exits_p / start if start else 0.0,
            "cum_exits_persons_share": self.cum_exits / start if start else 0.0,
            "exits_development_persons_share": dev_p / start if start else 0.0,
            "cum_development_exit_share": self.cum_dev / self.cum_exits if self.cum_exits else 0.0,
            # persons, divided by the adjusted register at the end of the run
            **dict(zip(ADJUSTED, (row["registered_poor_persons"], exits_p, self.cum_exits))),
        })

    def finish(self, sim: Simulation) -> None:
        """The shares of the adjusted register, whose size is known only at the end."""
        ever = self.ever_registered
        for r in self.rows:
            for name in ADJUSTED:
                r[name] = r[name] / ever if ever else 0.0


def simulate_moments(scenario: Scenario, seed: int) -> pd.DataFrame:
    """One run: the yearly summary with the :data:`DERIVED` columns added."""
    moments = Moments()
    summary = Simulation(scenario, seed=seed, observers=[moments]).run()
    return summary.merge(pd.DataFrame(moments.rows), on="year", how="left")


def moment_columns(scenario: Scenario) -> list[str]:
    """Metrics a target may name: the engine's summary columns (from a probe run on a few
    households, as sweeps do) and the derived ones."""
    cols = summary_columns(scenario, derived=False)
    return cols + [c for c in DERIVED if c not in cols]


def evaluate_point(scenario: Scenario, seeds: list[int], cells: list[tuple[str, int]], overrides: dict
                   ) -> list[list]:
    """The target cells' moments for each replicate seed at one parameter vector's `overrides`."""
    sc = scenario.edit(parameters=overrides, where="calibration")
    out = []
    for s in seeds:
        m = simulate_moments(sc, s).set_index("year")
        out.append([float(m.at[y, metric]) for metric, y in cells])
    return out


def evaluate_trial(scenario: Scenario, seeds: list[int], cells: list[tuple[str, int]], trial: Trial) -> list[list]:
    """Worker: a trial's moments for each replicate (no disk access)."""
    return evaluate_point(scenario, seeds, cells, trial.overrides)


class Evaluator:
    """Distance of parameter vectors, from the trial log or by simulating; a batch runs
    through the executor (in parallel with `n_jobs`). Usable as DE's `workers=` map."""

    def __init__(self, spec, log: Path | None, n_jobs: int = 1, progress=None):
        self.spec = spec
        self.n_jobs = n_jobs
        self.cells = list(zip(spec.targets["metric"], spec.targets["year"].astype(int)))
        self.log = TrialLog(log, spec.evaluation_hash, spec.replicates, self._record,
                            lambda rec: not np.isnan(self.moments(rec)).any())
        self.evaluated = self.reused = 0
        self.seconds = 0.0
        self.progress = progress

    @property
    def cache(self) -> dict[str, dict]:
        return self.log.cache

    def _record(self, trial: Trial, reps: list[list]) -> dict:
        rec = {"key": trial.key, "evaluation_hash": self.spec.evaluation_hash, "phase": trial.phase,
               "params": dict(zip(self.spec.labels, map(float, trial.x))), "x": [float(v) for v in trial.x],
               "cells": [[m, int(y)] for m, y in self.cells], "replicates": np.asarray(reps, dtype=float).tolist()}
        m = self.moments(rec)
        rec["moments"] = dict(zip([f"{a}_{b}" for a, b in self.cells], map(float, m)))
        rec["distance"] = self.distance_of(m)
        return rec

    def moments(self, rec: dict) -> np.ndarray:
        """Mean over replicates, in the order of the spec's target rows."""
        cells = [(m, int(y)) for m, y in rec["cells"]]
        if cells == self.cells:
            return np.asarray(rec["replicates"], dtype=float).mean(axis=0)
        index = {c: i for i, c in enumerate(cells)}
        arr = np.asarray(rec["replicates"], dtype=float).mean(axis=0)
        return np.array([arr[index[c]] if c in index else np.nan for c in self.cells])

    def distance_of(self, m: np.ndarray) -> float:
        t = self.spec.targets
        z = target_z(m, t)
        d = float(np.sum(t["weight"].to_numpy() * z * z))
        return d if math.isfinite(d) else 1e12

    def records(self, xs, phase: str = "de") -> list[dict]:
        """The log's record of each vector, evaluating the ones it lacks (each once)."""
        xs = [np.asarray(x, dtype=float) for x in xs]
        keys = [trial_key(x) for x in xs]
        trials: dict[str, Trial] = {}
        for k, x in zip(keys, xs):
            if k not in trials:
                trials[k] = Trial(k, tuple(x), self.spec.overrides(x), phase)
        t0 = time.perf_counter()
        work = partial(evaluate_trial, self.spec.scenario, self.spec.seeds, self.cells)
        _, stats = execute(work, list(trials.values()), store=self.log, n_jobs=self.n_jobs)
        self.reused += len(xs) - stats["ran"]
        if stats["ran"]:
            self.evaluated += stats["ran"]
            self.seconds += time.perf_counter() - t0
            if self.progress:
                self.progress(self)
        return [self.cache[k] for k in keys]

    def distances(self, xs, phase: str = "de") -> list[float]:
        return [self.distance_of(self.moments(r)) for r in self.records(xs, phase)]

    def __call__(self, x) -> float:  # a single point (Nelder-Mead)
        return self.distances([x], phase="polish")[0]


def target_z(m: np.ndarray, t: pd.DataFrame) -> np.ndarray:
    """(simulated − observed) / sd per target row; 0 where a bound (`bound: lower` or
    `upper`) is satisfied, since a bound says nothing about how far beyond it the truth is."""
    z = (np.asarray(m, dtype=float) - t["value"].to_numpy()) / t["sd"].to_numpy()
    bound = t["bound"].to_numpy() if "bound" in t else np.full(len(t), "point")
    z = np.where((bound == "lower") & (z > 0), 0.0, z)
    return np.where((bound == "upper") & (z < 0), 0.0, z)


def fit_table(spec, evaluator: "Evaluator", rec: dict) -> pd.DataFrame:
    """The target rows with the fitted moments of a record, their z-scores and roles."""
    t = spec.targets
    reps = np.asarray(rec["replicates"], dtype=float)
    fitted = evaluator.moments(rec)
    out = t[["year", "metric", "value", "sd", "weight", "bound"]].copy()
    out = out.rename(columns={"value": "observed"})
    out["fitted"] = fitted
    out["replicate_sd"] = reps.std(axis=0, ddof=1) if len(reps) > 1 else np.nan
    out["z"] = target_z(fitted, t)
    out["contribution"] = out["weight"] * out["z"] ** 2
    out["within_1sd"] = out["z"].abs() <= 1.0
    out["within_2sd"] = out["z"].abs() <= 2.0
    out["role"] = np.where(out["weight"] > 0, "fitted", "comparison")  # weight 0: shown, not fitted
    out["source"] = t["source"].to_numpy()
    out["note"] = t["note"].to_numpy()
    return out


def fit_counts(fit: pd.DataFrame) -> dict:
    """How many fitted targets (weight > 0) are within 1 and 2 sd, and how many rows are
    comparisons only (weight 0: observed figures the fit is shown against, not fitted to)."""
    fitted = fit[fit["weight"] > 0]
    return {"targets": int(len(fitted)), "within_1sd": int(fitted["within_1sd"].sum()),
            "within_2sd": int(fitted["within_2sd"].sum()), "comparisons": int(len(fit) - len(fitted))}
