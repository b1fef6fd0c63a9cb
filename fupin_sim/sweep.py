"""Parameter sweeps: many runs of one scenario over a design of parameter values, run in
parallel (joblib: loky on one machine, Dask on a cluster), streamed to disk as they
finish, resumable, with a progress bar.

A sweep spec is a YAML file (or the same content as a dict):

    name: wage-and-health
    scenario: baseline            # a bundled name, or a scenario file relative to this spec
    households: 2000              # optional: simulated households (default: the scenario's)
    years: [2016, 2020]           # optional (default: the scenario's)
    seed: 11                      # optional: seeds of the runs and of the design (default: the scenario's)
    parameters:                   # dotted paths (or nested groups) of the scenario's parameters
      income.wage_growth: {range: [0.03, 0.09]}            # continuous
      health.poor_cap_amount: {values: [3000, 5000, 8000]} # a list of numbers
      health.admission_rate: {range: [0.8, 1.2], scale: true}  # multiply the scenario's value
      instrument_scale.microloan: {values: [0, 0.5, 1, 2]}   # a factor of one instrument's budget
    design: {type: latin_hypercube, samples: 64, seed: 1}  # grid (levels: 5) | latin_hypercube | sobol
    replicates: 2                 # runs per design point, each with its own seed
    common_random_numbers: false  # true: replicate r of every point uses the same seed
    outputs:                      # metric of the yearly summary: reduction(s)
      registered_poor: final      # final | first | sum | mean | min | max | change | a year
      exits: [sum, mean]
      relapses: sum

Choices made here, and why:

* **Seeds.** Run (point p, replicate r) uses a seed hashed from (spec seed, p, r), so a
  run's numbers never depend on `n_jobs`, the batch it ran in or the order runs finish.
  With `common_random_numbers: true` the seed depends on r only and equals replicate r
  of `fupin-sim run --seed SEED --reps R` (the engine's common random numbers then make
  differences between points reflect the parameters, not the draws).
* **Dated parameters** (e.g. `poverty_line.national`) swept with a plain value take that
  value in every year: the swept number replaces the schedule. With `scale: true` the
  swept number multiplies every number of the scenario's value instead (the schedule,
  or a list such as `health.admission_rate`); the table then records the factor.
* `integer: true` rounds a parameter's sampled values to whole numbers.
* **An instrument's budget** (`instrument_scale.<instrument>`) is a factor, not a model
  parameter: each run's scenario is `Scenario.edit(instrument_scale=...)`, in which the instrument
  may draw that factor times what it drew each year in the same run unscaled (so a run
  with a factor other than 1 also simulates that reference run: twice the time). Budget
  lines pay several instruments; the factor moves money for one of them only.
* A grid takes `levels:` points per continuous range (default 5) and every listed value;
  a Sobol design needs a power of 2 samples (its balance properties require it).

Output folder: `sweep.json` (the validated spec and its hash), `design.csv` (one row per
point), `runs/<run id>.json` (one small file per finished run, written atomically),
`results.csv` (one row per run: run id, point, replicate, seed, parameter values,
outputs) and `manifest.json` (renamed into place after results.csv: `files.commit_files`).
Rerunning the same spec skips finished runs, redoes a run whose file is unreadable or does
not match, and refuses a folder holding another sweep.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import numbers
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fupin_sim.errors import InputError, close_match
from fupin_sim.files import write_csv_atomic, write_json_atomic
from fupin_sim.params import numbers_in
from fupin_sim.scenario import SCALE, Scenario, load_scenario, resolve_path
from fupin_sim.checks import check_keys, number, whole
from fupin_sim.specs import scaled, sized_scenario
from fupin_sim.yamlfile import read_mapping

DESIGNS = ("grid", "latin_hypercube", "sobol")
REDUCES = ("final", "first", "sum", "mean", "min", "max", "change")
TOP_KEYS = ("name", "description", "scenario", "households", "years", "seed", "parameters", "design",
            "replicates", "common_random_numbers", "outputs", "sensitivity")
PARAMETER_KEYS = ("range", "values", "scale", "integer")
DESIGN_KEYS = ("type", "samples", "levels", "seed")
SENSITIVITY_KEYS = ("bootstrap", "confidence", "noise_points", "noise_replicates")
DEFAULT_OUTPUTS = {"registered_poor": ["final"], "exits": ["sum"], "relapses": ["sum"], "new_poor": ["sum"],
                   "fgt1": ["mean"]}
DERIVED = {"poverty_gap_yuan": "fgt1 × persons × poverty_line: the yearly aggregate poverty gap in yuan"}


# --------------------------------------------------------------------------------------
# Metrics shared by the experiments
# --------------------------------------------------------------------------------------

def add_derived(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with derived metrics (`poverty_gap_yuan`) added when their inputs exist."""
    if {"fgt1", "persons", "poverty_line"} <= set(summary.columns) and "poverty_gap_yuan" not in summary:
        summary = summary.assign(poverty_gap_yuan=summary["fgt1"] * summary["persons"] * summary["poverty_line"])
    return summary


def reduce_metric(summary: pd.DataFrame, metric: str, reduce: str | int) -> float:
    """One number from a yearly metric: final, first, sum, mean, min, max, change (final −
    first) or the value in a given year."""
    x = summary[metric].to_numpy(dtype=float)
    if isinstance(reduce, int):
        return float(x[summary["year"].to_numpy() == reduce][0])
    return float({"final": lambda: x[-1], "first": lambda: x[0], "sum": x.sum, "mean": x.mean, "min": x.min,
                  "max": x.max, "change": lambda: x[-1] - x[0]}[reduce]())


@dataclass(frozen=True)
class Output:
    metric: str
    reduce: str | int

    @property
    def name(self) -> str:
        return f"{self.metric}_{self.reduce}"


def reduce_outputs(summary: pd.DataFrame, outputs: tuple[Output, ...]) -> dict[str, float]:
    summary = add_derived(summary)
    return {o.name: reduce_metric(summary, o.metric, o.reduce) for o in outputs}


def summary_columns(scenario: Scenario) -> list[str]:
    """Metrics a run of this scenario reports (a probe run on a few households)."""
    from fupin_sim.results import simulate

    probe = scenario.edit(households=min(scenario.households or 50, 50))
    return [c for c in add_derived(simulate(probe).summary).columns if c != "year"]


# --------------------------------------------------------------------------------------
# The spec
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SweptParameter:
    path: str
    low: float | None = None
    high: float | None = None
    values: tuple | None = None
    scale: bool = False
    integer: bool = False
    base: Any = None  # the scenario's value (what `scale` multiplies)

    def from_unit(self, u: np.ndarray) -> list:
        """Map points of the unit interval to this parameter's values."""
        if self.values is not None:
            k = len(self.values)
            return [self.values[min(int(x * k), k - 1)] for x in u]
        return [self._cast(self.low + float(x) * (self.high - self.low)) for x in u]

    def levels(self, levels: int) -> list:
        if self.values is not None:
            return list(self.values)
        out = [self._cast(float(x)) for x in np.linspace(self.low, self.high, levels)]
        return list(dict.fromkeys(out))  # integer rounding may merge levels

    def _cast(self, x: float):
        return int(round(x)) if self.integer else float(x)

    def override(self, x) -> Any:
        """The value given to `Params.override` for a swept number `x`."""
        if not self.scale:
            return int(round(x)) if self.integer else x
        return scaled(self.base, x, self.integer)

    def spec(self) -> dict:
        d = {"path": self.path, "scale": self.scale, "integer": self.integer}
        d.update({"range": [self.low, self.high]} if self.values is None else {"values": list(self.values)})
        return d


@dataclass
class SweepSpec:
    """A validated sweep (or sensitivity) spec."""
    file: str | None
    name: str
    scenario: Scenario
    parameters: list[SweptParameter]
    design: str
    samples: int | None
    levels: int
    design_seed: int
    replicates: int
    seed: int
    common_random_numbers: bool
    outputs: tuple[Output, ...]
    kind: str = "sweep"
    sensitivity: dict = field(default_factory=dict)
    description: str = ""

    def normalized(self) -> dict:
        """Everything that decides which runs exist and what they compute."""
        from fupin_sim import __version__

        out = {"kind": self.kind, "fupin_sim": __version__, "scenario": self.scenario.name,
               "scenario_hash": self.scenario.hash, "households": self.scenario.households,
               "years": list(self.scenario.years), "seed": self.seed,
               "parameters": [p.spec() for p in self.parameters],
               "design": {"type": self.design, "samples": self.samples, "levels": self.levels,
                          "seed": self.design_seed},
               "replicates": self.replicates, "common_random_numbers": self.common_random_numbers,
               "outputs": [[o.metric, o.reduce] for o in self.outputs]}
        if self.kind == "sensitivity":
            out["noise"] = {k: self.sensitivity[k] for k in ("noise_points", "noise_replicates")}
        return out

    @property
    def hash(self) -> str:
        blob = json.dumps(self.normalized(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def parameter_names(self) -> list[str]:
        return [p.path for p in self.parameters]

    def design_table(self) -> pd.DataFrame:
        """One row per design point: `point` and the value of every swept parameter."""
        names = self.parameter_names
        if self.design == "grid":
            rows = list(itertools.product(*(p.levels(self.levels) for p in self.parameters)))
        else:
            unit = unit_sample(self.design, len(self.parameters), self.samples, self.design_seed)
            cols = [p.from_unit(unit[:, j]) for j, p in enumerate(self.parameters)]
            rows = list(zip(*cols))
        table = pd.DataFrame(rows, columns=names)
        table.insert(0, "point", np.arange(len(table)))
        return table

    def overrides(self, row: dict) -> dict:
        return {p.path: p.override(_plain(row[p.path])) for p in self.parameters}


def _plain(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    return x


def _qmc(kind: str, d: int, seed: int):
    from scipy.stats import qmc

    cls = qmc.Sobol if kind == "sobol" else qmc.LatinHypercube
    rng = np.random.default_rng(seed)
    try:
        return cls(d, scramble=True, rng=rng)
    except TypeError:  # SciPy < 1.15 calls it `seed`
        return cls(d, scramble=True, seed=rng)


def unit_sample(design: str, d: int, n: int, seed: int) -> np.ndarray:
    """n points of the d-dimensional unit cube: scrambled Sobol' or a Latin hypercube."""
    engine = _qmc(design, d, seed)
    if design == "sobol":
        return engine.random_base2(int(math.log2(n)))
    return engine.random(n)


def _read_yaml(path: Path) -> dict:
    return read_mapping(path, "scenario, parameters, design, ...")


def _bool(value, file, where) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"expected true or false, got {value!r}", file=file, where=where)
    return value


def _flatten_parameters(tree: dict, scenario: Scenario, file, prefix: str = ""):
    """Yield (path, settings) for dotted keys or nested groups of parameters."""
    paths = scenario.parameter_paths()
    groups = {p.rsplit(".", i)[0] for p in paths for i in range(1, p.count(".") + 1)} | {SCALE[:-1]}
    for key, node in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if path in paths or path.startswith(SCALE):  # an instrument's budget factor: see _parameter
            yield path, node
        elif path in groups and isinstance(node, dict) and not (set(node) & set(PARAMETER_KEYS)):
            yield from _flatten_parameters(node, scenario, file, path)
        else:
            raise InputError(f"unknown parameter{close_match(path, paths + sorted(groups))}", file=file,
                             where=f"parameters.{path}")


def _check_override(scenario: Scenario, p: SweptParameter, x, file, where: str, label: str) -> None:
    try:
        scenario.edit(parameters={p.path: p.override(x)})
    except InputError as e:
        raise InputError(f"{label} {x!r} is not allowed: {e.detail}", file=file, where=where) from None


def _parameter(path: str, node, scenario: Scenario, file) -> SweptParameter:
    where = f"parameters.{path}"
    if not isinstance(node, dict):
        raise InputError(f"expected {{range: [low, high]}} or {{values: [...]}}, got {node!r}", file=file, where=where)
    check_keys(node, PARAMETER_KEYS, file, where)
    scale = _bool(node.get("scale", False), file, f"{where}.scale")
    integer = _bool(node.get("integer", False), file, f"{where}.integer")
    if path.startswith(SCALE):  # a factor of the instrument's budget (Simulation's instrument_scale)
        try:
            scenario.programme.check_scale({path.removeprefix(SCALE): 1.0})
        except InputError as e:
            raise InputError(e.detail, file=file, where=where) from None
        if scale:
            raise InputError("is a factor of the instrument's budget already: drop 'scale: true'", file=file,
                             where=f"{where}.scale")
        base = 1.0
    else:
        base = scenario.parameter(path).value
        if base is None and scale:
            raise InputError("has no value in this scenario to multiply: drop 'scale: true' and give the values",
                             file=file, where=f"{where}.scale")
    if not scale:
        numbers_only = base.values() if isinstance(base, dict) else [base]
        for v in numbers_only:
            if isinstance(v, str):
                raise InputError(f"is a text parameter ({base!r}), not a number: sweeps vary numbers only",
                                 file=file, where=where)
            if isinstance(v, (list, tuple)):
                raise InputError(f"is a list ({base!r}), not a single number: add 'scale: true' to multiply "
                                 f"every number in it by the swept factor", file=file, where=where)
    elif any(isinstance(v, str) for v in numbers_in(base)):
        raise InputError(f"is a text parameter ({base!r}), not a number: sweeps vary numbers only",
                         file=file, where=where)
    if ("range" in node) == ("values" in node):
        raise InputError("give either range: [low, high] or values: [...]", file=file, where=where)
    if "range" in node:
        rng = node["range"]
        if not isinstance(rng, list) or len(rng) != 2:
            raise InputError(f"expected [low, high], got {rng!r}", file=file, where=f"{where}.range")
        low, high = (number(v, file, f"{where}.range[{i}]") for i, v in enumerate(rng))
        if low > high:
            raise InputError(f"low {low!r} is above high {high!r}", file=file, where=f"{where}.range")
        if low == high:
            raise InputError(f"low and high are both {low!r}: use values: [{low!r}] to fix a value",
                             file=file, where=f"{where}.range")
        p = SweptParameter(path, low=float(low), high=float(high), scale=scale, integer=integer, base=base)
        for i, x in enumerate((low, high)):
            _check_override(scenario, p, p._cast(float(x)), file, f"{where}.range[{i}]",
                            ("low", "high")[i] if not scale else ("low factor", "high factor")[i])
        return p
    values = node["values"]
    if not isinstance(values, list) or not values:
        raise InputError(f"expected a non-empty list of numbers, got {values!r}", file=file, where=f"{where}.values")
    vals = []
    for i, v in enumerate(values):
        v = number(v, file, f"{where}.values[{i}]")
        v = int(round(v)) if integer else v
        vals.append(v)
    p = SweptParameter(path, values=tuple(vals), scale=scale, integer=integer, base=base)
    for i, v in enumerate(vals):
        _check_override(scenario, p, v, file, f"{where}.values[{i}]", "value" if not scale else "factor")
    return p


def _outputs(raw, columns: list[str], years: tuple[int, int], file) -> tuple[Output, ...]:
    if not isinstance(raw, dict) or not raw:
        raise InputError("expected a mapping of metric: reduction (e.g. registered_poor: final)", file=file,
                         where="outputs")
    out = []
    for metric, reduces in raw.items():
        where = f"outputs.{metric}"
        if metric not in columns:
            raise InputError(f"unknown metric{close_match(str(metric), columns)}; available: {columns}", file=file,
                             where=where)
        for r in reduces if isinstance(reduces, list) else [reduces]:
            if isinstance(r, int) and not isinstance(r, bool):
                if not years[0] <= r <= years[1]:
                    raise InputError(f"year {r} is outside the simulated years {years[0]}-{years[1]}", file=file,
                                     where=where)
            elif r not in REDUCES:
                raise InputError(f"unknown reduction {r!r}{close_match(str(r), REDUCES)}; use one of "
                                 f"{list(REDUCES)} or a year", file=file, where=where)
            out.append(Output(str(metric), r))
    names = [o.name for o in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise InputError(f"output {dup!r} is listed twice", file=file, where="outputs")
    return tuple(out)


def load_spec(spec: str | Path | dict | SweepSpec, *, kind: str = "sweep") -> SweepSpec:
    """Read and validate a sweep spec completely (file path, or the same content as a dict).

    Every problem is an :class:`InputError` naming the spec file and the key path, raised
    before any run starts.
    """
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, dict):
        data, file, path = dict(spec), None, None
    else:
        path = Path(spec)
        if not path.is_file():
            raise InputError("sweep spec not found", file=str(spec))
        data, file = _read_yaml(path), str(path)
    check_keys(data, TOP_KEYS, file, "")
    name = data.get("name", path.stem if path else kind)
    if not isinstance(name, str) or not name:
        raise InputError("expected a non-empty text", file=file, where="name")
    description = data.get("description", "")

    ref = data.get("scenario")
    if ref is None:
        raise InputError("missing key 'scenario' (a bundled name such as 'baseline', or a scenario file)", file=file)
    if isinstance(ref, Scenario):
        scenario = ref
    elif isinstance(ref, (str, Path)):
        try:
            scenario_path = resolve_path(ref, relative_to=path.resolve() if path else None)
        except InputError as e:
            raise InputError(e.detail, file=file, where="scenario") from None
        scenario = load_scenario(scenario_path)
    else:
        raise InputError(f"expected a scenario name or file, got {ref!r}", file=file, where="scenario")
    scenario, seed = sized_scenario(scenario, data, file)

    raw_params = data.get("parameters")
    if not isinstance(raw_params, dict) or not raw_params:
        raise InputError("expected a mapping of parameter paths to {range: [low, high]} or {values: [...]}",
                         file=file, where="parameters")
    params = [_parameter(p, node, scenario, file) for p, node in _flatten_parameters(raw_params, scenario, file)]

    design_raw = data.get("design", {"type": "sobol"} if kind == "sensitivity" else None)
    if design_raw is None:
        raise InputError("missing key 'design' (e.g. {type: latin_hypercube, samples: 64})", file=file)
    if isinstance(design_raw, str):
        design_raw = {"type": design_raw}
    if not isinstance(design_raw, dict):
        raise InputError(f"expected {{type: ..., samples: ...}}, got {design_raw!r}", file=file, where="design")
    check_keys(design_raw, DESIGN_KEYS, file, "design")
    design = design_raw.get("type")
    if design not in DESIGNS:
        raise InputError(f"unknown design {design!r}{close_match(str(design), DESIGNS)}; known: {', '.join(DESIGNS)}",
                         file=file, where="design.type")
    if kind == "sensitivity" and design != "sobol":
        raise InputError(f"Sobol' indices need a Sobol' design (type: sobol), got {design!r}", file=file,
                         where="design.type")
    samples, levels = None, 5
    if design == "grid":
        if "samples" in design_raw:
            raise InputError("a grid takes levels: (points per range), not samples:", file=file, where="design.samples")
        levels = whole(design_raw.get("levels", 5), file, "design.levels", 2)
    else:
        if "levels" in design_raw:
            raise InputError(f"levels: is for grids; a {design} design takes samples:", file=file,
                             where="design.levels")
        if "samples" not in design_raw:
            raise InputError(f"a {design} design needs samples: (number of design points)", file=file,
                             where="design")
        samples = whole(design_raw["samples"], file, "design.samples", 1)
        if design == "sobol" and samples & (samples - 1):
            raise InputError(f"Sobol' designs need a power of 2 samples (e.g. {2 ** round(math.log2(samples))}), "
                             f"got {samples}", file=file, where="design.samples")
    design_seed = whole(design_raw.get("seed", seed), file, "design.seed", 0)

    replicates = whole(data.get("replicates", 1), file, "replicates", 1)
    common = _bool(data.get("common_random_numbers", kind == "sensitivity"), file, "common_random_numbers")
    outputs = _outputs(data.get("outputs", DEFAULT_OUTPUTS), summary_columns(scenario), scenario.years, file)

    sens = {"bootstrap": 999, "confidence": 0.95, "noise_points": 4, "noise_replicates": 8}
    raw_sens = data.get("sensitivity") or {}
    if not isinstance(raw_sens, dict):
        raise InputError("expected a mapping (bootstrap, confidence, noise_points, noise_replicates)", file=file,
                         where="sensitivity")
    check_keys(raw_sens, SENSITIVITY_KEYS, file, "sensitivity")
    sens["bootstrap"] = whole(raw_sens.get("bootstrap", 999), file, "sensitivity.bootstrap", 0)
    conf = raw_sens.get("confidence", 0.95)
    if isinstance(conf, bool) or not isinstance(conf, numbers.Real) or not 0 < conf < 1:
        raise InputError(f"expected a level between 0 and 1 (e.g. 0.95), got {conf!r}", file=file,
                         where="sensitivity.confidence")
    sens["confidence"] = float(conf)
    sens["noise_points"] = whole(raw_sens.get("noise_points", 4), file, "sensitivity.noise_points", 0)
    sens["noise_replicates"] = whole(raw_sens.get("noise_replicates", 8), file, "sensitivity.noise_replicates", 2)
    if kind == "sensitivity" and sens["noise_points"] > samples:
        raise InputError(f"at most design.samples ({samples}) points, got {sens['noise_points']}", file=file,
                         where="sensitivity.noise_points")
    return SweepSpec(file=file, name=name, scenario=scenario, parameters=params, design=design, samples=samples,
                     levels=levels, design_seed=design_seed, replicates=replicates, seed=seed,
                     common_random_numbers=common, outputs=outputs, kind=kind, sensitivity=sens,
                     description=str(description))


# --------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------

def run_seed(seed: int, point: int | str, replicate: int, common: bool = False) -> int:
    """Seed of run (point, replicate): a hash of (seed, point, replicate), or with common
    random numbers replicate r's seed of an ensemble with base `seed` (the same for all points)."""
    if common:
        from fupin_sim.ensemble import replicate_seeds

        return replicate_seeds(seed, replicate + 1)[replicate]
    digest = hashlib.blake2b(f"fupin_sim.sweep:{seed}:{point}:{replicate}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class RunTask:
    run_id: str
    point: int | str
    replicate: int
    seed: int
    overrides: dict


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 ** 2 if sys.platform == "darwin" else peak / 1024


def run_batch(scenario: Scenario, tasks: list[RunTask], outputs: tuple[Output, ...]) -> list[dict]:
    """Worker: run tasks one after another; return one record per run (no disk access, so
    it works on remote Dask workers too)."""
    from fupin_sim.simulation import Simulation

    records = []
    for task in tasks:
        t0 = time.perf_counter()
        try:
            sc = scenario.edit(parameters=task.overrides, where="sweep")  # checked at the spec's bounds
            sim = Simulation(sc, seed=task.seed)
            t1 = time.perf_counter()
            # the yearly rows without building the run's manifest and ledger tables, which a
            # sweep does not keep (a test checks this equals simulate(...).summary)
            summary = sim.run()
            t2 = time.perf_counter()
            values = reduce_outputs(summary, outputs)
        except Exception as e:
            raise RuntimeError(f"run {task.run_id} (point {task.point}, replicate {task.replicate}, seed {task.seed}, "
                               f"parameters {task.overrides}) failed: {type(e).__name__}: {e}") from e
        t3 = time.perf_counter()
        records.append({"run_id": task.run_id, "point": task.point, "replicate": task.replicate, "seed": task.seed,
                        "outputs": values,
                        "seconds": {"setup": t1 - t0, "simulate": t2 - t1, "reduce": t3 - t2},
                        "pid": os.getpid(), "peak_rss_mb": _peak_rss_mb()})
    return records


def _read_run(path: Path, task: RunTask, spec_hash: str, names: list[str]) -> dict | None:
    """A finished run's record, or None when the file is missing, unreadable or not this run's."""
    if path.is_symlink():  # not written by a sweep: never followed, redone (the rename replaces the link)
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable, cut short, not UTF-8
        return None
    if not isinstance(rec, dict):
        return None
    if (rec.get("run_id"), rec.get("spec_hash"), rec.get("point"), rec.get("replicate"), rec.get("seed")) != \
            (task.run_id, spec_hash, task.point, task.replicate, task.seed):
        return None
    out = rec.get("outputs")
    if not isinstance(out, dict) or sorted(out) != sorted(names):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in out.values()):
        return None
    return rec


def require_dask() -> None:
    """An InputError (before any run) when a scheduler is asked for without Dask installed."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError("running on a Dask cluster needs Dask: pip install 'fupin-sim[cluster]' "
                         "(or: pip install \"dask[distributed]\")", where="scheduler") from None


def _client(scheduler):
    require_dask()
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler, False
    return Client(scheduler), True


def _workers(n_jobs: int, client=None) -> int:
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    from joblib import effective_n_jobs

    return max(1, effective_n_jobs(n_jobs))


def _batches(tasks: list[RunTask], workers: int, batch_size: int | None) -> list[list[RunTask]]:
    size = batch_size or max(1, min(16, math.ceil(len(tasks) / (workers * 8))))
    return [tasks[i:i + size] for i in range(0, len(tasks), size)]


def execute(scenario: Scenario, tasks: list[RunTask], outputs: tuple[Output, ...], runs_dir: Path, spec_hash: str,
            *, n_jobs: int = 1, scheduler=None, progress: bool | None = None, batch_size: int | None = None,
            desc: str = "sweep") -> tuple[dict[str, dict], dict]:
    """Run the tasks not already on disk; write each finished run to `runs_dir` as it
    arrives. Returns every task's record (reused or new) and counts and timings."""
    from fupin_sim.files import output_dir, remove_temporaries
    from fupin_sim.progress import progress_bar

    t_start = time.perf_counter()
    runs_dir = output_dir(runs_dir.parent, runs_dir.name)  # a real folder inside the output folder, not a link
    remove_temporaries(runs_dir)  # left by a process killed while writing
    names = [o.name for o in outputs]
    records: dict[str, dict] = {}
    pending, corrupt = [], 0
    for task in tasks:
        path = runs_dir / f"{task.run_id}.json"
        rec = _read_run(path, task, spec_hash, names)
        if rec is None:
            corrupt += path.exists()
            pending.append(task)
        else:
            records[task.run_id] = rec
    stats = {"runs": len(tasks), "reused": len(records), "redone_unreadable": corrupt, "ran": len(pending),
             "write_seconds": 0.0, "check_seconds": time.perf_counter() - t_start, "batches": 0}
    if pending:
        client, own = (None, False) if scheduler is None else _client(scheduler)
        try:
            batches = _batches(pending, _workers(n_jobs, client), batch_size)
            stats["batches"] = len(batches)
            bar = progress_bar(len(tasks), initial=len(records), desc=desc, enable=progress)
            try:
                for batch_records in _dispatch(scenario, batches, outputs, n_jobs, client):
                    t0 = time.perf_counter()
                    for rec in batch_records:
                        rec["spec_hash"] = spec_hash
                        write_json_atomic(runs_dir / f"{rec['run_id']}.json", rec)
                        records[rec["run_id"]] = rec
                    stats["write_seconds"] += time.perf_counter() - t0
                    bar.update(len(batch_records))
            finally:
                bar.close()
        finally:
            if own:
                client.close()
    stats["wall_seconds"] = time.perf_counter() - t_start
    return records, stats


def _dispatch(scenario, batches, outputs, n_jobs, client):
    """Batch results as they finish: in this process, through loky, or through Dask."""
    if client is None and n_jobs == 1:
        for b in batches:
            yield run_batch(scenario, b, outputs)
        return
    from joblib import Parallel, delayed, parallel_config

    calls = (delayed(run_batch)(scenario, b, outputs) for b in batches)
    if client is None:
        yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(calls)
        return
    with parallel_config(backend="dask"):
        yield from Parallel(n_jobs=-1, return_as="generator_unordered")(calls)


def claim_output(out: Path, marker: str, key: str, value: str, record: dict, what: str, other) -> None:
    """Create `out` for one job, or check that it holds this very job (its marker file's
    `key` equals `value`); a folder holding another job (`other(held, old)` says which) or
    unrelated files is an error before anything runs."""
    from fupin_sim.files import output_dir

    path = out / marker
    if path.is_symlink():
        raise InputError("is a symbolic link, not a file this program wrote: delete it or choose another output "
                         "folder", file=str(path))
    if out.is_dir():  # a process killed while claiming the folder leaves only the marker's temporary file
        for stray in out.glob(f".{marker}.*.tmp"):
            stray.unlink(missing_ok=True)
    if path.exists():
        try:
            held = json.loads(path.read_text(encoding="utf-8"))
            old = held[key]
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError("is unreadable: delete the output folder or choose another one", file=str(path)) from None
        if old != value:
            raise InputError(other(held, old), file=str(out))
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"exists and is not an empty folder from a {what} (no {marker}): choose a new output folder",
                         file=str(out))
    output_dir(out)
    write_json_atomic(path, record)


def claim_folder(out: Path, spec: SweepSpec) -> None:
    """Create `out` for this spec, or check it holds this very spec."""
    claim_output(out, "sweep.json", "spec_hash", spec.hash,
                 {"kind": spec.kind, "spec_hash": spec.hash, "spec_file": spec.file, "name": spec.name,
                  "spec": spec.normalized()}, "sweep",
                 lambda held, old: f"holds a different {held.get('kind', 'sweep')} (spec hash {old}, from "
                                   f"{held.get('spec_file') or 'a spec given in code'}); this spec's hash is "
                                   f"{spec.hash}: use another output folder, or delete this one to start again")


def results_table(spec: SweepSpec, design: pd.DataFrame, tasks: list[RunTask], records: dict[str, dict]) -> pd.DataFrame:
    """One row per run, in (point, replicate) order: run id, point, replicate, seed,
    parameter values, outputs."""
    names = [o.name for o in spec.outputs]
    by_point = design.set_index("point")
    rows = []
    for t in tasks:
        rec = records[t.run_id]
        row = {"run_id": t.run_id, "point": t.point, "replicate": t.replicate, "seed": t.seed}
        row.update({p: _plain(by_point.at[t.point, p]) for p in spec.parameter_names})
        row.update({n: rec["outputs"][n] for n in names})
        rows.append(row)
    return pd.DataFrame(rows, columns=["run_id", "point", "replicate", "seed", *spec.parameter_names, *names])


def _run_id(point: int, rep: int, n_points: int, reps: int) -> str:
    pw = max(6, len(str(n_points - 1)))
    rw = max(3, len(str(reps - 1)))
    return f"p{point:0{pw}d}_r{rep:0{rw}d}"


def sweep_tasks(spec: SweepSpec, design: pd.DataFrame) -> list[RunTask]:
    tasks = []
    n = len(design)
    for row in design.to_dict("records"):
        point = int(row["point"])
        overrides = spec.overrides(row)
        for rep in range(spec.replicates):
            tasks.append(RunTask(_run_id(point, rep, n, spec.replicates), point, rep,
                                 run_seed(spec.seed, point, rep, spec.common_random_numbers), overrides))
    return tasks


@dataclass
class SweepResult:
    results: pd.DataFrame
    design: pd.DataFrame
    out: Path
    manifest: dict


def run_sweep(spec: str | Path | dict | SweepSpec, out: str | Path, n_jobs: int = 1, *, scheduler=None,
              progress: bool | None = None, batch_size: int | None = None) -> SweepResult:
    """Run a sweep: validate the spec, claim `out`, run the design's runs not already on
    disk (in parallel with `n_jobs` processes, or on a Dask cluster with `scheduler`, an
    address or a `distributed.Client`), then write `results.csv` and `manifest.json`.

    The results do not depend on `n_jobs`, `scheduler`, `batch_size` or on the order runs
    finish in. Safe to interrupt: rerun the same call to finish the remaining runs.
    """
    from fupin_sim.files import commit_files

    spec = load_spec(spec, kind="sweep")
    if scheduler is not None:
        require_dask()
    out = Path(out)
    design = spec.design_table()
    tasks = sweep_tasks(spec, design)
    claim_folder(out, spec)
    write_csv_atomic(design, out / "design.csv")
    records, stats = execute(spec.scenario, tasks, spec.outputs, out / "runs", spec.hash, n_jobs=n_jobs,
                             scheduler=scheduler, progress=progress, batch_size=batch_size, desc=spec.name)
    results = results_table(spec, design, tasks, records)
    man = experiment_manifest(spec, stats, n_jobs=n_jobs, scheduler=scheduler, points=len(design))
    commit_files(out, {"results.csv": lambda tmp: results.to_csv(tmp, index=False),
                       "manifest.json": lambda tmp: tmp.write_text(json.dumps(man, ensure_ascii=False, default=str),
                                                                   encoding="utf-8")})
    return SweepResult(results=results, design=design, out=out, manifest=man)


def experiment_manifest(spec: SweepSpec, stats: dict, *, n_jobs: int, scheduler, **extra) -> dict:
    from fupin_sim.results import package_version

    sc = spec.scenario
    return {"fupin_sim": package_version(), "kind": spec.kind, "name": spec.name, "spec_file": spec.file,
            "spec_hash": spec.hash, "scenario": sc.name, "scenario_file": sc.file, "scenario_hash": sc.hash,
            "years": list(sc.years), "households": sc.households, "seed": spec.seed,
            "common_random_numbers": spec.common_random_numbers, "design": spec.design,
            "replicates": spec.replicates, "outputs": [o.name for o in spec.outputs],
            "parameters": [p.spec() for p in spec.parameters], **extra,
            "execution": {"n_jobs": n_jobs, "backend": "dask" if scheduler is not None else
                          ("loky" if n_jobs != 1 else "sequential"), **stats},
            "scenario_parameters": sc.params.to_dict()}
