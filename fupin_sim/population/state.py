"""The simulation state: a population's columns plus the dynamic quantities the yearly
processes carry (permanent income levels, this year's costs, household aggregates).

A state is built from a `Population` snapshot (the end of its year) and can be turned back
into one, so a simulated world can be written out as a register at any year.
"""
from __future__ import annotations

import numpy as np

from fupin_sim.population import Population
from fupin_sim.population import schema as S
from fupin_sim.population.table import Table

INCOME_COLUMNS = tuple(f"income_{s}" for s in S.INCOME_SOURCES)


def add_per_row(column: np.ndarray, rows: np.ndarray, weights: np.ndarray | None = None,
                subtract: bool = False) -> None:
    """`column += np.bincount(rows, weights, minlength=len(column))` (or `-=`), touching only
    the rows named: `np.add.at`, whose one-dimensional path adds in place, row by row, some
    twenty times faster than summing per row through a sort (`np.unique`) and far cheaper
    than a pass over every household for the few thousand rows a year's deaths or onsets
    change. Exact for what it keeps: counts, and labour units in steps of the partial weight."""
    if len(rows):
        ufunc = np.subtract if subtract else np.add
        ufunc.at(column, rows, column.dtype.type(1) if weights is None else weights)


def register_columns(n: int) -> dict[str, np.ndarray]:
    """What the register and monitoring steps keep per household (`fupin_sim.status`), empty:
    no monitoring object, no assessment drawn yet (0), no income last year (0: no fall)."""
    return {"monitored": np.zeros(n, bool), "monitor_kind": np.zeros(n, np.int8), "monitor_stable": np.zeros(n, np.int8),
            "year_monitored": np.full(n, S.NO_YEAR, np.int16), "relapse_counted": np.zeros(n, bool),
            "below_line": np.zeros(n, bool), "income_last": np.zeros(n), "assessment_factor": np.zeros(n, np.float32)}


class State:
    """Household columns `h` and person columns `p` (dicts of numpy arrays), and the year.

    Persons point to their household by row (`p['hh']`); households never move rows, so
    per-household reductions are `np.bincount(p['hh'], weights, minlength=n_households)`.
    """

    def __init__(self, pop: Population, params):
        self.year = int(pop.year)
        hh = pop.households
        self.h: dict[str, np.ndarray] = {k: np.array(hh[k]) for k in hh.names()}
        columns = {k: np.asarray(pop.persons[k]) for k in pop.persons.names()
                   if k != "household_id"}  # derived from `hh` when written out
        columns["hh"] = pop.household_index()
        # hh as intp, which take(), bincount() and indexing use: an int32 column was converted
        # for every lookup over the persons (a pass and a 20 MB array at 10^6 households)
        dtypes = {"hh": np.intp, "age": np.int16}
        self.p: dict[str, np.ndarray] = {}
        self._person_buffers: dict[str, np.ndarray] = {}  # with room for births: `resize_persons`
        for k, column in columns.items():
            rows = len(column)
            self._person_buffers[k] = np.empty(rows + rows // 8, dtype=dtypes.get(k, column.dtype))
            self.p[k] = self._person_buffers[k][:rows]
            self.p[k][:] = column
        self.n = len(hh)
        self.scalars: dict[str, float] = {"livestock_price": 0.0}
        self.aggregate(params.at(self.year))
        self._init_levels(params.at(self.year))
        if pop.origin != "synthetic":  # a register records a year's income, transitory shocks included
            self._shrink_transitory(params.at(self.year))
        zeros = np.zeros(self.n)
        self.h.update(oop=zeros.copy(), school_cost=zeros.copy(), relapses=np.zeros(self.n, np.int16),
                      lineage=self.h["household_id"].copy(),  # the household a line of splits began from
                      wage_shock=np.zeros(self.n, np.float32), operating_shock=np.zeros(self.n, np.float32),
                      **register_columns(self.n))
        # what a household formed during the run starts with, where it does not take its
        # origin's value (`add_households`); instruments add their columns' initial values
        self.fresh: dict[str, object] = {
            **{c: 0.0 for c in ("assets", "debt", "property_base", "transfer_base", "oop", "school_cost",
                               *INCOME_COLUMNS, *(f"programme_{s}" for s in S.INCOME_SOURCES))},
            "relapses": 0, "size": 0, "labour_units": 0.0, "pensioners": 0,  # members move in
            **{c: column[0] if len(column) else 0 for c, column in register_columns(1).items()}}
        self._household_buffers: dict[str, np.ndarray] = {}  # with room for new households

    @property
    def persons(self) -> int:
        return len(self.p["person_id"])

    def resize_persons(self, n: int) -> None:
        """Make every person column `n` rows long, keeping its first rows (new rows are not
        set). Columns are views of buffers kept with an eighth more rows, so a table that
        grows by births is copied once in a while (never in a 20-year run of the bundled
        scenarios: persons grow by ~3% to 2025), not every year."""
        for k, column in self.p.items():
            buffer = self._person_buffers.get(k)
            if buffer is None or column.base is not buffer:  # a column set from outside
                buffer = column
            if n > len(buffer):
                grown = np.empty(n + n // 8, dtype=column.dtype)
                grown[:len(column)] = column
                buffer = grown
            self._person_buffers[k] = buffer
            self.p[k] = buffer[:n]

    def add_households(self, origin: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Append one household row for each row of `origin` (households that split), with the
        ids `ids`; returns the new rows. A new household takes its origin's values (village,
        register status, weight, wage level...) except for the columns in `self.fresh`, which
        start afresh; its members are moved in by the caller. Columns grow into buffers kept
        with an eighth more rows, so the table is copied once in a while, not every year."""
        n, k = self.n, len(origin)
        rows = np.arange(n, n + k)
        for name, column in self.h.items():
            buffer = self._household_buffers.get(name)
            if buffer is None or column.base is not buffer or n + k > len(buffer):
                buffer = np.empty((n + k) + (n + k) // 8, dtype=column.dtype)
                buffer[:n] = column
            grown = buffer[:n + k]
            grown[n:] = self.fresh[name] if name in self.fresh else column.take(origin)
            self._household_buffers[name] = buffer
            self.h[name] = grown
        self.h["household_id"][n:] = ids
        self.n = n + k
        return rows

    def set_labour(self, rows: np.ndarray, values: np.ndarray, p) -> None:
        """Change the labour capacity of persons `rows`, keeping households' labour units current."""
        units = np.array([0.0, p["labour.partial_weight"], 1.0])
        labour = self.p["labour"]
        delta = units.take(values) - units.take(labour.take(rows))
        labour[rows] = values
        changed = np.flatnonzero(delta)
        add_per_row(self.h["labour_units"], self.p["hh"].take(rows.take(changed)), delta.take(changed))

    def aggregate(self, p) -> None:
        """Household size, labour units and pensioners from the person table (the yearly
        processes keep them current incrementally; this recomputes them from scratch)."""
        hh, n, labour = self.p["hh"], self.n, self.p["labour"]
        self.h["size"] = np.bincount(hh, minlength=n).astype(np.int32)
        units = np.array([0.0, p["labour.partial_weight"], 1.0])
        self.h["labour_units"] = np.bincount(hh, weights=units.take(labour), minlength=n)
        self.h["pensioners"] = np.bincount(hh.take(np.flatnonzero(self.p["age"] >= p["income.pension_age"])),
                                           minlength=n)

    def _init_levels(self, p) -> None:
        """Permanent income levels implied by the snapshot's incomes, less what the policy
        instruments paid that year (they pay it again in the run if it is still due)."""
        h = self.h
        own = {s: h[f"income_{s}"] - h.setdefault(f"programme_{s}", np.zeros(self.n)) for s in S.INCOME_SOURCES}
        lu = h["labour_units"]
        with np.errstate(divide="ignore", invalid="ignore"):
            level = own["wage"] / lu
        earning = (lu > 0) & (own["wage"] > 0)
        typical = np.median(level[earning]) if earning.any() else 0.0
        h["wage_level"] = np.where(lu > 0, level, typical)
        h["operating_level"] = own["operating"] / np.where(lu > 0, 1.0, p["income.operating_without_labour"])
        h["property_base"] = np.maximum(own["property"], 0.0)
        h["transfer_base"] = np.maximum(own["transfer"] - 12 * p["income.pension_monthly"] * h["pensioners"], 0.0)

    def _shrink_transitory(self, p) -> None:
        """Best predictors of permanent wage and operating levels from one year's incomes.

        log(observed level) = log(permanent level) + transitory shock, so within a group
        (register status × region type) the expected permanent log level is the group mean
        (corrected for the shock's mean) plus k × the deviation, with k = 1 − σ²_t / var(log
        observed): the share of the spread that is persistent (empirical Bayes)."""
        h = self.h
        sd_t = p["income.sd_transitory"]
        group = h["status"].astype(np.int64) * 8 + h["region_type"]
        for column in ("wage_level", "operating_level"):
            level = h[column]
            positive = level > 0
            logs = np.log(np.where(positive, level, 1.0))
            for g in np.unique(group[positive]):
                rows = np.flatnonzero(positive & (group == g))
                if len(rows) < 30:
                    continue
                x = logs[rows]
                k = max(0.0, 1.0 - sd_t * sd_t / max(x.var(), 1e-12))
                level[rows] = np.exp(x.mean() + 0.5 * sd_t * sd_t + k * (x - x.mean()))

    def income_total(self) -> np.ndarray:
        h = self.h
        return h["income_wage"] + h["income_operating"] + h["income_property"] + h["income_transfer"]

    def to_population(self) -> Population:
        """The state as a register snapshot (end of `self.year`), in the register schema."""
        hcols = {c.name: self.h[c.name].astype(c.dtype) for c in S.HOUSEHOLD_COLUMNS}
        live = self.h["size"] > 0
        persons = dict(self.p, household_id=self.h["household_id"][self.p["hh"]])
        pcols = {c.name: persons[c.name].astype(c.dtype) for c in S.PERSON_COLUMNS}
        return Population(Table(hcols).take(np.flatnonzero(live)), Table(pcols), self.year, origin="simulated")
