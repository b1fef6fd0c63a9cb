"""Calibration by simulated moments: fit chosen parameters of a scenario to observed targets
(the spec: `calibrate.spec`; the distance: `calibrate.objective`; the trial log:
`calibrate.trials`).

Choices made here, and why:

* **Optimiser**: `scipy.optimize.differential_evolution` (seeded Latin-hypercube start,
  `updating="deferred"`, so a whole generation is evaluated as one batch and the result
  does not depend on `n_jobs`), then optionally a bounded Nelder–Mead polish (the objective
  of a finite population is piecewise constant, so gradient polishing is useless).
* **Parameter draws** (`abc:`): approximate Bayesian computation over the same trial log
  (`fupin_sim.experiments.abc`).

Outputs: `calibration.json` (the validated spec and its hash), `trials.jsonl`, `fit.csv`
(target rows with the fitted moments), `fit.png` (drawn by the command line, or
`fupin_sim.report.save_figures`), `fitted.yaml` (a scenario extending the
base with the fitted values, `source: calibrated ...`), `result.json`, and with `abc:`
`abc_draws.csv` (every proposal, by round) and `draws.csv` (equal-weight parameter draws
for `fupin-sim run --draws` and `fupin-sim forecast --draws`).
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from fupin_sim.errors import InputError
from fupin_sim.experiments.abc import abc_tables
from fupin_sim.experiments.calibrate.objective import Evaluator, evaluate_point, fit_counts, fit_table, target_z
from fupin_sim.experiments.calibrate.spec import CalibrationSpec, load_spec
from fupin_sim.experiments.executor import claim
from fupin_sim.files import commit_files
from fupin_sim.results import package_version
from fupin_sim.scenario import BUDGETS, BUNDLED, RULES


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
    claim(out, "calibration.json", "evaluation_hash", spec.evaluation_hash,
          {"kind": "calibrate", "evaluation_hash": spec.evaluation_hash, "spec_hash": spec.hash,
           "spec_file": spec.file, "name": spec.name, "spec": spec.normalized()}, "calibration",
          lambda held, old: f"holds a calibration of other runs (evaluation hash {old}, from "
                            f"{held.get('spec_file') or 'a spec given in code'}); this spec's is "
                            f"{spec.evaluation_hash}: use another output folder")


def fitted_scenario(spec: CalibrationSpec, x, distance: float, out: Path | None) -> dict:
    """A scenario extending the base with the fitted values (`source: calibrated ...`)."""
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
        every, draws, abc_summary = abc_tables(spec, ev, best=x)
        abc_summary["draws_within_2sd"] = _share_within(spec, ev, draws)
        tables = every, draws
    seconds = time.perf_counter() - t_start
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
                              "log_partial_line_dropped_bytes": ev.log.dropped_partial, "simulate_seconds": ev.seconds,
                              "wall_seconds": seconds}}
    if out is not None:
        _write_outputs(spec, out, fit, x, distance, manifest, tables)
    return CalibrationResult(best=best, x=x, distance=distance, fit=fit, out=out, manifest=manifest, draws=draws)


def _write_outputs(spec: CalibrationSpec, out: Path, fit: pd.DataFrame, x, distance: float, manifest: dict,
                   abc_tables: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> None:
    """Every output in full under a temporary name, then renamed into place with
    `result.json` last (see `results.commit_files`): a folder whose result.json exists holds
    one complete calibration's outputs."""
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
    reps = np.asarray(evaluate_point(sc, seeds or spec.seeds, cells, spec.overrides(x))).mean(axis=0)
    t = spec.targets[["year", "metric"]].copy()
    t["value"] = reps
    t["sd"] = np.maximum(sd_share * np.abs(reps), sd_floor)
    t["weight"] = 1.0
    t["bound"] = "point"
    t["source"] = "synthetic: simulated at " + json.dumps(dict(zip(spec.labels, x)))
    t["note"] = "parameter-recovery check"
    return t
