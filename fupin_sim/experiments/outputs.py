"""An experiment's outputs: one number from a yearly metric of a run (its final value, sum,
mean ... or its value in a year), as sweeps and sensitivity analyses report them."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fupin_sim.results import add_derived

REDUCES = ("final", "first", "sum", "mean", "min", "max", "change")


@dataclass(frozen=True)
class Output:
    metric: str
    reduce: str | int  # one of REDUCES, or a year

    @property
    def name(self) -> str:
        return f"{self.metric}_{self.reduce}"


def reduce_metric(summary: pd.DataFrame, metric: str, reduce: str | int) -> float:
    """One number from a yearly metric: final, first, sum, mean, min, max, change (final −
    first) or the value in a given year."""
    x = summary[metric].to_numpy(dtype=float)
    if isinstance(reduce, int):
        return float(x[summary["year"].to_numpy() == reduce][0])
    return float({"final": lambda: x[-1], "first": lambda: x[0], "sum": x.sum, "mean": x.mean, "min": x.min,
                  "max": x.max, "change": lambda: x[-1] - x[0]}[reduce]())


def reduce_outputs(summary: pd.DataFrame, outputs: tuple[Output, ...]) -> dict[str, float]:
    summary = add_derived(summary)
    return {o.name: reduce_metric(summary, o.metric, o.reduce) for o in outputs}
