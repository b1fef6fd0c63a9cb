"""A calibration's spec: the scenario, the parameters fitted and their bounds, the target
tables, the replicates and their fixed seeds, the optimiser and the optional ABC draws,
validated completely (targets included) before any simulation but a probe.

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
    abc: {samples: 64, quantile: 0.25, seed: 2, rounds: 3}   # optional: parameter draws (experiments/abc.py;
                                                             # `tolerance` defaults to χ²(0.95, fitted targets))
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from fupin_sim.checks import check_keys, number, whole
from fupin_sim.errors import InputError, close_match
from fupin_sim.experiments.calibrate.objective import moment_columns
from fupin_sim.experiments.ranges import ParameterRange, bounds, flag
from fupin_sim.experiments.seeds import replicate_seeds
from fupin_sim.experiments.specs import read_spec, sized_scenario
from fupin_sim.params import numbers_in
from fupin_sim.results import package_version
from fupin_sim.scenario import Scenario, load_scenario, resolve_path

TOP_KEYS = ("name", "description", "scenario", "households", "years", "targets", "parameters", "replicates", "seed",
            "optimizer", "abc")
PARAMETER_KEYS = ("range", "scale", "element")
OPTIMIZER_KEYS = ("popsize", "maxiter", "seed", "tol", "polish", "polish_maxiter")
ABC_KEYS = ("samples", "quantile", "seed", "rounds", "tolerance")
TARGET_COLUMNS = ("year", "metric", "value", "sd")
TARGET_OPTIONAL = ("weight", "bound", "source", "note")
BOUNDS = ("point", "lower", "upper")  # what the observed value is: the value, or a bound on it
POLISH = ("none", "nelder-mead")


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

@dataclass
class CalibrationSpec:
    file: str | None
    name: str
    scenario: Scenario
    scenario_ref: str
    parameters: list[ParameterRange]
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
        return {"kind": "calibrate", "fupin_sim": package_version(), "scenario": self.scenario.name,
                "scenario_hash": self.scenario.hash, "households": self.scenario.households,
                "years": list(self.scenario.years), "parameters": [_fitted(p) for p in self.parameters],
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
        """The scenario's values for a parameter vector (elements of one table set in turn)."""
        out: dict = {}
        for p, v in zip(self.parameters, x):
            out[p.path] = (p if p.path not in out else replace(p, base=out[p.path])).override(float(v))
        return out


def _fitted(p: ParameterRange) -> dict:
    """A fitted parameter as the hashes that key trial logs have always read it."""
    return {"path": p.path, "range": [p.low, p.high], "scale": p.scale,
            "element": None if p.element is None else list(p.element)}


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _parameter(path: str, node, scenario: Scenario, file) -> ParameterRange:
    where = f"parameters.{path}"
    paths = scenario.parameter_paths()
    if path not in paths:
        raise InputError(f"unknown parameter{close_match(path, paths)}", file=file, where=where)
    if not isinstance(node, dict):
        raise InputError(f"expected {{range: [low, high]}}, got {node!r}", file=file, where=where)
    check_keys(node, PARAMETER_KEYS, file, where)
    scale = flag(node.get("scale", False), file, f"{where}.scale")
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
        for i in element:  # an index of a table, or a year of a dated value
            inside = (i in node_value if isinstance(node_value, dict)
                      else isinstance(node_value, list) and -len(node_value) <= i < len(node_value))
            if not inside:
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
            raise InputError(f"is dated ({base!r}), not a single number: add 'element: [year]' to fit one "
                             f"year's value, or 'scale: true' to fit a factor on every year's", file=file, where=where)
        if isinstance(base, (list, tuple)):
            raise InputError(f"is a list ({base!r}), not a single number: add 'element: [i, ...]' to fit one of "
                             f"its numbers, or 'scale: true' to fit a factor on all of them", file=file, where=where)
    elif any(isinstance(v, str) for v in numbers_in(base)):
        raise InputError(f"is a text parameter ({base!r}), not a number: calibration fits numbers only", file=file,
                         where=where)
    if "range" not in node:
        raise InputError("missing key 'range' ([low, high] bounds of the search)", file=file, where=where)
    low, high = bounds(node["range"], file, f"{where}.range", "fix the value in the scenario instead")
    p = ParameterRange(path, low, high, scale=scale, element=element, base=base)
    for i, x in enumerate((low, high)):
        p.check(scenario, x, file, f"{where}.range[{i}]", f"{('low', 'high')[i]} bound")
    return p


def load_spec(spec: str | Path | dict | CalibrationSpec, *, base_dir: str | Path | None = None) -> CalibrationSpec:
    """Read and validate a calibration spec completely, targets included, before any
    simulation except a 50-household probe that lists the metrics. Files named in a dict
    spec are relative to `base_dir` (default: the current folder)."""
    if isinstance(spec, CalibrationSpec):
        return spec
    data, file, path = read_spec(spec, "calibration spec", "scenario, parameters, targets, ...")
    folder = path.resolve().parent if path else Path(base_dir) if base_dir else Path.cwd()
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

    return CalibrationSpec(file=file, name=name, scenario=scenario, scenario_ref=str(scenario_path),
                           parameters=params, targets=targets, target_files=target_files, replicates=replicates,
                           seed=seed, optimizer=opt, abc=abc, years_given="years" in data,
                           description=str(data.get("description", "")),
                           seeds=replicate_seeds(seed, replicates))
