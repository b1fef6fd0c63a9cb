"""Household formation (分户): a young adult of the younger generation leaves the household of
their parents, with a partner of about their age and their young children where the
household has them, and founds a household of their own. Without it children never leave,
and households grow larger year by year.

At most one new household splits from a household a year. The new household takes its
origin's village, register status (a family on the register stays on it) and wage level;
land and the farm or herd (operating income) are divided by the share of the labour that
leaves; savings, debts and the support the origin receives stay with the origin.
"""
from __future__ import annotations

import numpy as np

from fupin_sim.metrics import Metric
from fupin_sim.population import schema as S
from fupin_sim.population.state import add_per_row
from fupin_sim.rng import derived_ids

METRICS = (Metric("new_households", "flow", "households", "Households formed (分户)", "新分户数"),
           Metric("formed_poor", "flow", "households", "Households formed from registered poor ones",
                  "由贫困户分出的户数", about="the register (administrative): they stay registered"),
           Metric("formed_exited", "flow", "households", "Households formed from exited ones", "由脱贫户分出的户数",
                  about="the register (administrative): they stay exited"))


def step(state, p, rs, year: int) -> dict:
    pp, h = state.p, state.h
    age, hh = pp["age"], pp["hh"]
    lo, hi = p["households.split_ages"]
    elder = p["households.elder_age"]
    young = np.flatnonzero((age >= lo) & (age <= hi))
    leaves = young[rs.below("households.split", year, pp["person_id"].take(young), "one",
                            [p["households.split_rate"]])[0]]
    # the members of the households they would leave: one pass over the persons
    flag = np.zeros(state.n, dtype=bool)
    flag[hh.take(leaves)] = True
    members = np.flatnonzero(flag.take(hh))
    # only from a household with a parent generation (a member `elder_age` or older); one founder
    # a household: the first of its leavers by person id
    elders = np.bincount(hh.take(members[age.take(members) >= elder]), minlength=state.n) > 0
    leaves = leaves[elders.take(hh.take(leaves))]
    if not len(leaves):
        return {"new_households": 0.0, "formed_poor": 0.0, "formed_exited": 0.0}
    leaves = leaves[np.lexsort((pp["person_id"].take(leaves), hh.take(leaves)))]
    origin, first = np.unique(hh.take(leaves), return_index=True)
    founder = leaves.take(first)

    # who goes with the founder: a partner of the other sex within `partner_gap` years (the
    # nearest in age) and, with a partner, the children under 16 young enough to be theirs
    at = np.full(state.n, -1, dtype=np.int64)
    at[origin] = np.arange(len(origin))
    members = members[at.take(hh.take(members)) >= 0]
    k = at.take(hh.take(members))  # each member's founder, by position
    f_age, f_sex = age.take(founder).astype(np.int64), pp["sex"].take(founder)
    m_age = age.take(members).astype(np.int64)
    gap = np.abs(m_age - f_age.take(k))
    partner_ok = ((pp["sex"].take(members) != f_sex.take(k)) & (gap <= p["households.partner_gap"])
                  & (m_age < elder) & (members != founder.take(k)))
    cand = np.flatnonzero(partner_ok)
    order = cand[np.lexsort((pp["person_id"].take(members.take(cand)), gap.take(cand), k.take(cand)))]
    has, pick = np.unique(k.take(order), return_index=True)
    partner = np.full(len(founder), -1, dtype=np.int64)
    partner[has] = members.take(order.take(pick))
    youngest_parent = np.where(partner >= 0, np.minimum(f_age, age.take(np.maximum(partner, 0))), -1)
    child = (m_age < 16) & (m_age <= youngest_parent.take(k) - 18)
    movers = np.concatenate([founder, partner[partner >= 0], members[child]])
    new_of = np.concatenate([np.arange(len(founder)), np.flatnonzero(partner >= 0), k[child]])

    units = np.array([0.0, p["labour.partial_weight"], 1.0])
    moved_units = np.bincount(new_of, weights=units.take(pp["labour"].take(movers)), minlength=len(origin))
    moved_persons = np.bincount(new_of, minlength=len(origin))
    labour_before = h["labour_units"].take(origin)
    share = np.where(labour_before > 0, moved_units / np.maximum(labour_before, 1e-12),
                     moved_persons / np.maximum(h["size"].take(origin), 1))

    ids = derived_ids(pp["person_id"].take(founder), "households.split", year)
    rows = state.add_households(origin, ids)
    for column in ("operating_level", "land_mu", "grassland_mu"):  # the farm and the herd are divided
        values = h[column]
        values[rows] = values.take(origin) * share
        values[origin] *= 1.0 - share
    hh[movers] = rows.take(new_of)
    pension_age = p["income.pension_age"]
    for column, weights in (("size", None), ("labour_units", units.take(pp["labour"].take(movers))),
                            ("pensioners", (age.take(movers) >= pension_age).astype(h["pensioners"].dtype))):
        add_per_row(h[column], origin.take(new_of), weights, subtract=True)
        add_per_row(h[column], rows.take(new_of), weights)
    w, status = h["weight"].take(rows), h["status"].take(rows)
    return {"new_households": float(w.sum()), "formed_poor": float(w[status == S.POOR].sum()),
            "formed_exited": float(w[status == S.EXITED].sum())}
