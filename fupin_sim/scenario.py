"""Scenarios are data: a YAML file that names a base (`extends:`), the population, the
years, the seed and parameter overrides. It is validated completely before anything
runs; an unknown key or a value of the wrong kind is an error naming the file and the
key path, with the closest known key where one is close.

    name: consolidation
    extends: baseline.yaml          # a file next to this one, or a bundled scenario name
    population: {preset: inner_mongolia_county, households: 20000}   # or {register: DIR}; seed: fixes it
    years: [2021, 2025]
    seed: 7
    parameters:
      poverty_line.national: {2021: 4000}
    interventions:                  # the policy menu: fupin_sim.interventions
      dibao: {rules: {standard: {2021: 6500}}}
    budgets:                        # money by funding source and year
      civil_affairs: {instruments: [dibao], amounts: unlimited}
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import numbers
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fupin_sim.checks import parse_years, whole_in
from fupin_sim.errors import InputError, close_match
from fupin_sim.interventions import Programme, check_capacity, parse, with_budgets
from fupin_sim.params import Params, available_presets
from fupin_sim.yamlfile import read_mapping

TOP_KEYS = {"name", "description", "extends", "population", "years", "seed", "parameters", "interventions",
            "budgets"}
POPULATION_KEYS = {"preset", "households", "register", "seed"}
BUNDLED = Path(__file__).resolve().parent / "scenarios"
RULES = "interventions."  # parameter paths `interventions.<label>.<rule>`: an instrument's rules
BUDGETS = "budgets."  # and `budgets.<line>.amounts`: a limited budget line's yuan a year
CAPACITY = "capacity"  # and `interventions.<label>.capacity`: most households it serves a year
SCALE = "instrument_scale."  # `instrument_scale.<instrument>`: a factor on an instrument's budget (edit)


@dataclass
class Scenario:
    name: str
    file: str | None
    preset: str
    years: tuple[int, int]
    seed: int
    params: Params
    households: int | None = None
    register: str | None = None
    population_seed: int | None = None  # fixed: every run starts from the same population
    description: str = ""
    data: dict = field(default_factory=dict)
    programme: Programme = field(default_factory=Programme)  # the validated interventions and budgets
    declared_years: tuple[int, int] | None = None  # the file's years: budgets and schedules are checked against them
    # {instrument: factor} on instruments' budgets (`Simulation` runs the unscaled run alongside);
    # not part of `hash`: manifests record it beside the hash
    instrument_scale: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: dict, file: str | None = None, *, declared: tuple[int, int] | None = None
                  ) -> "Scenario":
        """A scenario from the content of a file (merged with its bases), validated completely;
        `declared`: the years budgets and schedules must lie within (default: its years)."""
        return _build(data, file, declared=declared)

    @property
    def hash(self) -> str:
        """Fingerprint of everything that shapes the results (not the name or description)."""
        content = {k: v for k, v in self.data.items() if k not in ("name", "description", "extends")}
        content["_params"] = self.params.fingerprint()
        blob = json.dumps(content, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def edit(self, *, households: int | None = None, years=None, seed: int | None = None,
             parameters: dict | None = None, budget_scale: float | dict[str, float] | None = None,
             instrument_scale: dict[str, float] | None = None, where: str = "option") -> "Scenario":
        """A copy with changes, each validated as in a file; errors name `where` (the option,
        sweep, draw... the change came from) before the key path. The one way to change a
        scenario: command-line options, sweeps, calibrations, parameter draws and budget
        sliders all come here, and none re-reads the parameter files.

        `years`: (first, last), 'A-B' or one year. `parameters`: values at paths of
        :meth:`parameter_paths` (model parameters, dotted or as nested groups; instruments'
        rules and capacities; limited budget lines' amounts) and `instrument_scale.<instrument>`
        factors. `budget_scale`: a factor on every limited budget line's amounts, or {line:
        factor}. `instrument_scale`: {instrument: factor} on the instruments' budgets, on top of
        the scenario's (a factor of 1 removes one)."""
        def at(key: str) -> str:
            return f"{where}.{key}" if where else key

        data, changes = copy.deepcopy(self.data), {}
        if households is not None:
            changes["households"] = whole_in(households, self.file, at("population.households"), 1)
            data["population"] = {**(data.get("population") or {}), "households": changes["households"]}
        if years is not None:
            changes["years"] = parse_years(years, self.file, at("years"))
            data["years"] = list(changes["years"])
        if seed is not None:
            changes["seed"] = data["seed"] = whole_in(seed, self.file, at("seed"), 0, 2**63 - 1)
        parameters = dict(parameters or {})
        scale = {str(k)[len(SCALE):]: parameters.pop(k) for k in list(parameters) if str(k).startswith(SCALE)}
        if instrument_scale is not None:
            scale = {**instrument_scale, **scale} if isinstance(instrument_scale, dict) else instrument_scale
        model = {k: v for k, v in parameters.items() if not str(k).startswith((RULES, BUDGETS))}
        if model:
            changes["params"] = self.params.override(model, file=self.file, where=at("parameters"))
            data["parameters"] = _merge(data.get("parameters") or {}, model)
        programme = self._with_rules(parameters, data, at("parameters"))
        amounts = {self.budget_line(k, at("parameters")): v for k, v in parameters.items()
                   if str(k).startswith(BUDGETS)}
        for name, value in amounts.items():
            data["budgets"][name]["amounts"] = value
        factors = {} if budget_scale is None else {
            name: f for name, f in self.budget_factors(budget_scale, at("budget_scale")).items() if f != 1.0}
        for name, f in factors.items():
            data["budgets"][name]["amounts"] = _scaled_amounts(data["budgets"][name]["amounts"], f)
        if amounts or factors:
            programme = with_budgets(programme, data["budgets"], self.declared_years or self.years, self.file,
                                     at("parameters") if amounts else at("budget_scale"))
        programme.check_scale(scale, where=at("instrument_scale"))  # the new factors, named by `where`
        changes["instrument_scale"] = programme.check_scale({**self.instrument_scale, **scale})  # without the 1s
        return replace(self, data=data, programme=programme, **changes)

    def _with_rules(self, parameters: dict, data: dict, where: str) -> Programme:
        """The programme with the rules and capacities at `interventions.<label>.<rule>` paths
        changed (and `data`'s interventions with them)."""
        by_label: dict[str, dict] = {}
        for path, value in parameters.items():
            if str(path).startswith(RULES):
                label, rule = self.instrument_rule(path, where)
                by_label.setdefault(label, {})[rule] = value
        if not by_label:
            return self.programme
        entries = data.setdefault("interventions", {})
        items = []
        for it in self.programme.items:
            if it.label in by_label:
                rules = dict(by_label[it.label])
                entry = dict(entries.get(it.label) or {})
                if CAPACITY in rules:
                    entry[CAPACITY] = rules.pop(CAPACITY)
                    it = replace(it, capacity=check_capacity(entry[CAPACITY], self.file,
                                                             f"{where}.{RULES}{it.label}.{CAPACITY}"))
                if rules:
                    it = replace(it, rules=it.rules.override(rules, file=self.file, where=f"{where}.{RULES}{it.label}"))
                    entry["rules"] = {**(entry.get("rules") or {}), **rules}
                entries[it.label] = entry
            items.append(it)
        return Programme(items, list(self.programme.lines))

    def budget_factors(self, scale: float | dict[str, float], where: str = "budget_scale") -> dict[str, float]:
        """{limited line: factor} from one factor for every line or a factor per line
        ({line: factor}, the others × 1), each a finite number >= 0. Unlimited lines
        (entitlements) stay unlimited, whatever the factor."""
        budgets = self.data.get("budgets") or {}
        given = scale if isinstance(scale, dict) else {None: scale}
        for name, f in given.items():
            at = where if name is None else f"{where}.{name}"
            if isinstance(f, bool) or not isinstance(f, numbers.Real) or not math.isfinite(f) or f < 0:
                raise InputError(f"expected a finite factor >= 0, got {f!r}", where=at)
            if name is not None and name not in budgets:
                raise InputError(f"unknown budget line {name!r}{close_match(str(name), budgets)}; "
                                 f"lines of {self.name!r}: {sorted(budgets)}", where=at)
        lines = self._limited_lines()
        return {name: float(given.get(name, 1.0) if isinstance(scale, dict) else scale) for name in lines}

    def parameter_paths(self) -> list[str]:
        """What sweeps, sensitivity analyses, calibrations and parameter draws may vary: the
        model parameters, each instrument's rules as `interventions.<label>.<rule>` and its
        `interventions.<label>.capacity`, and each limited budget line's amounts as
        `budgets.<line>.amounts` (a number: every year)."""
        return (self.params.paths()
                + [f"{RULES}{it.label}.{rule}" for it in self.programme.items for rule in it.rules.paths()]
                + [f"{RULES}{it.label}.{CAPACITY}" for it in self.programme.items]
                + [f"{BUDGETS}{name}.amounts" for name in self._limited_lines()])

    def parameter(self, path: str):
        """The `Param` at a path of :meth:`parameter_paths` (for a budget line, its amounts; for a
        capacity, its value or None); KeyError if there is none."""
        if path.startswith(RULES):
            label, rule = self.instrument_rule(path)
            if rule == CAPACITY:
                return Capacity(self.programme.item(label).capacity)
            return self.programme.item(label).rules[rule]
        if path.startswith(BUDGETS):
            return BudgetAmounts(self.data["budgets"][self.budget_line(path)]["amounts"])
        return self.params[path]

    def instrument_rule(self, path: str, where: str = "parameters") -> tuple[str, str]:
        """(label, rule) of an `interventions.<label>.<rule>` path, or an InputError."""
        labels = [it.label for it in self.programme.items]
        rest = str(path)[len(RULES):]
        label = next((lb for lb in sorted(labels, key=len, reverse=True) if rest.startswith(lb + ".")), None)
        if label is None:
            raise InputError(f"no instrument {rest.split('.')[0]!r} in scenario {self.name!r}"
                             f"{close_match(rest.split('.')[0], labels)}; its instruments: {labels}",
                             file=self.file, where=f"{where}.{path}")
        rule = rest[len(label) + 1:]
        known = [*self.programme.item(label).rules.paths(), CAPACITY]
        if rule not in known:
            raise InputError(f"{label!r} has no rule {rule!r}{close_match(rule, known)}; its rules: {known}",
                             file=self.file, where=f"{where}.{path}")
        return label, rule

    def _limited_lines(self) -> list[str]:
        """Budget lines with amounts in yuan (not `unlimited`)."""
        return [name for name, entry in (self.data.get("budgets") or {}).items()
                if isinstance(entry, dict) and entry.get("amounts", "unlimited") != "unlimited"]

    def budget_line(self, path: str, where: str = "parameters") -> str:
        """The line of a `budgets.<line>.amounts` path, or an InputError."""
        lines = self._limited_lines()
        name = str(path)[len(BUDGETS):].removesuffix(".amounts")
        if str(path).endswith(".amounts") and name in lines:
            return name
        if name in (self.data.get("budgets") or {}):
            why = f"budget line {name!r} is unlimited (an entitlement): it has no amounts to vary"
        else:
            paths = [f"{BUDGETS}{n}.amounts" for n in lines]
            why = f"not a limited budget line's amounts{close_match(str(path), paths)}; limited lines: {lines}"
        raise InputError(why, file=self.file, where=f"{where}.{path}")


@dataclass
class BudgetAmounts:
    """A budget line's `amounts` as a parameter value (yuan a year, or {year: yuan})."""
    value: Any


@dataclass
class Capacity:
    """An instrument's `capacity` as a parameter value (households per 10,000 a year; None: none)."""
    value: Any


def diff(a: "Scenario", b: "Scenario") -> list[tuple[str, object, object]]:
    """What differs between two scenarios, as (key path, value in a, value in b): the
    resolved parameters, the years, seed and population, the interventions and budgets."""
    def flat(tree, prefix=""):
        out = {}
        for key, value in (tree or {}).items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value and not all(isinstance(k, int) for k in value):
                out.update(flat(value, path))
            else:
                out[path] = value
        return out

    def view(sc):
        out = {"years": list(sc.years), "seed": sc.seed, "population.preset": sc.preset,
               "population.households": sc.households, "population.register": sc.register}
        out.update({f"parameters.{k}": v for k, v in sc.params.to_dict().items()})
        out.update(flat({"interventions": sc.data.get("interventions"), "budgets": sc.data.get("budgets")}))
        return out

    va, vb = view(a), view(b)
    missing = "(absent)"
    return [(k, va.get(k, missing), vb.get(k, missing)) for k in sorted(set(va) | set(vb))
            if va.get(k, missing) != vb.get(k, missing)]


def bundled_scenarios() -> list[str]:
    return sorted(p.stem for p in BUNDLED.glob("*.yaml")) if BUNDLED.is_dir() else []


def resolve_path(ref: str | Path, relative_to: Path | None = None) -> Path:
    """A scenario file by path, relative to another scenario, or by bundled name."""
    ref = str(ref)
    candidates = [Path(ref)]
    if relative_to is not None:
        candidates.insert(0, relative_to.parent / ref)
    candidates += [BUNDLED / ref, BUNDLED / f"{ref}.yaml"]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    hint = close_match(Path(ref).stem, bundled_scenarios())
    raise InputError(f"scenario file not found{hint}; bundled scenarios: {bundled_scenarios()}",
                     file=ref)


def load_scenario(ref: str | Path | Scenario) -> Scenario:
    """Load, merge with its bases and validate a scenario file (or a bundled scenario name);
    a `Scenario` is returned as it is."""
    if isinstance(ref, Scenario):
        return ref
    path = resolve_path(ref)
    return _build(_read_merged(path, ()), str(path))


def _read_yaml(path: Path) -> dict:
    data = read_mapping(path, "name, years, ...")
    for key in data:
        if key not in TOP_KEYS:
            raise InputError(f"unknown key{close_match(key, TOP_KEYS)}; known keys: {sorted(TOP_KEYS)}",
                             file=str(path), where=str(key))
    return data


def _read_merged(path: Path, seen: tuple[Path, ...]) -> dict:
    if path in seen:
        raise InputError(f"scenarios extend each other in a cycle: {' -> '.join(map(str, seen + (path,)))}",
                         file=str(path), where="extends")
    data = _read_yaml(path)
    base_ref = data.get("extends")
    if base_ref is None:
        return data
    if not isinstance(base_ref, str):
        raise InputError("expected the name or path of a base scenario", file=str(path), where="extends")
    try:
        base_path = resolve_path(base_ref, relative_to=path)
    except InputError as e:
        raise InputError(e.detail, file=str(path), where="extends") from None
    return _merge(_read_merged(base_path, seen + (path,)), data)


def _merge(base: dict, over: dict) -> dict:
    """`over` on top of `base`, mapping by mapping; a value (a dated one, {year: value}, or a
    leaf with `value:`) replaces the base's whole, as parameter overrides do."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "years" and not (
                _is_value(v) or _is_value(out[k])):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _scaled_amounts(amounts, factor: float):
    """A budget line's amounts (yuan a year, or {year: yuan}) times `factor`; 'unlimited' stays."""
    if isinstance(amounts, dict):
        return {year: _scaled_amounts(v, factor) for year, v in amounts.items()}
    if isinstance(amounts, bool) or not isinstance(amounts, (int, float)) or not math.isfinite(amounts):
        return amounts  # 'unlimited' (and anything invalid, which the budget check reports as usual)
    return float(amounts) * factor


def _is_value(node: dict) -> bool:
    """A mapping that is one value, not a group of settings: dated, or a leaf with `value:`."""
    return "value" in node or (bool(node) and all(isinstance(k, int) and not isinstance(k, bool) for k in node))


def _build(data: dict, file: str | None, where: str = "", declared: tuple[int, int] | None = None) -> Scenario:
    """Validate merged scenario data. `declared` are the years the file itself states: budgets
    and schedules must lie within them; a run over fewer years simply leaves the rest unused."""
    def at(key):
        return f"{where}.{key}" if where else key

    name = data.get("name", Path(file).stem if file else "scenario")
    if not isinstance(name, str) or not name:
        raise InputError("expected a non-empty text", file=file, where=at("name"))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise InputError("expected a text", file=file, where=at("description"))
    pop = {} if data.get("population") is None else data["population"]
    if not isinstance(pop, dict):
        raise InputError("expected a mapping with preset, households or register", file=file, where=at("population"))
    for key in pop:
        if key not in POPULATION_KEYS:
            raise InputError(f"unknown key{close_match(key, POPULATION_KEYS)}; known: {sorted(POPULATION_KEYS)}",
                             file=file, where=at(f"population.{key}"))
    preset = pop.get("preset", "inner_mongolia_county")
    if preset not in available_presets():
        raise InputError(f"unknown preset {preset!r}{close_match(str(preset), available_presets())}; "
                         f"available: {available_presets()}", file=file, where=at("population.preset"))
    households = pop.get("households")
    if households is not None:
        households = whole_in(households, file, at("population.households"), 1)
    register = pop.get("register")
    if register is not None:
        if not isinstance(register, str):
            raise InputError("expected a folder path", file=file, where=at("population.register"))
        if file and not Path(register).is_absolute():
            register = str(Path(file).parent / register)
    population_seed = pop.get("seed")
    if population_seed is not None:
        population_seed = whole_in(population_seed, file, at("population.seed"), 0, 2**63 - 1)
    if "years" not in data:
        raise InputError("missing key 'years' ([first, last] simulated years)", file=file)
    years = parse_years(data["years"], file, at("years"))
    seed = whole_in(data.get("seed", 0), file, at("seed"), 0, 2**63 - 1)
    parameters = {} if data.get("parameters") is None else data["parameters"]
    params = Params.defaults(preset).override(parameters, file=file, where=at("parameters"))
    declared = declared or years
    programme = parse(data, declared, file)
    return Scenario(name=name, file=file, preset=preset, years=years, seed=seed, params=params,
                    households=households, register=register, population_seed=population_seed,
                    description=description, data=copy.deepcopy(data), programme=programme, declared_years=declared)
