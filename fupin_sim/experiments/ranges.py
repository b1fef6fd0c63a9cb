"""A parameter an experiment varies: its path (a model parameter, an instrument's rule or
capacity, a budget line's amounts, an instrument's budget factor: `Scenario.edit`), the
numbers it takes (a range, or listed values), and how a number becomes the scenario's value
(as it is, rounded, as a factor on the scenario's value, or as one element of a table).
Sweeps, sensitivity analyses and calibrations share it, and the checks of its spec."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from fupin_sim.checks import number
from fupin_sim.errors import InputError
from fupin_sim.params import scaled


@dataclass(frozen=True)
class ParameterRange:
    path: str
    low: float | None = None
    high: float | None = None
    values: tuple | None = None     # listed values instead of a range
    scale: bool = False             # the number multiplies the scenario's value (every number of it)
    integer: bool = False           # rounded to whole numbers
    element: tuple[int, ...] | None = None  # the number is this element of a table (a year of a dated value)
    base: Any = None                # the scenario's value (what `scale` multiplies, `element` sets)

    @property
    def label(self) -> str:
        """The path, with the element and '(factor)' when scaled: a column name of calibrations."""
        tail = "" if self.element is None else "[" + "][".join(map(str, self.element)) + "]"
        return f"{self.path}{tail}" + (" (factor)" if self.scale else "")

    def cast(self, x: float):
        return int(round(x)) if self.integer else float(x)

    def from_unit(self, u: np.ndarray) -> list:
        """Map points of the unit interval to this parameter's numbers."""
        if self.values is not None:
            k = len(self.values)
            return [self.values[min(int(x * k), k - 1)] for x in u]
        return [self.cast(self.low + float(x) * (self.high - self.low)) for x in u]

    def levels(self, levels: int) -> list:
        """A grid's numbers: the listed values, or `levels` evenly spaced over the range."""
        if self.values is not None:
            return list(self.values)
        out = [self.cast(float(x)) for x in np.linspace(self.low, self.high, levels)]
        return list(dict.fromkeys(out))  # integer rounding may merge levels

    def override(self, x) -> Any:
        """The scenario's value for the number `x` (what `Scenario.edit(parameters=...)` takes)."""
        if self.element is not None:
            value = copy.deepcopy(self.base)  # a table's lists, or a dated value's {year: number}
            node = value
            for i in self.element[:-1]:
                node = node[i]
            node[self.element[-1]] = node[self.element[-1]] * x if self.scale else x
            return value
        if self.scale:
            return scaled(self.base, x, self.integer)
        return int(round(x)) if self.integer else x

    def spec(self) -> dict:
        """What it is, for manifests and the hashes that key resumable outputs."""
        d = {"path": self.path, "scale": self.scale, "integer": self.integer}
        d.update({"range": [self.low, self.high]} if self.values is None else {"values": list(self.values)})
        if self.element is not None:
            d["element"] = list(self.element)
        return d

    def check(self, scenario, x, file, where: str, what: str) -> None:
        """An InputError naming `what` (e.g. 'low', 'high bound') unless the scenario takes `x`."""
        try:
            scenario.edit(parameters={self.path: self.override(x)})
        except InputError as e:
            raise InputError(f"{what} {x!r} is not allowed: {e.detail}", file=file, where=where) from None


def flag(value, file, where) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"expected true or false, got {value!r}", file=file, where=where)
    return value


def bounds(value, file, where: str, if_equal: str) -> tuple[float, float]:
    """[low, high] of a spec, low below high; `if_equal` says what to do instead of an empty
    range ('{low}' in it is the number given)."""
    if not isinstance(value, list) or len(value) != 2:
        raise InputError(f"expected [low, high], got {value!r}", file=file, where=where)
    low, high = (number(v, file, f"{where}[{i}]") for i, v in enumerate(value))
    if low > high:
        raise InputError(f"low {low!r} is above high {high!r}", file=file, where=where)
    if low == high:
        raise InputError(f"low and high are both {low!r}: {if_equal.format(low=repr(low))}", file=file, where=where)
    return float(low), float(high)
