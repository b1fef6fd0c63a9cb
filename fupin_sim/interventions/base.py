"""What every instrument shares: who it targets, how it ranks households, and the yearly
context it works in.

An instrument is a small class: `eligible` narrows its target group (household rows, in
ascending order: rationing and ties depend on it), `cost` says what
serving each household would cost this year (yuan, per simulated household), `serve`
changes the served households' state (income it pays goes through `Context.pay`, which
counts it as the year's programme income), and `carry` applies what earlier years' support
still yields (income streams that build up and fade). All of it is vectorised over
households; the funding layer decides who is served.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fupin_sim.population import schema as S
from fupin_sim.population.rules import Weights, poverty_line, select, wsum
from fupin_sim.status import test_income

TARGETS = {
    "registered": "registered poor, and exited households while support is kept after exit (脱贫不脱政策, "
                  "to the end of the transition period: policy.support_until)",
    "poor": "registered poor only (not exited)",
    "exited": "exited households while support is kept after exit",
    "monitored": "monitoring objects (防止返贫监测对象) found in earlier years whose risk is not yet eliminated",
    "near_poor": "not registered, income under the monitoring multiple of the line (边缘户)",
    "all": "every household",
}


@dataclass
class Context:
    """The year's view of the state that instruments work on."""

    state: object
    p: dict
    rs: object
    year: int
    support_until: int  # the last year exited households keep the support of registered ones
    funds: object
    _counts: dict = field(default_factory=dict)  # per-year caches: person counts and target rows
    _groups: dict = field(default_factory=dict)  # id of a target group's rows -> (rows, mask)
    _income: np.ndarray | None = None  # per-capita income of every household (see per_capita_income)
    _served: list = field(default_factory=list)  # rows served since it was worked out
    counted: tuple = ()  # the kinds of `count` the year's instruments use (`Instrument.counts`)

    def count(self, name: str) -> np.ndarray:
        """Persons per household of a kind, computed once a year (persons do not change
        during the interventions step). The first count asked for also counts the other kinds
        the year's instruments use, in the same pass over every person."""
        if name not in self._counts:
            pp = self.state.p
            masks = {
                "full_workers": lambda: pp["labour"] == S.FULL,
                "trainable": lambda: (pp["labour"] == S.FULL) & (pp["age"] <= 50),
                "vulnerable": lambda: (pp["age"] < 16) | (pp["age"] >= 65) | pp["disabled"] | pp["chronic"],
                "chronic": lambda: pp["chronic"],
                "disabled": lambda: pp["disabled"],
            }
            kinds = [name, *(k for k in self.counted if k != name and k not in self._counts)][:4]
            counts = person_counts(self.state, [masks[k]() for k in kinds])
            self._counts.update(zip(kinds, counts))
        return self._counts[name]

    @property
    def h(self):
        return self.state.h

    @property
    def households(self) -> float:
        """Households of the population (weighted, with members), once a year: instruments'
        capacities are set per 10,000 of them, and nobody is born or dies in this step."""
        if "households" not in self._counts:
            self._counts["households"] = wsum(self.h["weight"], self.h["size"] > 0)
        return self._counts["households"]

    @property
    def weights(self) -> Weights:
        """Household weights, once a year: equal ones (synthetic populations) are then made for
        the rows an instrument works on, not gathered from the column each time."""
        if "weights" not in self._counts:
            self._counts["weights"] = Weights(self.h["weight"])
        return self._counts["weights"]

    @property
    def line(self) -> float:
        return poverty_line(self.p)

    def per_capita_income(self, rows: np.ndarray | None = None) -> np.ndarray:
        """This year's per-capita income as the survey measures it (`status.test_income`),
        for all households or only `rows` (do not change the array returned for all).

        Worked out for every household once, then again only for the households served
        since (`changed`): the instruments that rank by it would otherwise gather seven columns
        for their ~200k candidates each (one take instead). Only the instruments' `serve`
        changes incomes and costs after the carried streams, and only for the households it serves."""
        if self._income is None:
            self._income = test_income(self.state, self.p)
        elif self._served:
            stale = np.concatenate(self._served)
            self._served.clear()
            self._income[stale] = test_income(self.state, self.p, rows=stale)
        return self._income if rows is None else self._income.take(rows)

    def pay(self, source: str, rows: np.ndarray, amount) -> None:
        """Pay the households `rows` (served this year) `amount` of income from `source` (wage,
        operating, property or transfer), and count it in `programme_<source>`: what the
        instruments paid this year, which a register written from the state keeps apart."""
        self.h[f"income_{source}"][rows] += amount
        self.h[f"programme_{source}"][rows] += amount

    def changed(self, rows: np.ndarray | None = None) -> None:
        """Note that the incomes or costs of households `rows` (of any household: None) changed."""
        if rows is None:
            self._income = None
            self._served.clear()
        elif self._income is not None and len(rows):
            self._served.append(rows)

    def target_rows(self, name: str) -> np.ndarray:
        """Rows of the households in a target group, ascending (shared: do not change it).
        Register status does not change during the interventions step, so only `near_poor`,
        which depends on income, is recomputed each time."""
        key = f"target.{name}"
        if key not in self._counts or name == "near_poor":
            mask = self._target(name)
            rows = self._counts[key] = np.flatnonzero(mask)
            self._groups[id(rows)] = (rows, mask)  # holding `rows` keeps the id theirs
        return self._counts[key]

    def among(self, rows: np.ndarray, cond: np.ndarray) -> np.ndarray:
        """`rows[cond[rows]]` for a condition over all households. When `rows` are a whole
        target group, through the group's mask: for a group of most households (`all`) one
        pass over them costs less than a gather."""
        group = self._groups.get(id(rows))
        if group is not None and group[0] is rows:
            return np.flatnonzero(group[1] & cond)
        return select(rows, cond[rows])

    def cases_of(self, rows: np.ndarray, cases_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cases (admissions, patients, students: entries that each belong to the household
        `cases_hh`) of the households `rows`, and each one's household as a position in `rows`.
        Instruments work on their candidates' cases only, often a fifth of all or less, and
        their sums per household come out as over all cases (the same cases, in the same order)."""
        mine = np.flatnonzero(self.mask_of(rows).take(cases_hh))
        return mine, self.positions_in(rows).take(cases_hh.take(mine))

    def positions_in(self, rows: np.ndarray) -> np.ndarray:
        """Each household's position in `rows`, over all households (undefined for the others);
        kept for a whole target group, whose cases several instruments look up."""
        group = self._groups.get(id(rows))
        if group is not None and group[0] is rows and len(group) > 2:
            return group[2]
        at = np.empty(self.state.n, dtype=np.int64)
        at[rows] = np.arange(len(rows))
        if group is not None and group[0] is rows:
            self._groups[id(rows)] = (*group, at)
        return at

    def mask_of(self, rows: np.ndarray) -> np.ndarray:
        """`rows` as a mask over all households (a whole target group's own mask: do not change it)."""
        group = self._groups.get(id(rows))
        if group is not None and group[0] is rows:
            return group[1]
        mask = np.zeros(self.state.n, dtype=bool)
        mask[rows] = True
        return mask

    def _target(self, name: str) -> np.ndarray:
        h = self.h
        alive = h["size"] > 0
        status = h["status"]
        if name in ("registered", "exited"):
            kept = (status == S.EXITED) if self.year <= self.support_until else np.zeros(len(status), bool)
            return alive & (((status == S.POOR) | kept) if name == "registered" else kept)
        if name == "poor":
            return alive & (status == S.POOR)
        if name == "monitored":
            return alive & h["monitored"]
        if name == "near_poor":
            return alive & (status == S.NONPOOR) & (
                self.per_capita_income() < self.p["monitoring.income_multiple"] * self.line)
        return alive


def kept_for(rows: np.ndarray, kept: np.ndarray, values: np.ndarray) -> np.ndarray:
    """`values` that `eligible()` worked out for its rows `kept` (ascending), for `rows`, the
    ones `cost()` is given: all of them, or those left after rationing or zero costs."""
    return values if len(rows) == len(kept) else values[np.searchsorted(kept, rows)]


def person_count(state, mask_persons: np.ndarray) -> np.ndarray:
    """Number of persons per household satisfying a person-level mask (int16). Added over
    every person with `np.add.at`, about twice as fast as finding the persons first
    (`flatnonzero`, slow when about half are set) and counting them with `bincount`."""
    counts = np.zeros(state.n, dtype=np.int16)
    np.add.at(counts, state.p["hh"], mask_persons.astype(np.int16))
    return counts


def person_counts(state, masks: list[np.ndarray]) -> list[np.ndarray]:
    """`person_count` of up to four masks in one pass over every person: each mask is a byte
    of one integer per person (no household has 256 members, so no count carries into the
    next byte), and one `add.at` adds them all. The pass over every person's household row
    (20 MB at 10^6 households) is the cost, so two counts take about the time of one."""
    if len(masks) == 1 or len(masks) > 4 or state.h["size"].max(initial=0) > 255:
        return [person_count(state, m) for m in masks]
    dtype = np.uint16 if len(masks) == 2 else np.uint32
    packed = masks[0].astype(dtype)
    for i, m in enumerate(masks[1:], 1):
        byte = m.astype(dtype)
        byte <<= 8 * i
        packed |= byte
    sums = np.zeros(state.n, dtype=dtype)
    np.add.at(sums, state.p["hh"], packed)
    return [((sums >> (8 * i)) & 255).astype(np.int16) for i in range(len(masks))]


def priority_keys(ctx: Context, rules: list[str], rows: np.ndarray) -> list[np.ndarray]:
    """Sort keys (ascending = served first) for a list of priority rules."""
    h = ctx.h
    keys = []
    for rule in rules:
        if rule == "lowest_income":
            keys.append(ctx.per_capita_income(rows))
        elif rule == "illness":
            ill = ctx.count("chronic")[rows] > 0
            income = np.maximum(ctx.per_capita_income(rows) * h["size"].take(rows), 1)
            keys.append(-(ill | (h["oop"].take(rows) > 0.25 * income)).astype(np.int8))
        elif rule == "disability":
            keys.append(-(ctx.count("disabled")[rows] > 0).astype(np.int8))
        elif rule == "no_labour":
            keys.append(h["labour_units"].take(rows))
        elif rule == "most_labour":
            keys.append(-h["labour_units"].take(rows))
        elif rule == "deep_poverty_area":
            keys.append(-h["deep_poverty_area"].take(rows).astype(np.int8))
        elif rule == "largest_household":
            keys.append(-h["size"].take(rows))
        elif rule == "registered_first":
            keys.append((h["status"].take(rows) != S.POOR).astype(np.int8))
        elif rule == "random":
            continue  # the common-random-number tie-break does it
        else:  # validated earlier; a guard for programming errors
            raise ValueError(f"unknown priority rule {rule!r}")
    return keys


PRIORITY_RULES = ("lowest_income", "illness", "disability", "no_labour", "most_labour", "deep_poverty_area",
                  "largest_household", "registered_first", "random")


class Instrument:
    """Base class; subclasses set the class attributes and override the hooks they need."""

    name = ""
    family = ""
    description = ""
    targets = "registered"
    priority: tuple[str, ...] = ("lowest_income",)
    once = False  # True: a household is served at most once (one-off projects)
    loan = False  # True: the cost is loan principal, funded by bank credit
    category = "transfer"  # what the household receives: transfer (cash) or in_kind
    columns: dict[str, tuple] = {}  # state columns the instrument keeps: name -> (dtype, initial)
    values: dict[str, tuple] = {}  # state values it keeps between steps: name -> (type, initial or None)
    counts: tuple[str, ...] = ()  # the kinds of member counts it uses (`Context.count`)

    @classmethod
    def carries_over(cls) -> bool:
        """True when it carries support from year to year (it overrides `carry`): its state
        columns and random streams are its class's, so a scenario may list it once. One that
        carries nothing (a top-up, a subsidy) may be listed again, e.g. as a deadline backstop."""
        return cls.carry is not Instrument.carry

    def carry(self, ctx: Context, rules: dict) -> None:
        """Apply what earlier years' support still yields this year."""

    def eligible(self, ctx: Context, rules: dict, rows: np.ndarray) -> np.ndarray:
        """The eligible among the target group's `rows` (a subset, still ascending)."""
        return rows

    def first_keys(self, ctx: Context, rows: np.ndarray) -> list[np.ndarray]:
        """Sort keys that come before the stated priority (e.g. incumbents keep their posts)."""
        return []

    def capacity(self, ctx: Context, rules: dict) -> float | None:
        """Most households (weighted) that can be served this year; None: only money limits."""
        return None

    def cost(self, ctx: Context, rules: dict, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def serve(self, ctx: Context, rules: dict, rows: np.ndarray, amount: np.ndarray) -> dict | None:
        """Change the state of the served households; `amount` is what each receives. May
        return how the money splits across ledger categories (shares adding to one)."""
