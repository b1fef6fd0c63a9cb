"""Demography: ageing, deaths, births, school stages, labour capacity and household formation.

Rates that depend on age are expanded to one value per age once a year, so each person's
rate is one gather; school and labour updates touch only the persons at a transition.
"""
from __future__ import annotations

import numpy as np

from fupin_sim.metrics import Metric
from fupin_sim.population import schema as S
from fupin_sim.processes import households
from fupin_sim.population.rules import MAX_AGE
from fupin_sim.population.state import add_per_row
from fupin_sim.rng import derived_ids

METRICS = (Metric("deaths", "flow", "persons", "Deaths", "死亡人数"),
           Metric("births", "flow", "persons", "Births", "出生人数"),
           *households.METRICS)


def mortality_table(p) -> np.ndarray:
    """Yearly probability of death at each age 0..MAX_AGE (Gompertz, a child floor, a last age)."""
    age = np.arange(MAX_AGE + 1)
    a, b = p["demography.mortality_gompertz"]
    q = np.minimum(a * np.exp(b * age), 1.0)
    q = np.where(age < 5, np.maximum(q, p["demography.child_mortality"]), q)
    return np.where(age >= p["demography.max_age"], 1.0, q).astype(np.float32)


def step(state, p, rs, year: int) -> dict:
    pp, h = state.p, state.h
    pp["age"] += 1
    np.minimum(pp["age"], MAX_AGE, out=pp["age"])
    age = pp["age"]
    # deaths: the first draw of the pair under the age's mortality (tested on the draw's bits)
    dies, u_school = rs.below("demography.death_school", year, pp["person_id"], "pair",
                              [(mortality_table(p), age), None])
    dead = np.flatnonzero(dies)
    alive = ~dies
    dead_hh = pp["hh"].take(dead)
    deaths = float(h["weight"][dead_hh].sum())
    state.set_labour(dead, np.zeros(len(dead), np.int8), p)  # the dead no longer count as labour
    add_per_row(h["size"], dead_hh, subtract=True)
    pension_age = p["income.pension_age"]
    add_per_row(h["pensioners"], dead_hh.take(np.flatnonzero(age.take(dead) > pension_age)), subtract=True)
    turning = np.flatnonzero(age == pension_age)
    add_per_row(h["pensioners"], pp["hh"].take(turning[alive.take(turning)]))

    # births: at most one a household a year, to households with women of child-bearing age
    lo, hi = p["demography.fertility_ages"]
    fertile = (age >= lo) & (age <= hi) & (pp["sex"] == 1) & alive
    women = np.zeros(state.n, dtype=np.int16)  # counted over every person (`add.at`): twice as fast
    add_per_row(women, pp["hh"], fertile.astype(np.int16))  # as finding the fifth who are first
    mothers = np.flatnonzero(women != 0)  # nonzero() over a bool mask is several times faster than over int16
    # the chance of a birth by the number of women: one power per count, not one per household
    by_women = 1.0 - (1.0 - p["demography.fertility"]) ** np.arange(women.max(initial=0) + 1)
    born = mothers[rs.below("demography.birth", year, h["household_id"].take(mothers), "one",
                            [(by_women, women.take(mothers))])[0]]
    # a newborn's id is a function of (household id, year) alone (common random numbers)
    new_pid = derived_ids(h["household_id"].take(born), "demography.birth", year)
    sex = rs.uniform("demography.birth_sex", year, new_pid) < 0.485  # about 106 boys per 100 girls
    zeros = np.zeros(len(born), dtype=np.int8)
    newborn = {"person_id": new_pid, "hh": born, "age": zeros, "sex": sex, "labour": zeros,
               "chronic": zeros, "disabled": zeros, "school": zeros, "u_school": np.ones(len(born), np.float32)}

    u_school = _replace_dead(state, dead, newborn, u_school)
    h["size"][born] += 1

    _school_and_labour(state, u_school, p)
    formed = households.step(state, p, rs, year)  # after school and labour: founders' capacity is current
    return {"deaths": deaths, "births": float(h["weight"][born].sum()), **formed}


def _replace_dead(state, dead: np.ndarray, newborn: dict, u: np.ndarray) -> np.ndarray:
    """Take the dead out of the person table and put the newborn in, moving only their rows
    (rebuilding every column for the 1% who die took ~20 ms a year at 10^6 households):
    newborns take the rows of the dead; any dead rows left over are filled with the living
    from the end of the table, which shrinks; any newborns left over join at its end.
    Returns the school draws `u` rearranged the same way (a newborn's is 1: no draw).

    Person rows follow no order (before, newborns joined at the end too), and nothing depends
    on it except the order in which floating-point sums over a household's members add up."""
    n, n_born = len(u), len(newborn["hh"])
    m = n - len(dead) + n_born
    slots = dead[:n_born] if n_born <= len(dead) else np.concatenate([dead, np.arange(n, m)])
    holes = dead[n_born:]  # ascending; those at m and beyond go with the cut
    low = holes[:np.searchsorted(holes, m)]
    tail = np.ones(max(n - m, 0), dtype=bool)
    tail[holes[len(low):] - m] = False
    movers = m + np.flatnonzero(tail)  # the living beyond the cut, one for each hole before it
    state.resize_persons(max(m, n))
    if m > n:
        u = np.concatenate([u, np.ones(m - n, dtype=u.dtype)])
    for k, column in [*state.p.items(), ("u_school", u)]:
        column[low] = column.take(movers)
        column[slots] = newborn[k]
    state.resize_persons(m)
    return u[:m]


def set_where(out: np.ndarray, mask: np.ndarray, value) -> None:
    """`out[mask] = value` for small integers (int8) by arithmetic: out += (value − out) · mask.
    A boolean-mask assignment branches on every element, some four times slower when the mask
    is neither sparse nor dense, as for school stages by age."""
    change = np.subtract(value, out, dtype=out.dtype)
    change *= mask
    out += change


def _school_and_labour(state, u: np.ndarray, p) -> None:
    """School stages by age (entry to high school and university drawn at the entry age,
    compulsory-age dropouts drawn yearly), then labour capacity at its transitions."""
    pp = state.p
    pre, comp, high, uni, done = p["education.stage_ages"]
    start, partial_from, none_from = p["labour.ages"]
    age, school, labour = pp["age"], pp["school"], pp["labour"]
    # by the last school age everyone has left school (and anyone a register still lists as a
    # student past it leaves now)
    young = np.flatnonzero((age <= max(done, start)) | (school != S.NOT_IN_SCHOOL))
    a, s, uy = age.take(young), school.take(young), u.take(young)
    stage = np.zeros(len(young), dtype=np.int8)
    set_where(stage, (a >= pre) & (a < comp), S.PRESCHOOL)
    set_where(stage, (a >= comp) & (a < high) & (uy >= p["education.dropout"]), S.COMPULSORY)
    set_where(stage, ((a > high) & (a < uni) & (s == S.HIGH))
              | ((a == high) & (s == S.COMPULSORY) & (uy < p["education.high_school_entry"])), S.HIGH)
    set_where(stage, ((a > uni) & (a < done) & (s == S.UNIVERSITY))
              | ((a == uni) & (s == S.HIGH) & (uy < p["education.university_entry"])), S.UNIVERSITY)
    school[young] = stage

    # labour capacity: rises when a child reaches working age or a student leaves school
    # (to what age and health allow), falls at the partial and no-capacity ages
    ly = labour.take(young)
    enters = ((a == start) | ((s >= S.HIGH) & (stage < S.HIGH))) & (a >= start) & (stage < S.HIGH)
    new = np.full(len(young), S.FULL, dtype=np.int8)  # what age and health allow
    set_where(new, pp["chronic"].take(young), S.PARTIAL)
    set_where(new, pp["disabled"].take(young), S.NO_LABOUR)
    set_where(new, ~enters, ly)
    set_where(new, stage >= S.HIGH, S.NO_LABOUR)
    changed = np.flatnonzero(new != ly)
    state.set_labour(young.take(changed), new.take(changed), p)
    old = np.flatnonzero(age >= min(partial_from, none_from))  # one scan of every person for both ages
    old_age = age.take(old)
    at_partial = old.take(np.flatnonzero(old_age == partial_from))
    state.set_labour(at_partial, np.minimum(labour.take(at_partial), S.PARTIAL).astype(np.int8), p)
    at_none = old.take(np.flatnonzero((old_age >= none_from) & (labour.take(old) > S.NO_LABOUR)))
    state.set_labour(at_none, np.zeros(len(at_none), np.int8), p)
