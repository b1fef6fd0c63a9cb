"""Calibration by simulated moments: fit chosen parameters of a scenario to observed targets.

A calibration spec is a YAML file (or the same content as a dict):

    name: jiangsu
    scenario: jiangsu               # a bundled name, or a scenario file relative to this spec
    households: 3000                # simulated households (per-capita and share targets do not depend on it)
    years: [2016, 2020]             # optional (default: the scenario's)
    targets: [targets/jiangsu.csv]  # relative to this spec: year, metric, value, sd[, weight, bound, source, note]
    parameters:                     # dotted paths of scalar numbers, with bounds
      income.wage_growth: {range: [0.0, 0.15]}
      population.income_ratio: {range: [0.5, 1.2], element: [0, 0]}   # one number of a table
      population.cause_sizes: [{range: [1.5, 3], element: 0}, {range: [1.5, 3], element: 1}]  # or several
      health.admission_rate: {range: [0.7, 1.3], scale: true}         # a factor on every number
    replicates: 2                   # runs per evaluation, with FIXED seeds (common random numbers)
    seed: 11                        # the replicates' seeds derive from it (as `fupin-sim run --reps`)
    optimizer: {popsize: 6, maxiter: 8, seed: 1, tol: 0.01, polish: nelder-mead, polish_maxiter: 30}
    abc: {samples: 64, quantile: 0.25, seed: 2, rounds: 3}   # optional: parameter draws (fupin_sim/abc.py;
                                                             # `tolerance` defaults to χ²(0.95, fitted targets))

The distance is Σ weight × ((simulated − observed) / sd)² over the target rows; the
simulated moment is the mean over the replicates. Every replicate uses the same seeds at
every parameter vector, so the objective moves with the parameters, not with the draws.

Choices made here, and why:

* **Optimiser**: `scipy.optimize.differential_evolution` (seeded Latin-hypercube start,
  `updating="deferred"`, so a whole generation is evaluated as one batch and the result
  does not depend on `n_jobs`), then optionally a bounded Nelder–Mead polish (the objective
  of a finite population is piecewise constant, so gradient polishing is useless).
* **Trial log**: `trials.jsonl` in the output folder, one JSON line per evaluation (the
  parameter vector, the moments of every replicate, the distance), appended and flushed as
  each batch finishes. A rerun of the same spec into the same folder reads it back as a
  cache keyed by the rounded parameter vector: the (deterministic) optimiser retraces its
  path without simulating again, so a killed calibration loses at most one batch. A last
  line cut short by a kill (or a full disk) is cut off before anything is appended.
* **Derived moments** (:data:`DERIVED`) are computed from the household state each year,
  beside the engine's summary columns: shares of the register at the start, exits in
  persons, exits that pass the income test without the year's programme transfers
  ("development" exits, as against exits carried by the social-assistance backstop),
  and the income of every filed (建档立卡) household, exited or not.

Outputs: `calibration.json` (the validated spec and its hash), `trials.jsonl`, `fit.csv`
(target rows with the fitted moments), `fit.png` (drawn by the command line, or
`fupin_sim.report.save_figures`), `fitted.yaml` (a scenario extending the
base with the fitted values, `source: calibrated ...`), `result.json`, and with `abc:`
`abc_draws.csv` (every proposal, by round) and `draws.csv` (equal-weight parameter draws
for `fupin-sim run --draws` and `fupin-sim forecast --draws`).
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fupin_sim.errors import InputError, close_match
from fupin_sim.params import numbers_in
from fupin_sim.population import schema as S
from fupin_sim.population.rules import poverty_line
from fupin_sim.scenario import BUDGETS, RULES, Scenario, load_scenario, resolve_path
from fupin_sim.checks import check_keys, number, whole
from fupin_sim.simulation import Observer, Simulation
from fupin_sim.specs import scaled, sized_scenario
from fupin_sim.status import test_income
from fupin_sim.yamlfile import read_mapping

TOP_KEYS = ("name", "description", "scenario", "households", "years", "targets", "parameters", "replicates", "seed",
            "optimizer", "abc")
PARAMETER_KEYS = ("range", "scale", "element")
OPTIMIZER_KEYS = ("popsize", "maxiter", "seed", "tol", "polish", "polish_maxiter")
ABC_KEYS = ("samples", "quantile", "seed", "rounds", "tolerance")
TARGET_COLUMNS = ("year", "metric", "value", "sd")
TARGET_OPTIONAL = ("weight", "bound", "source", "note")
BOUNDS = ("point", "lower", "upper")  # what the observed value is: the value, or a bound on it
POLISH = ("none", "nelder-mead")
KEY_DIGITS = 10  # the trial cache's key: the parameter vector rounded to this many significant digits

DERIVED = {
    "registered_share": "registered households / households (end of year)",
    "registered_persons_share": "registered persons / persons (end of year)",
    "registered_persons_ratio": "registered persons at the end of the year / registered persons at the start of "
                                "the first year (the register's stock before the run)",
    "exits_persons": "persons in households that exited during the year (weighted to the preset's population)",
    "exits_persons_share": "exits_persons / registered persons at the start of the first year",
    "cum_exits_persons_share": "cumulative exits_persons from the first year to this one / registered persons at "
                               "the start of the first year (administrative exits, relapsed and re-exited counted "
                               "again, as official cumulative exit figures do)",
    "exits_development_persons_share": "persons exiting in the year whose per-capita test income without the "
                                       "year's programme transfers (低保, 特困, aged support and the other instruments "
                                       "paid as transfer income: the backstop 兜底保障) already clears the exit line / "
                                       "registered persons at the start",
    "cum_development_exit_share": "cumulative development exits (persons, as above) / cumulative exits (persons)",
    "income_per_capita_filed": "per-capita income (all sources, before medical costs) of every filed household "
                               "(建档立卡: registered or exited), persons-weighted",
}


# --------------------------------------------------------------------------------------
# Moments: one run, the engine's summary plus derived columns
# --------------------------------------------------------------------------------------

class Moments(Observer):
    """The :data:`DERIVED` columns of each year of the scenario's years, from the household
    state: persons registered at the start, who exited in the year, and with what income."""

    def start(self, sim: Simulation) -> None:
        h = sim.state.h
        w0 = h["weight"] * h["size"]
        self.start_persons = float(np.sum(w0[h["status"] == S.POOR]))
        self.before = h["status"].copy()
        self.cum_exits = self.cum_dev = 0.0
        self.rows: list[dict] = []

    def observe(self, sim: Simulation, year: int, row: dict) -> None:
        h = sim.state.h
        status = h["status"]
        p = sim.params.at(year)
        wp = h["weight"] * h["size"]
        exited_now = (self.before == S.POOR) & (status == S.EXITED)
        self.before = status.copy()
        line = poverty_line(p) * p["exit.income_ratio"]
        # backstop exits need this year's programme transfers to clear the line; pensions and private
        # transfers (remittances count as transfer income in NBS surveys) are not the backstop
        no_backstop = test_income(sim.state, p) - h["programme_transfer"] / np.maximum(h["size"], 1)
        exits_p = float(np.sum(wp[exited_now]))
        dev_p = float(np.sum(wp[exited_now & (no_backstop >= line)]))
        filed = (status == S.POOR) | (status == S.EXITED)
        filed_persons = float(np.sum(wp[filed]))
        income_filed = float(np.sum((h["weight"] * sim.state.income_total())[filed]))
        if year < sim.scenario.years[0]:
            return
        self.cum_exits += exits_p
        self.cum_dev += dev_p
        households, persons, start = row["households"], row["persons"], self.start_persons
        self.rows.append({
            "year": year,
            "registered_share": row["registered_poor"] / households if households else 0.0,
            "registered_persons_share": row["registered_poor_persons"] / persons if persons else 0.0,
            "registered_persons_ratio": row["registered_poor_persons"] / start if start else 0.0,
            "exits_persons": exits_p,
            "exits_persons_share": exits_p / start if start else 0.0,
            "cum_exits_persons_share": self.cum_exits / start if start else 0.0,
            "exits_development_persons_share": dev_p / start if start else 0.0,
            "cum_development_exit_share": self.cum_dev / self.cum_exits if self.cum_exits else 0.0,
            "income_per_capita_filed": income_filed / filed_persons if filed_persons else 0.0,
        })


def simulate_moments(scenario: Scenario, seed: int) -> pd.DataFrame:
    """One run: the yearly summary with the :data:`DERIVED` columns added."""
    moments = Moments()
    summary = Simulation(scenario, seed=seed, observers=[moments]).run()
    return summary.merge(pd.DataFrame(moments.rows), on="year", how="left")


def moment_columns(scenario: Scenario) -> list[str]:
    """Metrics a target may name: the engine's summary columns (from a probe run on a few
    households, as sweeps do) and the derived ones."""
    from fupin_sim.results import simulate

    probe = scenario.edit(households=min(scenario.households or 50, 50))
    cols = [c for c in simulate(probe).summary.columns if c != "year"]
    return cols + [c for c in DERIVED if c not in cols]


# --------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------

def read_targets(paths: list[str | Path]) -> pd.DataFrame:
    """Target tables (CSV): year, metric, value, sd, and optional weight, source, note.
    Rows are checked here for form; metrics and years against a scenario by :func:`check_targets`."""
    frames = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise InputError("targets file not found", file=str(path))
        try:
            t = pd.read_csv(path, comment="#", skipinitialspace=True)
        except (ValueError, pd.errors.ParserError) as e:
            raise InputError(f"is not a readable CSV table: {e}", file=str(path)) from None
        missing = [c for c in TARGET_COLUMNS if c not in t.columns]
        if missing:
            raise InputError(f"lacks column(s) {missing}; a targets table has {list(TARGET_COLUMNS)} and optionally "
                             f"{list(TARGET_OPTIONAL)}", file=str(path))
        unknown = [c for c in t.columns if c not in TARGET_COLUMNS + TARGET_OPTIONAL]
        if unknown:
            raise InputError(f"unknown column {unknown[0]!r}{close_match(unknown[0], TARGET_COLUMNS + TARGET_OPTIONAL)}",
                             file=str(path))
        if t.empty:
            raise InputError("has no target rows", file=str(path))
        t = t.copy()
        if "weight" not in t:
            t["weight"] = 1.0
        t["bound"] = t["bound"].fillna("point").astype(str).str.strip() if "bound" in t else "point"
        for c in ("source", "note"):
            if c not in t:
                t[c] = ""
        for i, r in t.iterrows():
            where = f"row {i + 2}"  # the header is line 1
            for c in ("year", "value", "sd", "weight"):
                x = r[c]
                if isinstance(x, str) or x != x or not math.isfinite(float(x)):
                    raise InputError(f"column {c}: expected a finite number, got {x!r}", file=str(path), where=where)
            if float(r["year"]) != int(r["year"]):
                raise InputError(f"column year: expected a whole year, got {r['year']!r}", file=str(path), where=where)
            if float(r["sd"]) <= 0:
                raise InputError(f"column sd: must be above 0, got {r['sd']!r}", file=str(path), where=where)
            if r["bound"] not in BOUNDS:
                raise InputError(f"column bound: {r['bound']!r} is not one of {list(BOUNDS)}"
                                 f"{close_match(str(r['bound']), BOUNDS)}", file=str(path), where=where)
            if float(r["weight"]) < 0:
                raise InputError(f"column weight: must not be negative, got {r['weight']!r}", file=str(path),
                                 where=where)
        t["file"] = str(path)
        t["row"] = np.arange(len(t)) + 2
        frames.append(t)
    out = pd.concat(frames, ignore_index=True)
    out["year"] = out["year"].astype(int)
    for c in ("value", "sd", "weight"):
        out[c] = out[c].astype(float)
    out["source"] = out["source"].fillna("").astype(str)
    out["note"] = out["note"].fillna("").astype(str)
    dup = out.duplicated(["year", "metric"], keep=False)
    if dup.any():
        r = out[dup].iloc[1]
        raise InputError(f"target {r['metric']} {r['year']} is given twice", file=r["file"], where=f"row {r['row']}")
    return out


def check_targets(targets: pd.DataFrame, columns: list[str], years: tuple[int, int]) -> None:
    """Every target names a known metric and a simulated year (an InputError otherwise)."""
    for _, r in targets.iterrows():
        where = f"row {r['row']}"
        if r["metric"] not in columns:
            raise InputError(f"unknown metric {r['metric']!r}{close_match(str(r['metric']), columns)}; available: "
                             f"{columns}", file=r["file"], where=where)
        if not years[0] <= r["year"] <= years[1]:
            raise InputError(f"year {r['year']} is outside the simulated years {years[0]}-{years[1]}",
                             file=r["file"], where=where)


# --------------------------------------------------------------------------------------
# The spec
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FitParameter:
    path: str
    low: float
    high: float
    base: Any
    scale: bool = False
    element: tuple[int, ...] | None = None

    def override(self, x: float) -> Any:
        """The value given to `Params.override` for the fitted number `x`."""
        x = float(x)
        if self.element is None:
            return scaled(self.base, x, False) if self.scale else x
        value = json.loads(json.dumps(self.base))  # a deep copy of lists of numbers
        node = value
        for i in self.element[:-1]:
            node = node[i]
        node[self.element[-1]] = node[self.element[-1]] * x if self.scale else x
        return value

    def spec(self) -> dict:
        return {"path": self.path, "range": [self.low, self.high], "scale": self.scale,
                "element": list(self.element) if self.element is not None else None}

    @property
    def label(self) -> str:
        tail = "" if self.element is None else "[" + "][".join(map(str, self.element)) + "]"
        return f"{self.path}{tail}" + (" (factor)" if self.scale else "")


@dataclass
class CalibrationSpec:
    file: str | None
    name: str
    scenario: Scenario
    scenario_ref: str
    parameters: list[FitParameter]
    targets: pd.DataFrame
    target_files: list[str]
    replicates: int
    seed: int
    optimizer: dict
    abc: dict | None
    years_given: bool = False
    description: str = ""
    seeds: list[int] = field(default_factory=list)

    def normalized(self) -> dict:
        from fupin_sim import __version__

        return {"kind": "calibrate", "fupin_sim": __version__, "scenario": self.scenario.name,
                "scenario_hash": self.scenario.hash, "households": self.scenario.households,
                "years": list(self.scenario.years), "parameters": [p.spec() for p in self.parameters],
                "targets": self.targets[["year", "metric", "value", "sd", "weight", "bound"]].to_dict("records"),
                "replicates": self.replicates, "seed": self.seed, "optimizer": self.optimizer, "abc": self.abc}

    @property
    def hash(self) -> str:
        """What decides the evaluations (the trial log's key): scenario, seeds, parameters, targets."""
        blob = json.dumps(self.normalized(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def evaluation_hash(self) -> str:
        """What decides one evaluation's moments (not the targets or the optimiser): a trial
        log stays valid when only those change."""
        d = self.normalized()
        blob = json.dumps({k: d[k] for k in ("scenario_hash", "households", "years", "parameters", "replicates",
                                               "seed")}, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def bounds(self) -> list[tuple[float, float]]:
        return [(p.low, p.high) for p in self.parameters]

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.parameters]

    def overrides(self, x) -> dict:
        out: dict = {}
        for p, v in zip(self.parameters, x):
            out[p.path] = p.override(v) if p.path not in out else _merge_element(out[p.path], p, v)
        return out


def _merge_element(current, p: FitParameter, x):
    """Two fitted elements of the same table: set the second on top of the first."""
    return FitParameter(p.path, p.low, p.high, current, p.scale, p.element).override(x)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _parameter(path: str, node, scenario: Scenario, file) -> FitParameter:
    where = f"parameters.{path}"
    paths = scenario.parameter_paths()
    if path not in paths:
        raise InputError(f"unknown parameter{close_match(path, paths)}", file=file, where=where)
    if not isinstance(node, dict):
        raise InputError(f"expected {{range: [low, high]}}, got {node!r}", file=file, where=where)
    check_keys(node, PARAMETER_KEYS, file, where)
    scale = node.get("scale", False)
    if not isinstance(scale, bool):
        raise InputError(f"expected true or false, got {scale!r}", file=file, where=f"{where}.scale")
    base = scenario.parameter(path).value
    if base is None and scale:  # an instrument's capacity the scenario does not set
        raise InputError("has no value in this scenario to multiply: drop 'scale: true' and give the range",
                         file=file, where=f"{where}.scale")
    element = node.get("element")
    if element is not None:
        if isinstance(element, int) and not isinstance(element, bool):
            element = [element]
        if not isinstance(element, list) or not element or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in element):
            raise InputError(f"expected a list of indexes such as [0, 0], got {element!r}", file=file,
                             where=f"{where}.element")
        node_value = base
        for i in element:
            if not isinstance(node_value, list) or not -len(node_value) <= i < len(node_value):
                raise InputError(f"index {element} does not point to a number of {base!r}", file=file,
                                 where=f"{where}.element")
            node_value = node_value[i]
        if not _is_number(node_value):
            raise InputError(f"index {element} does not point to a number of {base!r}", file=file,
                             where=f"{where}.element")
        element = tuple(element)
    elif not scale:
        if isinstance(base, str):
            raise InputError(f"is a text parameter ({base!r}), not a number: calibration fits numbers only",
                             file=file, where=where)
        if isinstance(base, dict):
            raise InputError(f"is dated ({base!r}), not a single number: add 'scale: true' to fit a factor on "
                             f"every year's value", file=file, where=where)
        if isinstance(base, (list, tuple)):
            raise InputError(f"is a list ({base!r}), not a single number: add 'element: [i, ...]' to fit one of "
                             f"its numbers, or 'scale: true' to fit a factor on all of them", file=file, where=where)
    elif any(isinstance(v, str) for v in numbers_in(base)):
        raise InputError(f"is a text parameter ({base!r}), not a number: calibration fits numbers only", file=file,
                         where=where)
    if "range" not in node:
        raise InputError("missing key 'range' ([low, high] bounds of the search)", file=file, where=where)
    rng = node["range"]
    if not isinstance(rng, list) or len(rng) != 2:
        raise InputError(f"expected [low, high], got {rng!r}", file=file, where=f"{where}.range")
    low, high = (float(number(v, file, f"{where}.range[{i}]")) for i, v in enumerate(rng))
    if low > high:
        raise InputError(f"low {low!r} is above high {high!r}", file=file, where=f"{where}.range")
    if low == high:
        raise InputError(f"low and high are both {low!r}: fix the value in the scenario instead", file=file,
                         where=f"{where}.range")
    p = FitParameter(path, low, high, base, scale, element)
    for i, x in enumerate((low, high)):
        try:
            scenario.edit(parameters={path: p.override(x)})
        except InputError as e:
            raise InputError(f"{('low', 'high')[i]} bound {x!r} is not allowed: {e.detail}", file=file,
                             where=f"{where}.range[{i}]") from None
    return p


def load_spec(spec: str | Path | dict | CalibrationSpec, *, base_dir: str | Path | None = None) -> CalibrationSpec:
    """Read and validate a calibration spec completely, targets included, before any
    simulation except a 50-household probe that lists the metrics. Files named in a dict
    spec are relative to `base_dir` (default: the current folder)."""
    if isinstance(spec, CalibrationSpec):
        return spec
    if isinstance(spec, dict):
        data, file, folder = dict(spec), None, Path(base_dir) if base_dir else Path.cwd()
    else:
        path = Path(spec)
        if not path.is_file():
            raise InputError("calibration spec not found", file=str(spec))
        data, file, folder = read_mapping(path, "scenario, parameters, targets, ..."), str(path), path.resolve().parent
    check_keys(data, TOP_KEYS, file, "")
    name = data.get("name", Path(file).stem if file else "calibration")
    if not isinstance(name, str) or not name:
        raise InputError("expected a non-empty text", file=file, where="name")

    ref = data.get("scenario")
    if not isinstance(ref, str) or not ref:
        raise InputError("missing key 'scenario' (a bundled name such as 'jiangsu', or a scenario file)", file=file,
                         where="scenario" if ref is not None else None)
    try:
        scenario_path = resolve_path(ref, relative_to=folder / "spec.yaml")
    except InputError as e:
        raise InputError(e.detail, file=file, where="scenario") from None
    scenario = load_scenario(scenario_path)
    scenario, seed = sized_scenario(scenario, data, file)
    replicates = whole(data.get("replicates", 1), file, "replicates", 1)

    raw_params = data.get("parameters")
    if not isinstance(raw_params, dict) or not raw_params:
        raise InputError("expected a mapping of parameter paths to {range: [low, high]}", file=file,
                         where="parameters")
    params = []
    for p, node in raw_params.items():
        if isinstance(node, list):  # several numbers of one table: a list of {range, element}
            if not node:
                raise InputError("expected {range: [low, high]} or a non-empty list of them", file=file,
                                 where=f"parameters.{p}")
            for i, item in enumerate(node):
                if not isinstance(item, dict) or "element" not in item:
                    raise InputError(f"expected {{range: [low, high], element: [i, ...]}}, got {item!r}", file=file,
                                     where=f"parameters.{p}[{i}]")
                params.append(_parameter(str(p), item, scenario, file))
        else:
            params.append(_parameter(str(p), node, scenario, file))
    labels = [q.label for q in params]
    for q in params:
        if labels.count(q.label) > 1:
            raise InputError(f"{q.label} is fitted twice", file=file, where=f"parameters.{q.path}")

    raw_targets = data.get("targets")
    if isinstance(raw_targets, str):
        raw_targets = [raw_targets]
    if not isinstance(raw_targets, list) or not raw_targets or not all(isinstance(t, str) for t in raw_targets):
        raise InputError("expected a list of targets files (CSV)", file=file, where="targets")
    target_files = [str(Path(t) if Path(t).is_absolute() else folder / t) for t in raw_targets]
    try:
        targets = read_targets(target_files)
    except InputError as e:
        if e.file and Path(e.file).is_file():
            raise
        raise InputError(e.detail, file=file, where=f"targets ({e.file})") from None
    check_targets(targets, moment_columns(scenario), scenario.years)

    opt = {"popsize": 6, "maxiter": 8, "seed": 1, "tol": 0.01, "polish": "nelder-mead", "polish_maxiter": 30}
    raw_opt = data.get("optimizer") or {}
    if not isinstance(raw_opt, dict):
        raise InputError("expected a mapping (popsize, maxiter, seed, tol, polish, polish_maxiter)", file=file,
                         where="optimizer")
    check_keys(raw_opt, OPTIMIZER_KEYS, file, "optimizer")
    for k, low in (("popsize", 1), ("maxiter", 0), ("seed", 0), ("polish_maxiter", 0)):
        opt[k] = whole(raw_opt.get(k, opt[k]), file, f"optimizer.{k}", low)
    opt["tol"] = float(number(raw_opt.get("tol", opt["tol"]), file, "optimizer.tol"))
    polish = raw_opt.get("polish", opt["polish"])
    polish = "none" if polish is False or polish is None else polish
    if polish not in POLISH:
        raise InputError(f"unknown polish {polish!r}{close_match(str(polish), POLISH)}; use one of {list(POLISH)}",
                         file=file, where="optimizer.polish")
    opt["polish"] = polish

    abc = None
    if data.get("abc") is not None:
        raw_abc = data["abc"]
        if not isinstance(raw_abc, dict):
            raise InputError("expected a mapping (samples, quantile, seed, rounds, tolerance)", file=file,
                             where="abc")
        check_keys(raw_abc, ABC_KEYS, file, "abc")
        abc = {"samples": whole(raw_abc.get("samples", 64), file, "abc.samples", 2),
               "quantile": float(number(raw_abc.get("quantile", 0.1), file, "abc.quantile")),
               "seed": whole(raw_abc.get("seed", seed), file, "abc.seed", 0),
               "rounds": whole(raw_abc.get("rounds", 1), file, "abc.rounds", 1),
               "tolerance": None if raw_abc.get("tolerance") is None
               else float(number(raw_abc["tolerance"], file, "abc.tolerance"))}
        if abc["tolerance"] is not None and not abc["tolerance"] > 0:
            raise InputError(f"expected a distance above 0, got {abc['tolerance']!r}", file=file,
                             where="abc.tolerance")
        if not 0 < abc["quantile"] <= 1:
            raise InputError(f"expected a share in (0, 1], got {abc['quantile']!r}", file=file, where="abc.quantile")

    from fupin_sim.ensemble import replicate_seeds

    return CalibrationSpec(file=file, name=name, scenario=scenario, scenario_ref=str(scenario_path),
                           parameters=params, targets=targets, target_files=target_files, replicates=replicates,
                           seed=seed, optimizer=opt, abc=abc, years_given="years" in data,
                           description=str(data.get("description", "")),
                           seeds=replicate_seeds(seed, replicates))


# --------------------------------------------------------------------------------------
# Evaluations: moments, distance, the trial log and its cache
# --------------------------------------------------------------------------------------

def trial_key(x) -> str:
    return json.dumps([float(f"{float(v):.{KEY_DIGITS}g}") for v in x])


def evaluate_point(scenario: Scenario, overrides: dict, seeds: list[int], cells: list[tuple[str, int]]) -> list[list]:
    """Worker: the target cells' moments for each replicate seed (no disk access)."""
    sc = scenario.edit(parameters=overrides, where="calibration")
    out = []
    for s in seeds:
        m = simulate_moments(sc, s).set_index("year")
        out.append([float(m.at[y, metric]) for metric, y in cells])
    return out


def _complete(rec: dict, replicates: int) -> bool:
    """A log record with its target cells and one row of numbers per replicate for each."""
    reps, cells = rec.get("replicates"), rec.get("cells")
    if not isinstance(reps, list) or len(reps) != replicates or not isinstance(cells, list):
        return False
    return all(isinstance(r, list) and len(r) == len(cells)
               and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r) for r in reps)


class Evaluator:
    """Distance of parameter vectors, from the cache (the trial log) or by simulating;
    batches run in parallel with joblib. Usable as DE's `workers=` map."""

    def __init__(self, spec: CalibrationSpec, log: Path | None, n_jobs: int = 1, progress=None):
        self.spec = spec
        self.log = log
        self.n_jobs = n_jobs
        self.cells = list(zip(spec.targets["metric"], spec.targets["year"].astype(int)))
        self.cache: dict[str, dict] = {}
        self.evaluated = self.reused = 0
        self.seconds = 0.0
        self.progress = progress
        self.dropped_partial = 0  # bytes of a last line cut short by a kill, removed from the log
        if log is not None and (log.exists() or log.is_symlink()):
            self._read_log()

    def _read_log(self) -> None:
        """Read the log back as a cache. A last line without its newline was cut short by a
        kill (or a full disk): it is cut off, so the next record starts on a line of its own
        instead of being glued to the fragment (and lost at the next read). Lines that are not
        a complete record of this calibration's evaluations are skipped."""
        if self.log.is_symlink():
            raise InputError("is a symbolic link: the trial log is appended to, and only inside the output folder; "
                             "delete the link", file=str(self.log))
        data = self.log.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            with open(self.log, "r+b") as f:
                f.truncate(end)
            self.dropped_partial = len(data) - end
        ev = self.spec.evaluation_hash
        for line in data[:end].splitlines():
            try:
                rec = json.loads(line.decode("utf-8"))
            except ValueError:  # damaged (UnicodeDecodeError is a ValueError too)
                continue
            if (isinstance(rec, dict) and rec.get("evaluation_hash") == ev and isinstance(rec.get("key"), str)
                    and _complete(rec, self.spec.replicates)):
                self.cache.setdefault(rec["key"], rec)

    def _record(self, x, reps: list[list], phase: str) -> dict:
        reps_arr = np.asarray(reps, dtype=float)
        return {"key": trial_key(x), "evaluation_hash": self.spec.evaluation_hash, "phase": phase,
                "params": dict(zip(self.spec.labels, map(float, x))), "x": [float(v) for v in x],
                "cells": [[m, int(y)] for m, y in self.cells], "replicates": reps_arr.tolist()}

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
        xs = [np.asarray(x, dtype=float) for x in xs]
        keys = [trial_key(x) for x in xs]
        todo, seen = [], set()
        for x, k in zip(xs, keys):
            rec = self.cache.get(k)
            if rec is not None and not np.isnan(self.moments(rec)).any():
                continue
            if k not in seen:
                seen.add(k)
                todo.append(x)
        self.reused += len(xs) - len(todo)
        if todo:
            t0 = time.perf_counter()
            jobs = [(self.spec.overrides(x)) for x in todo]
            if self.n_jobs == 1 or len(todo) == 1:
                results = [evaluate_point(self.spec.scenario, o, self.spec.seeds, self.cells) for o in jobs]
            else:
                from joblib import Parallel, delayed

                results = Parallel(n_jobs=self.n_jobs)(
                    delayed(evaluate_point)(self.spec.scenario, o, self.spec.seeds, self.cells) for o in jobs)
            new = []
            for x, reps in zip(todo, results):
                rec = self._record(x, reps, phase)
                m = self.moments(rec)
                rec["moments"] = dict(zip([f"{a}_{b}" for a, b in self.cells], map(float, m)))
                rec["distance"] = self.distance_of(m)
                self.cache[rec["key"]] = rec
                new.append(rec)
            self._append(new)
            self.evaluated += len(todo)
            self.seconds += time.perf_counter() - t0
            if self.progress:
                self.progress(self)
        return [self.cache[k] for k in keys]

    def _append(self, recs: list[dict]) -> None:
        """Append whole lines and sync: a kill can cut only the last line short (repaired on the
        next read). The log is never opened through a symbolic link (O_NOFOLLOW)."""
        if self.log is None:
            return
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.log, flags, 0o644)
        except OSError:
            if self.log.is_symlink():
                raise InputError("is a symbolic link: the trial log is written only inside the output folder; "
                                 "delete the link", file=str(self.log)) from None
            raise
        try:
            with open(fd, "ab") as f:
                f.write("".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in recs).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:  # a full disk: name the log (a line cut short is dropped on the next read)
            raise OSError(e.errno, e.strerror or str(e), str(self.log)) from None

    def distances(self, xs, phase: str = "de") -> list[float]:
        return [self.distance_of(self.moments(r)) for r in self.records(xs, phase)]

    def __call__(self, x) -> float:  # a single point (Nelder-Mead)
        return self.distances([x], phase="polish")[0]


class _Objective:
    """What DE maps over: returns the point itself; the Evaluator batch does the work."""

    def __call__(self, x):
        return np.asarray(x, dtype=float)


class _BatchMap:
    """DE's `workers=`: DE calls map(func, population); evaluate the population as one batch."""

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator

    def __call__(self, func, iterable):
        return self.evaluator.distances([func(x) for x in iterable], phase="de")


# --------------------------------------------------------------------------------------
# Running a calibration
# --------------------------------------------------------------------------------------

@dataclass
class CalibrationResult:
    best: dict[str, float]          # label -> fitted value
    x: np.ndarray
    distance: float
    fit: pd.DataFrame               # target rows with fitted moments
    out: Path | None
    manifest: dict
    draws: pd.DataFrame | None = None


def _claim(out: Path, spec: CalibrationSpec) -> None:
    from fupin_sim.sweep import claim_output

    claim_output(out, "calibration.json", "evaluation_hash", spec.evaluation_hash,
                 {"kind": "calibrate", "evaluation_hash": spec.evaluation_hash, "spec_hash": spec.hash,
                  "spec_file": spec.file, "name": spec.name, "spec": spec.normalized()}, "calibration",
                 lambda held, old: f"holds a calibration of other runs (evaluation hash {old}, from "
                                   f"{held.get('spec_file') or 'a spec given in code'}); this spec's is "
                                   f"{spec.evaluation_hash}: use another output folder")


def target_z(m: np.ndarray, t: pd.DataFrame) -> np.ndarray:
    """(simulated − observed) / sd per target row; 0 where a bound (`bound: lower` or
    `upper`) is satisfied, since a bound says nothing about how far beyond it the truth is."""
    z = (np.asarray(m, dtype=float) - t["value"].to_numpy()) / t["sd"].to_numpy()
    bound = t["bound"].to_numpy() if "bound" in t else np.full(len(t), "point")
    z = np.where((bound == "lower") & (z > 0), 0.0, z)
    return np.where((bound == "upper") & (z < 0), 0.0, z)


def fit_table(spec: CalibrationSpec, evaluator: Evaluator, rec: dict) -> pd.DataFrame:
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


def fitted_scenario(spec: CalibrationSpec, x, distance: float, out: Path | None) -> dict:
    """A scenario extending the base with the fitted values (`source: calibrated ...`)."""
    from fupin_sim.scenario import BUNDLED

    ref = Path(spec.scenario_ref).resolve()
    if ref.parent == BUNDLED.resolve():
        base = ref.stem
    elif out is not None:
        base = os.path.relpath(ref, Path(out).resolve())
    else:
        base = str(ref)
    where = spec.file or "a spec given in code"
    params, rules, budgets = {}, {}, {}
    for path, value in spec.overrides(x).items():
        leaf = {"value": value, "confidence": "low",
                "source": f"calibrated: fupin-sim calibrate {where} (targets "
                          f"{', '.join(Path(f).name for f in spec.target_files)}; distance {distance:.3g}; "
                          f"{spec.scenario.households or 'preset'} households, {spec.replicates} replicates)"}
        if path.startswith(RULES):  # an instrument's rule goes under its entry in `interventions:`
            label, rule = spec.scenario.instrument_rule(path)
            rules.setdefault(label, {"rules": {}})["rules"][rule] = leaf
        elif path.startswith(BUDGETS):  # a budget line's amounts (no source field there)
            budgets[spec.scenario.budget_line(path)] = {"amounts": value}
        else:
            params[path] = leaf
    data = {"name": f"{spec.scenario.name}_calibrated_{spec.name}" if spec.name != spec.scenario.name
            else f"{spec.name}_calibrated",
            "description": f"{spec.scenario.name} with parameters fitted by calibration '{spec.name}'",
            "extends": base, "parameters": params}
    if rules:
        data["interventions"] = rules
    if budgets:
        data["budgets"] = budgets
    if spec.years_given:
        data["years"] = list(spec.scenario.years)
    return data


def _round_x(x, bounds) -> np.ndarray:
    return np.clip(np.asarray(x, dtype=float), [b[0] for b in bounds], [b[1] for b in bounds])


def calibrate(spec: str | Path | dict | CalibrationSpec, out: str | Path | None = None, n_jobs: int = 1, *,
              progress: bool = False) -> CalibrationResult:
    """Fit the spec's parameters to its targets (differential evolution, then an optional
    Nelder–Mead polish); write the outputs to `out` (a trial log there makes a rerun resume).

    The result does not depend on `n_jobs`: a generation is evaluated as one batch and
    every evaluation uses the spec's fixed replicate seeds."""
    from scipy.optimize import differential_evolution, minimize

    t_start = time.perf_counter()
    spec = load_spec(spec)
    out = Path(out) if out is not None else None
    if out is not None:
        _claim(out, spec)
    log = out / "trials.jsonl" if out is not None else None

    last = [0.0]

    def report(ev: Evaluator):
        now = time.perf_counter()
        if now - last[0] < 2.0:  # at most a line every 2 s
            return
        last[0] = now
        best = min((r["distance"] for r in ev.cache.values()), default=float("nan"))
        print(f"  {ev.evaluated} evaluated, {ev.reused} reused, best distance {best:.4g}, "
              f"{time.perf_counter() - t_start:.0f} s", flush=True)

    ev = Evaluator(spec, log, n_jobs=n_jobs, progress=report if progress else None)
    reused_at_start = len(ev.cache)
    bounds = spec.bounds
    opt = spec.optimizer
    kw = dict(bounds=bounds, popsize=opt["popsize"], maxiter=opt["maxiter"], tol=opt["tol"], polish=False,
              init="latinhypercube", updating="deferred", workers=_BatchMap(ev))
    try:
        de = differential_evolution(_Objective(), rng=np.random.default_rng(opt["seed"]), **kw)
    except TypeError:  # SciPy < 1.15 calls it `seed`
        de = differential_evolution(_Objective(), seed=opt["seed"], **kw)
    x, distance = _round_x(de.x, bounds), float(de.fun)
    polish_info = None
    if opt["polish"] == "nelder-mead" and opt["polish_maxiter"] > 0:
        span = np.array([b[1] - b[0] for b in bounds])
        simplex = [x] + [_round_x(x + np.eye(len(x))[i] * 0.05 * span * (1 if x[i] + 0.05 * span[i] <= bounds[i][1]
                                                                          else -1), bounds) for i in range(len(x))]
        nm = minimize(ev, x, method="Nelder-Mead", bounds=bounds,
                      options={"maxiter": opt["polish_maxiter"], "initial_simplex": np.array(simplex),
                               "xatol": 1e-4, "fatol": 1e-3})
        polish_info = {"distance": float(nm.fun), "iterations": int(nm.nit), "message": str(nm.message)}
        if nm.fun < distance:
            x, distance = _round_x(nm.x, bounds), float(nm.fun)
    rec = ev.records([x], phase="best")[0]
    distance = ev.distance_of(ev.moments(rec))
    fit = fit_table(spec, ev, rec)
    best = dict(zip(spec.labels, map(float, x)))

    draws = tables = abc_summary = None
    if spec.abc is not None:
        from fupin_sim.abc import abc_tables

        every, draws, abc_summary = abc_tables(spec, ev, best=x)
        abc_summary["draws_within_2sd"] = _share_within(spec, ev, draws)
        tables = every, draws
    seconds = time.perf_counter() - t_start
    from fupin_sim.results import package_version

    manifest = {"kind": "calibrate", "fupin_sim": package_version(), "name": spec.name, "spec_file": spec.file,
                "spec_hash": spec.hash,
                "evaluation_hash": spec.evaluation_hash, "scenario": spec.scenario.name,
                "scenario_hash": spec.scenario.hash, "households": spec.scenario.households,
                "years": list(spec.scenario.years), "replicates": spec.replicates, "replicate_seeds": spec.seeds,
                "optimizer": opt, "best": best, "distance": distance,
                **fit_counts(fit),
                "de": {"distance": float(de.fun), "generations": int(de.nit), "evaluations": int(de.nfev),
                       "message": str(de.message)}, "polish": polish_info, "abc": abc_summary,
                "execution": {"n_jobs": n_jobs, "evaluated": ev.evaluated, "reused_from_log": ev.reused,
                              "log_entries_at_start": reused_at_start,
                              "log_partial_line_dropped_bytes": ev.dropped_partial, "simulate_seconds": ev.seconds,
                              "wall_seconds": seconds}}
    if out is not None:
        _write_outputs(spec, out, fit, x, distance, manifest, tables)
    return CalibrationResult(best=best, x=x, distance=distance, fit=fit, out=out, manifest=manifest, draws=draws)


def _write_outputs(spec: CalibrationSpec, out: Path, fit: pd.DataFrame, x, distance: float, manifest: dict,
                   abc_tables: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> None:
    """Every output in full under a temporary name, then renamed into place with
    `result.json` last (see `results.commit_files`): a folder whose result.json exists holds
    one complete calibration's outputs."""
    import yaml

    from fupin_sim.files import commit_files

    scen = fitted_scenario(spec, x, distance, out)
    header = (f"# Written by `fupin-sim calibrate` ({spec.name}); run it with\n"
              f"#   fupin-sim run {out / 'fitted.yaml'} --households {spec.scenario.households or 'N'} --out DIR\n")
    fitted_text = header + yaml.safe_dump(scen, allow_unicode=True, sort_keys=False)
    result_text = json.dumps(manifest, ensure_ascii=False, default=str)
    files = {"fit.csv": lambda tmp: fit.to_csv(tmp, index=False),
             "fitted.yaml": lambda tmp: tmp.write_text(fitted_text, encoding="utf-8")}
    if abc_tables is not None:
        every, draws = abc_tables
        files["abc_draws.csv"] = lambda tmp: every.to_csv(tmp, index=False)
        files["draws.csv"] = lambda tmp: draws.to_csv(tmp, index=False)
    files["result.json"] = lambda tmp: tmp.write_text(result_text, encoding="utf-8")
    # draws of an earlier calibration with `abc:` must not stay beside a result without them
    commit_files(out, files, marker="result.json", stale=() if abc_tables is not None else ("abc_draws.csv", "draws.csv"))


def _share_within(spec: CalibrationSpec, ev: Evaluator, draws: pd.DataFrame) -> float:
    """Share of the draws whose fitted targets (weight > 0) are all within 2 sd."""
    fitted = spec.targets["weight"].to_numpy() > 0
    ok = [bool(np.all(np.abs(target_z(ev.moments(rec), spec.targets)[fitted]) <= 2.0))
          for rec in ev.records(list(draws[spec.labels].to_numpy()), phase="abc")]
    return float(np.mean(ok)) if ok else float("nan")


# --------------------------------------------------------------------------------------
# Parameter recovery: synthetic targets from known parameter values
# --------------------------------------------------------------------------------------

def synthetic_targets(spec: str | Path | dict | CalibrationSpec, truth: dict[str, float], *,
                      seeds: list[int] | None = None, households: int | None = None,
                      sd_share: float = 0.05, sd_floor: float = 1e-3) -> pd.DataFrame:
    """Targets (same metrics and years as the spec's) simulated at the known values
    `truth` (label or path -> value): the mean over `seeds` (default: the spec's seeds,
    i.e. noise-free recovery; other seeds and more `households` make it a harder test).
    sd = max(sd_share × |value|, sd_floor)."""
    spec = load_spec(spec)
    x = []
    for p in spec.parameters:
        if p.label in truth:
            x.append(float(truth[p.label]))
        elif p.path in truth:
            x.append(float(truth[p.path]))
        else:
            raise InputError(f"no true value for {p.label}", where="truth")
    sc = spec.scenario if households is None else spec.scenario.edit(households=households)
    cells = list(zip(spec.targets["metric"], spec.targets["year"].astype(int)))
    reps = np.asarray(evaluate_point(sc, spec.overrides(x), seeds or spec.seeds, cells)).mean(axis=0)
    t = spec.targets[["year", "metric"]].copy()
    t["value"] = reps
    t["sd"] = np.maximum(sd_share * np.abs(reps), sd_floor)
    t["weight"] = 1.0
    t["bound"] = "point"
    t["source"] = "synthetic: simulated at " + json.dumps(dict(zip(spec.labels, x)))
    t["note"] = "parameter-recovery check"
    return t


# --------------------------------------------------------------------------------------
# Command line (wired into fupin_sim.cli)
# --------------------------------------------------------------------------------------

def add_cli(subparsers) -> None:
    """Register `fupin-sim calibrate SPEC --out DIR [--n-jobs J] [--progress]`."""
    import argparse

    from fupin_sim.cli import _n_jobs

    cal = subparsers.add_parser("calibrate", help="fit parameters to observed targets (simulated moments)")
    cal.add_argument("spec", help="a calibration spec (YAML), e.g. calibration/jiangsu.yaml")
    cal.add_argument("--n-jobs", type=_n_jobs, default=1, help="processes for evaluations (-1: all cores)")
    cal.add_argument("--progress", action=argparse.BooleanOptionalAction, default=False,
                     help="print a line after each batch of evaluations")
    cal.add_argument("--out", required=True, help="output folder (rerun into it to resume)")
    cal.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args) -> int:
    result = calibrate(args.spec, args.out, n_jobs=args.n_jobs, progress=args.progress)
    m = result.manifest
    ex = m["execution"]
    print(f"{m['name']}: distance {m['distance']:.4g}; {m['within_1sd']}/{m['targets']} targets within 1 sd, "
          f"{m['within_2sd']}/{m['targets']} within 2 sd"
          + (f" ({m['comparisons']} comparison figure(s) not fitted: see fit.csv)" if m.get("comparisons") else "")
          + f"; {ex['evaluated']} evaluations run, "
          f"{ex['reused_from_log']} reused, in {ex['wall_seconds']:.1f} s")
    for label, value in result.best.items():
        print(f"  {label} = {value:.6g}")
    print(f"written to {result.out} (fit.csv, fit.png, fitted.yaml, trials.jsonl)")
    return 0
