"""Rules shared by the synthetic generator and the yearly dynamics, so both agree on what
a school stage, a labour capacity or the line in force is."""
from __future__ import annotations

import numpy as np

from fupin_sim.population import schema as S

MAX_AGE = 127  # ages are int16 and capped well above demography.max_age


def step_lookup(table: list, x: np.ndarray) -> np.ndarray:
    """Value of a [[from, value], ...] table at each x (the row whose 'from' is the last not above x)."""
    edges = np.array([row[0] for row in table], dtype=np.float64)
    values = np.array([row[1] for row in table], dtype=np.float64)
    return values[np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(values) - 1)]


def age_table(table: list, dtype=np.float32) -> np.ndarray:
    """A [[age from, value], ...] table expanded to one entry per age 0..MAX_AGE, so that a
    lookup over millions of persons is a single gather `out[age]`."""
    return step_lookup(table, np.arange(MAX_AGE + 1)).astype(dtype)


def poverty_line(p: dict) -> float:
    """The line in force, from a year's resolved parameters (`Params.at(year)`)."""
    return float(p[f"poverty_line.{p['status.line']}"])


def monitoring_threshold(p: dict) -> float:
    """The monitoring line (防止返贫监测范围) in force: the published yuan threshold of the year, or
    before its first year `monitoring.income_multiple` × the line (the 2020 guidance's rule)."""
    if "monitoring.threshold" in p:
        return float(p["monitoring.threshold"])
    return float(p["monitoring.income_multiple"]) * poverty_line(p)


def guarantees_met(state, p) -> np.ndarray:
    """The three guarantees (三保障) each household has: every compulsory-age child in school,
    basic medical insurance, a safe house."""
    pp = state.p
    comp, high = p["education.stage_ages"][1:3]
    out_of_school = np.flatnonzero((pp["age"] >= comp) & (pp["age"] < high) & (pp["school"] != S.COMPULSORY))
    ok = state.h["insured"] & state.h["housing_safe"]
    ok[pp["hh"][out_of_school]] = False
    return ok


def school_stage(age: np.ndarray, enrolled: np.ndarray, stage_ages: list) -> np.ndarray:
    """School stage by age; `enrolled` says whether a person past compulsory age is a student."""
    pre, comp, high, uni, done = stage_ages
    stage = np.zeros(len(age), dtype=np.int8)
    stage[(age >= pre) & (age < comp)] = S.PRESCHOOL
    stage[(age >= comp) & (age < high)] = S.COMPULSORY
    stage[(age >= high) & (age < uni) & enrolled] = S.HIGH
    stage[(age >= uni) & (age < done) & enrolled] = S.UNIVERSITY
    return stage


def labour_capacity(age, disabled, chronic, stage, labour_ages) -> np.ndarray:
    """Labour capacity from age, health and schooling: none below working age, from the last
    age, with a disability or as a high-school or university student; partial when
    chronically ill or past the partial age; full otherwise."""
    start, partial_from, none_from = labour_ages
    cap = np.full(len(age), S.FULL, dtype=np.int8)
    cap[chronic | (age >= partial_from)] = S.PARTIAL
    cap[(age < start) | (age >= none_from) | disabled | (stage >= S.HIGH)] = S.NO_LABOUR
    return cap


def wsum(weights: np.ndarray, values: np.ndarray) -> float:
    """Σ weights × values, single-threaded: `@` would call BLAS, whose threads contend on a
    busy machine (and in joblib workers) for a reduction that one core does in a millisecond."""
    if values.dtype == np.bool_:  # the same 0 and 1, cast a sixth faster from bytes
        values = values.view(np.uint8)
    return float(np.einsum("i,i->", weights, values, dtype=np.float64))


class Weights:
    """Household weights, for weighted counts and totals over every household. A synthetic
    population gives every household one weight: a count is then that weight times
    `count_nonzero` (a tenth of the time of Σ w·x), a total that weight times a plain sum (half
    the time); a register's unequal weights still take Σ w·x."""

    def __init__(self, w: np.ndarray):
        self.w = w
        self.one = float(w[0]) if len(w) and w.min() == w.max() else None

    def count(self, where: np.ndarray) -> float:
        """Σ w where a boolean mask is set, or over row positions."""
        if where.dtype != np.bool_:
            return self.one * len(where) if self.one is not None else float(self.w.take(where).sum())
        return self.one * np.count_nonzero(where) if self.one is not None else wsum(self.w, where)

    def total(self, values: np.ndarray) -> float:
        """Σ w · values over every household."""
        return self.one * float(values.sum()) if self.one is not None else wsum(self.w, values)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The weights of `rows` (equal ones are made, not gathered from the column)."""
        return np.full(len(rows), self.one) if self.one is not None else self.w.take(rows)


def select(values: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """`values[flags]` for a boolean `flags`, through the flags' positions: boolean indexing
    branches on every element and is up to six times slower when about half the flags are set
    (eligibility tests over a target group); the positions cost no more when few or most are."""
    return values.take(np.flatnonzero(flags))
