"""Dated parameters with units and sources.

A parameter is a leaf of `defaults.yaml` (or of a population preset): a value with its
unit, source and confidence. A value may be dated, ``{2014: 2800, 2019: 3218}``, meaning
the value in force from each year on. Scenario files override leaves by key path; every
override is checked against the default's kind, shape, unit and bounds before anything runs.
"""
from __future__ import annotations

import hashlib
import json
import numbers
from dataclasses import dataclass, replace
from importlib import resources
from typing import Any

import yaml

from fupin_sim.errors import InputError, close_match

LEAF_KEYS = {"value", "unit", "source", "confidence", "note", "choices", "total", "range"}
CONFIDENCE = ("high", "medium", "low")
_UNIT_BOUNDS = {  # unit prefix -> (low, high) for every number of the value; other units: >= 0
    "probability": (0.0, 1.0),
    "share": (0.0, 1.0),
    "rate": (-1.0, None),  # a growth rate may be negative, never below -100%
}


@dataclass(frozen=True)
class Param:
    path: str
    value: Any
    unit: str
    source: str
    confidence: str
    note: str = ""
    choices: tuple[str, ...] = ()
    total: float | None = None  # a list of shares that must add up to this
    range: tuple[float, float] | None = None  # [low, high] every number of the value must lie in (a rule's sane span)

    @property
    def dated(self) -> bool:
        return isinstance(self.value, dict)

    def at(self, year: int) -> Any:
        """The value in force in `year` (for dated values, the latest entry not after it); a
        year before the first dated value has none (`NotInForce`), never a later year's."""
        if not self.dated:
            return self.value
        chosen = None
        for y in sorted(self.value):
            if y <= year:
                chosen = y
        if chosen is None:
            raise NotInForce(self.path, year, min(self.value))
        return self.value[chosen]


class NotInForce(InputError):
    """A dated parameter asked for a year before its first dated value."""

    def __init__(self, path: str, year: int, first: int):
        self.path, self.year, self.first = path, year, first
        super().__init__(f"no value in force in {year}: its first dated value is for {first}; give the "
                         f"value for {year} (a dated entry {{{year}: ...}}) or start the run in {first} or later",
                         where=path)

    def __reduce__(self):  # raised in worker processes too
        return NotInForce, (self.path, self.year, self.first)


class YearValues(dict):
    """Every parameter's value in force in one year. A parameter with no value yet that year
    (a run or snapshot before its first dated value) is absent, and reading it is an error
    naming it: only the parameters a run reads must reach back to its years."""

    def __init__(self, values: dict, missing: dict[str, NotInForce]):
        super().__init__(values)
        self.missing = missing

    def __missing__(self, path: str):
        if path in self.missing:
            raise self.missing[path]
        raise KeyError(path)

    def get(self, path, default=None):
        return self[path] if path in self or path in self.missing else default


def numbers_in(value: Any):
    """Every leaf of a number, list, table or dated mapping."""
    if isinstance(value, dict):
        for v in value.values():
            yield from numbers_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from numbers_in(v)
    else:
        yield value


def scaled(value: Any, factor, integer: bool = False) -> Any:
    """Every number of a value (a number, list, table or dated mapping) times `factor`, rounded
    to whole numbers when `integer`."""
    if isinstance(value, dict):
        return {k: scaled(v, factor, integer) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scaled(v, factor, integer) for v in value]
    x = value * factor
    return int(round(x)) if integer else float(x)


def _shape(value: Any) -> Any:
    """'n' number, 's' text, a list of shapes; a table (list of rows) may have any number of rows."""
    if isinstance(value, (list, tuple)):
        shapes = [_shape(v) for v in value]
        if shapes and isinstance(shapes[0], list) and all(s == shapes[0] for s in shapes):
            return ["table", shapes[0]]
        return shapes
    return "s" if isinstance(value, str) else "n"


def _check_value(default: Param, value: Any, file: str | None, where: str) -> Any:
    """Validate an override against the default's kind, shape and bounds; return it normalised."""
    if isinstance(value, dict):
        if not value:
            raise InputError("a dated value needs at least one {year: value} entry", file=file, where=where)
        out = {}
        for year, v in value.items():
            if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2100:
                raise InputError(f"dated values are keyed by year (1900-2100), got {year!r}", file=file, where=where)
            out[year] = _check_value(default, v, file, f"{where}.{year}")
        return out
    like = default.value[min(default.value)] if default.dated else default.value
    if _shape(value) != _shape(like):
        shape = _shape(like)
        kind = "a number" if shape == "n" else "a text" if shape == "s" else f"a list shaped like {like!r}"
        raise InputError(f"expected {kind}, got {value!r}", file=file, where=where)
    if isinstance(like, str):
        if default.choices and value not in default.choices:
            raise InputError(
                f"{value!r} is not one of {list(default.choices)}{close_match(value, default.choices)}",
                file=file, where=where)
        return value
    for x in numbers_in(value):
        if isinstance(x, bool) or not isinstance(x, numbers.Real) or x != x or x in (float("inf"), float("-inf")):
            raise InputError(f"expected a finite number, got {x!r}", file=file, where=where)
        low, high = next((b for u, b in _UNIT_BOUNDS.items() if default.unit.startswith(u)), (0.0, None))
        if x < low or (high is not None and x > high):
            span = f"[{low:g}, {high:g}]" if high is not None else f">= {low:g}"
            raise InputError(f"{x!r} is outside {span} for unit '{default.unit}'", file=file, where=where)
        if default.range is not None and not default.range[0] <= x <= default.range[1]:
            low, high = default.range
            raise InputError(f"{x!r} is outside the range [{low:g}, {high:g}] of this rule ({default.unit})",
                             file=file, where=where)
    if default.total is not None and isinstance(value, list) and abs(sum(value) - default.total) > 1e-6:
        raise InputError(f"shares add up to {sum(value):g}, not {default.total:g}", file=file, where=where)
    return value


def _leaves(tree: dict, prefix: str, file: str) -> dict[str, Param]:
    out: dict[str, Param] = {}
    for key, node in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(node, dict) and "value" in node:
            unknown = set(node) - LEAF_KEYS
            missing = {"unit", "source", "confidence"} - set(node)
            if unknown or missing:
                raise InputError(f"parameter leaf has unknown keys {sorted(unknown)} or lacks {sorted(missing)}",
                                 file=file, where=path)
            if node["confidence"] not in CONFIDENCE:
                raise InputError(f"confidence must be one of {CONFIDENCE}", file=file, where=path)
            span = node.get("range")
            if span is not None:
                if (not isinstance(span, list) or len(span) != 2 or any(
                        isinstance(b, bool) or not isinstance(b, numbers.Real) for b in span) or span[0] > span[1]):
                    raise InputError(f"range must be [low, high] with low <= high, got {span!r}", file=file,
                                     where=f"{path}.range")
                span = (float(span[0]), float(span[1]))
            out[path] = Param(path, node["value"], str(node["unit"]), str(node["source"]),
                              node["confidence"], str(node.get("note", "")), tuple(node.get("choices", ())),
                              node.get("total"), span)
            if span is not None:  # the default itself lies in its range
                _check_value(out[path], node["value"], file, path)
        elif isinstance(node, dict):
            out.update(_leaves(node, path, file))
        else:
            raise InputError("expected a group or a leaf with value/unit/source/confidence", file=file, where=path)
    return out


def _load_yaml_resource(name: str) -> tuple[dict, str]:
    ref = resources.files("fupin_sim.params").joinpath(name)
    return yaml.safe_load(ref.read_text(encoding="utf-8")), str(ref)


def available_presets() -> list[str]:
    folder = resources.files("fupin_sim.params").joinpath("presets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _preset_leaves(preset: str, seen: tuple[str, ...] = ()) -> dict[str, Param]:
    """A preset's leaves, on top of the preset it `extends:`."""
    if preset in seen:
        raise InputError(f"presets extend each other in a cycle: {' -> '.join(seen + (preset,))}")
    tree, file = _load_yaml_resource(f"presets/{preset}.yaml")
    base = tree.pop("extends", None)
    leaves = _preset_leaves(base, seen + (preset,)) if base else {}
    leaves.update(_leaves(tree, "", file))
    return leaves


class Params:
    """All parameters of a run: defaults, a population preset, and scenario overrides."""

    def __init__(self, leaves: dict[str, Param]):
        self._leaves = dict(leaves)
        self._cache: dict[int, dict[str, Any]] = {}

    @classmethod
    def defaults(cls, preset: str = "inner_mongolia_county") -> "Params":
        tree, file = _load_yaml_resource("defaults.yaml")
        leaves = _leaves(tree, "", file)
        if preset not in available_presets():
            raise InputError(f"unknown population preset {preset!r}{close_match(preset, available_presets())}; "
                             f"available: {available_presets()}", where="population.preset")
        for path, leaf in _preset_leaves(preset).items():
            if path in leaves:  # a preset may restate a default for its region, keeping its own source
                _check_value(leaves[path], leaf.value, leaf.source, path)
            leaves[path] = leaf
        return cls(leaves)

    @classmethod
    def from_tree(cls, tree: dict, file: str) -> "Params":
        """Parameters from a tree of groups and leaves (value, unit, source, confidence), as in
        defaults.yaml; `file` names it in errors and sources."""
        return cls(_leaves(tree, "", file))

    def __getitem__(self, path: str) -> Param:
        return self._leaves[path]

    def __contains__(self, path: str) -> bool:
        return path in self._leaves

    def paths(self) -> list[str]:
        return sorted(self._leaves)

    def value(self, path: str, year: int | None = None) -> Any:
        p = self._leaves[path]
        if year is None and p.dated:
            raise KeyError(f"{path} is dated: give a year")
        return p.at(year) if year is not None else p.value

    def at(self, year: int) -> "YearValues":
        """Every parameter's value in force in `year` (cached: one dict per simulated year)."""
        if year not in self._cache:
            values, missing = {}, {}
            for path, p in self._leaves.items():
                try:
                    values[path] = p.at(year)
                except NotInForce as e:  # kept without its traceback, which would keep the caller's
                    missing[path] = e.with_traceback(None)  # frame (and its arrays) alive
            self._cache[year] = YearValues(values, missing)
        return self._cache[year]

    def override(self, overrides: dict, *, file: str | None = None, where: str = "parameters") -> "Params":
        """A copy with `overrides` applied; nested groups or dotted keys both work."""
        leaves = dict(self._leaves)
        for path, raw in _flatten_overrides(overrides, self._leaves, file, where):
            default = leaves[path]
            loc = f"{where}.{path}"
            if isinstance(raw, dict) and "value" in raw:
                unknown = set(raw) - LEAF_KEYS
                if unknown:
                    raise InputError(f"unknown keys {sorted(unknown)}{close_match(sorted(unknown)[0], LEAF_KEYS)}",
                                     file=file, where=loc)
                if "range" in raw:
                    raise InputError("a rule's range is fixed by its default; give only its value",
                                     file=file, where=f"{loc}.range")
                if "unit" in raw and str(raw["unit"]) != default.unit:
                    raise InputError(f"unit {raw['unit']!r} does not match the parameter's unit {default.unit!r}",
                                     file=file, where=loc)
                value = _check_value(default, raw["value"], file, f"{loc}.value")
                source = str(raw.get("source", f"scenario override ({file or 'in code'})"))
                confidence = raw.get("confidence", default.confidence)
                if confidence not in CONFIDENCE:
                    raise InputError(f"confidence must be one of {CONFIDENCE}", file=file, where=f"{loc}.confidence")
                note = str(raw.get("note", default.note))
            else:
                value = _check_value(default, raw, file, loc)
                source, confidence, note = f"scenario override ({file or 'in code'})", default.confidence, default.note
            leaves[path] = replace(default, value=value, source=source, confidence=confidence, note=note)
        return Params(leaves)

    def located(self, prefix: str) -> "Params":
        """A copy whose parameters name themselves `prefix` + their path in errors (an
        instrument's rules: `interventions.<label>.rules.`); looked up by their own paths still."""
        return Params({path: replace(p, path=f"{prefix}{path}") for path, p in self._leaves.items()})

    def to_dict(self) -> dict[str, Any]:
        return {path: p.value for path, p in sorted(self._leaves.items())}

    def table(self):
        import pandas as pd

        return pd.DataFrame([{"parameter": p.path, "value": json.dumps(p.value, ensure_ascii=False), "unit": p.unit,
                              "source": p.source, "confidence": p.confidence} for p in self._leaves.values()]
                            ).sort_values("parameter", ignore_index=True)

    def fingerprint(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _flatten_overrides(tree: Any, leaves: dict[str, Param], file: str | None, where: str, prefix: str = ""):
    if not isinstance(tree, dict):
        raise InputError(f"expected a mapping of parameter paths, got {type(tree).__name__}", file=file, where=where)
    groups = {p.rsplit(".", i)[0] for p in leaves for i in range(1, p.count(".") + 1)}
    for key, node in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if path in leaves:
            yield path, node
        elif path in groups and isinstance(node, dict):
            yield from _flatten_overrides(node, leaves, file, where, path)
        else:
            known = sorted(leaves) + sorted(groups)
            raise InputError(f"unknown parameter{close_match(path, known)}", file=file, where=f"{where}.{path}")
