"""The simulation state: a population's columns plus the dynamic quantities the yearly
processes carry (permanent income levels, this year's costs, household aggregates).

A state is built from a `Population` snapshot (the end of its year) and can be turned back
into one, so a simulated world can be written out as a register at any year.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fupin_sim.population import Population
from fupin_sim.population import schema as S
from fupin_sim.population.table import Table

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


@dataclass(frozen=True)
class Carried:
    """What a process or an instrument keeps in the state: household columns, name ->
    (dtype, initial value), and values carried from step to step, name -> (type, initial
    value, or None: set by the owner when it first needs it). Each owner declares its own
    (`State.declare`); the state refuses a name nobody declared, or a value of another type."""

    columns: dict[str, tuple] = field(default_factory=dict)
    values: dict[str, tuple] = field(default_factory=dict)
    # columns a household formed during the run (`State.add_households`) takes from the one it
    # split from; the others with an initial value start with it (support, costs, flags)
    inherited: frozenset = frozenset()


class Declared(dict):
    """A mapping whose every name is declared, with its type, by one owner: setting an
    undeclared name, or a value of another type, is a programming error caught at once."""

    def __init__(self, what: str, check):
        super().__init__()
        self.what, self.check = what, check  # check(value, type) -> bool
        self.types: dict[str, object] = {}
        self.owners: dict[str, str] = {}

    def declare(self, name: str, kind, owner: str) -> None:
        """`name` holds values of `kind`, kept by `owner` (one owner a name)."""
        if self.owners.get(name, owner) != owner or self.types.get(name, kind) != kind:
            raise ValueError(f"{self.what} {name!r} is declared by {self.owners[name]} as {self.types[name]}; "
                             f"{owner} declares it as {kind}")
        self.types[name], self.owners[name] = kind, owner

    def __setitem__(self, name: str, value) -> None:
        if name not in self.types:
            raise KeyError(f"undeclared {self.what} {name!r}: its owner declares it (population.state.Carried)")
        if not self.check(value, self.types[name]):
            raise TypeError(f"{self.what} {name!r} is declared as {self.types[name]} by {self.owners[name]}, "
                            f"got {getattr(value, 'dtype', type(value).__name__)}")
        super().__setitem__(name, value)

    def update(self, other=(), **more) -> None:
        for name, value in dict(other, **more).items():
            self[name] = value


def _column(value, dtype) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == dtype


# what the state itself holds: the register's columns (`schema`) and what it derives from them
STATE = Carried(columns={
    **{c.name: (c.dtype, None) for c in S.HOUSEHOLD_COLUMNS},
    "size": (np.int32, None), "labour_units": (np.float64, None), "pensioners": (np.intp, None),
    # permanent income levels (the income process moves them on each year)
    "wage_level": (np.float64, None), "operating_level": (np.float64, None),
    "property_base": (np.float64, None), "transfer_base": (np.float64, None),
    "lineage": (np.int64, None)})  # the household a line of splits began from
# what a household formed during the run starts with among the state's own columns: its
# members move in, and savings, debts and the origin's support stay behind
FRESH = {**{c: 0.0 for c in ("assets", "debt", "property_base", "transfer_base", "labour_units",
                             *(f"income_{s}" for s in S.INCOME_SOURCES), *(f"programme_{s}" for s in S.INCOME_SOURCES))},
         "size": 0, "pensioners": 0}
# person columns: the register's, with each person's household as a row (`hh`, intp: what
# take(), bincount() and indexing use) and ages in int16
PERSON_COLUMNS = {**{c.name: np.dtype(c.dtype) for c in S.PERSON_COLUMNS if c.name != "household_id"},
                  "hh": np.dtype(np.intp), "age": np.dtype(np.int16)}


class State:
    """Household columns `h` and person columns `p` (mappings of numpy arrays), the values
    the processes and instruments carry from step to step (`values`), and the year. Every
    column and value is declared with its type by its owner (`Carried`, `declare`).

    Persons point to their household by row (`p['hh']`); households never move rows, so
    per-household reductions are `np.bincount(p['hh'], weights, minlength=n_households)`.
    """

    __slots__ = ("year", "h", "p", "values", "n", "starts", "_person_buffers", "_household_buffers")

    def __init__(self, pop: Population, params, carried: tuple[tuple[str, Carried], ...] = ()):
        """The state of the snapshot `pop`, with what `carried` ((owner, Carried), ...) declares."""
        self.year = int(pop.year)
        hh = pop.households
        self.h = Declared("state column", _column)
        self.values = Declared("state value", isinstance)
        self.n = len(hh)
        self.declare("population.state", STATE)
        for k in hh.names():
            self.h[k] = np.array(hh[k], dtype=self.h.types.get(k))
        columns = {k: np.asarray(pop.persons[k]) for k in pop.persons.names()
                   if k != "household_id"}  # derived from `hh` when written out
        columns["hh"] = pop.household_index()
        # hh as intp: an int32 column was converted for every lookup over the persons (a pass
        # and a 20 MB array at 10^6 households)
        self.p = Declared("person column", _column)
        self._person_buffers: dict[str, np.ndarray] = {}  # with room for births: `resize_persons`
        for k, column in columns.items():
            rows = len(column)
            self.p.declare(k, PERSON_COLUMNS[k], "population.state")
            self._person_buffers[k] = np.empty(rows + rows // 8, dtype=PERSON_COLUMNS[k])
            self.p[k] = self._person_buffers[k][:rows]
            self.p[k][:] = column
        self.aggregate(params.at(self.year))
        self._init_levels(params.at(self.year))
        if pop.origin != "synthetic":  # a register records a year's income, transitory shocks included
            self._shrink_transitory(params.at(self.year))
        self.h["lineage"] = self.h["household_id"].copy()
        self.starts: dict[str, object] = dict(FRESH)  # what a household formed during the run starts with
        self._household_buffers: dict[str, np.ndarray] = {}  # with room for new households
        for owner, what in carried:
            self.declare(owner, what)

    def declare(self, owner: str, carried: Carried) -> None:
        """Declare what `owner` keeps, and add its columns and values with their initial values."""
        for name, (dtype, initial) in carried.columns.items():
            self.h.declare(name, np.dtype(dtype), owner)
            if initial is not None and name not in self.h:
                self.h[name] = np.full(self.n, initial, dtype=dtype)
            if initial is not None and name not in carried.inherited:
                self.starts[name] = initial
        for name, (kind, initial) in carried.values.items():
            self.values.declare(name, kind, owner)
            if initial is not None and name not in self.values:
                self.values[name] = initial

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
        register status, weight, wage level...) except for the columns in `self.starts`, which
        start afresh (`Carried.inherited` names the declared ones that do not); its members
        are moved in by the caller. Columns grow into buffers kept
        with an eighth more rows, so the table is copied once in a while, not every year."""
        n, k = self.n, len(origin)
        rows = np.arange(n, n + k)
        for name, column in self.h.items():
            buffer = self._household_buffers.get(name)
            if buffer is None or column.base is not buffer or n + k > len(buffer):
                buffer = np.empty((n + k) + (n + k) // 8, dtype=column.dtype)
                buffer[:n] = column
            grown = buffer[:n + k]
            grown[n:] = self.starts[name] if name in self.starts else column.take(origin)
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
        for s in S.INCOME_SOURCES:
            if f"programme_{s}" not in h:  # optional in a register
                h[f"programme_{s}"] = np.zeros(self.n)
        own = {s: h[f"income_{s}"] - h[f"programme_{s}"] for s in S.INCOME_SOURCES}
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
