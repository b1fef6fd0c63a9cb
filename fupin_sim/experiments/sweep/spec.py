"""A sweep's spec: the scenario, the parameters and their ranges, the design, the replicates
and the outputs, validated completely before any run. It is a YAML file (or the same
content as a dict):

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
  may draw that factor times its budget each year in the same run unscaled (what it drew, or
  its share of a shared line, where more; so a run with a factor other than 1 also
  simulates that reference run: twice the time). Budget
  lines pay several instruments; the factor moves money for one of them only.
* A grid takes `levels:` points per continuous range (default 5) and every listed value;
  a Sobol design needs a power of 2 samples (its balance properties require it).
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fupin_sim.checks import check_keys, number, whole
from fupin_sim.errors import InputError, close_match
from fupin_sim.experiments.designs import DESIGNS, design_points
from fupin_sim.experiments.outputs import REDUCES, Output
from fupin_sim.experiments.ranges import ParameterRange, bounds, flag
from fupin_sim.experiments.specs import read_spec, sized_scenario
from fupin_sim.params import numbers_in
from fupin_sim.results import package_version, summary_columns
from fupin_sim.scenario import SCALE, Scenario, load_scenario, resolve_path

TOP_KEYS = ("name", "description", "scenario", "households", "years", "seed", "parameters", "design",
            "replicates", "common_random_numbers", "outputs", "sensitivity")
PARAMETER_KEYS = ("range", "values", "scale", "integer")
DESIGN_KEYS = ("type", "samples", "levels", "seed")
SENSITIVITY_KEYS = ("bootstrap", "confidence", "noise_points", "noise_replicates")
DEFAULT_OUTPUTS = {"registered_poor": ["final"], "exits": ["sum"], "relapses": ["sum"], "new_poor": ["sum"],
                   "fgt1": ["mean"]}


# --------------------------------------------------------------------------------------
# The spec
# --------------------------------------------------------------------------------------

@dataclass
class SweepSpec:
    """A validated sweep (or sensitivity) spec."""
    file: str | None
    name: str
    scenario: Scenario
    parameters: list[ParameterRange]
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
        out = {"kind": self.kind, "fupin_sim": package_version(), "scenario": self.scenario.name,
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
        rows = design_points(self.parameters, self.design, self.samples, self.levels, self.design_seed)
        table = pd.DataFrame(rows, columns=self.parameter_names)
        table.insert(0, "point", np.arange(len(table)))
        return table

    def overrides(self, row: dict) -> dict:
        return {p.path: p.override(plain(row[p.path])) for p in self.parameters}


def plain(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    return x


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


def _parameter(path: str, node, scenario: Scenario, file) -> ParameterRange:
    where = f"parameters.{path}"
    if not isinstance(node, dict):
        raise InputError(f"expected {{range: [low, high]}} or {{values: [...]}}, got {node!r}", file=file, where=where)
    check_keys(node, PARAMETER_KEYS, file, where)
    scale = flag(node.get("scale", False), file, f"{where}.scale")
    integer = flag(node.get("integer", False), file, f"{where}.integer")
    if path.startswith(SCALE):  # a factor of the instrument's budget (the scenario's instrument_scale)
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
        low, high = bounds(node["range"], file, f"{where}.range", "use values: [{low}] to fix a value")
        p = ParameterRange(path, low=low, high=high, scale=scale, integer=integer, base=base)
        for i, x in enumerate((low, high)):
            p.check(scenario, p.cast(x), file, f"{where}.range[{i}]",
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
    p = ParameterRange(path, values=tuple(vals), scale=scale, integer=integer, base=base)
    for i, v in enumerate(vals):
        p.check(scenario, v, file, f"{where}.values[{i}]", "value" if not scale else "factor")
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
    data, file, path = read_spec(spec, "sweep spec", "scenario, parameters, design, ...")
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
    common = flag(data.get("common_random_numbers", kind == "sensitivity"), file, "common_random_numbers")
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


