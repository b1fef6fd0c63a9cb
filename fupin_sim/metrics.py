"""One registry of metrics. Each metric is declared where it is produced (a process, the
status step, the programme of instruments, a derived column, an experiment), with its
kind, unit, labels in English and Chinese, and how replicates and years aggregate;
comparisons, figures, reports and the Mesa adapter read it, and a test fails when a run
reports a column nobody declared.

    METRICS = (Metric("exits", "flow", "households", "Exits (households)", "脱贫户数"), ...)

A name may be a pattern with one placeholder, `served_{instrument}`, for the columns each
instrument adds (its label shows in its place)."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

KINDS = ("flow", "stock", "ratio")  # the year's count or money; a level at the year's end; a ratio or index
AGGREGATES = ("sum", "mean")


@dataclass(frozen=True)
class Metric:
    name: str        # a column of the yearly summary (or of an experiment's table), or a pattern
    kind: str        # one of KINDS
    unit: str        # households, persons, yuan, yuan per person, share, index, ...
    en: str          # the label in English (with the Chinese term beside where it helps)
    zh: str          # the label in Chinese
    years: str = ""  # how years aggregate (a comparison's 'total' or 'mean'): sum for flows, else mean
    replicates: str = "mean"  # how replicates aggregate (ensembles: the mean, with quantile bands)
    about: str = ""  # what it measures, where the label does not say it all
    pattern: re.Pattern | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.kind not in KINDS or (self.years and self.years not in AGGREGATES) \
                or self.replicates not in AGGREGATES:
            raise ValueError(f"metric {self.name!r}: kind one of {KINDS}, years and replicates one of {AGGREGATES}")
        object.__setattr__(self, "years", self.years or ("sum" if self.kind == "flow" else "mean"))
        if "{" in self.name:
            head, key, tail = re.fullmatch(r"(.*)\{(\w+)\}(.*)", self.name).groups()
            object.__setattr__(self, "pattern", re.compile(f"{re.escape(head)}(?P<{key}>.+){re.escape(tail)}"))


class Metrics:
    """Declared metrics by name; a pattern's name matches any word in its placeholder.
    Registries combine with `|`; a name declared twice is an error."""

    def __init__(self, *groups: Iterable[Metric]):
        self.exact: dict[str, Metric] = {}
        self.patterns: list[Metric] = []
        for metric in (m for group in groups for m in group):
            if metric.name in self.exact or any(p.name == metric.name for p in self.patterns):
                raise ValueError(f"metric {metric.name!r} is declared twice")
            if metric.pattern is None:
                self.exact[metric.name] = metric
            else:
                self.patterns.append(metric)

    def __iter__(self):
        return iter([*self.exact.values(), *self.patterns])

    def __or__(self, other: Iterable[Metric]) -> "Metrics":
        return Metrics(self, other)

    def match(self, name: str) -> tuple[Metric, dict[str, str]] | None:
        """The metric that declares `name` and the placeholder's value (for a pattern), or None."""
        if name in self.exact:
            return self.exact[name], {}
        for metric in self.patterns:
            found = metric.pattern.fullmatch(name)
            if found:
                return metric, found.groupdict()
        return None

    def __contains__(self, name: str) -> bool:
        return self.match(name) is not None

    def __getitem__(self, name: str) -> Metric:
        found = self.match(name)
        if found is None:
            raise KeyError(f"metric {name!r} is declared nowhere: declare it where it is produced (fupin_sim.metrics)")
        return found[0]
