"""Health support for poor households (健康扶贫), on top of the insurance layers every
insured person has (`processes.shocks`):

- `health_assistance`: the individual premium paid (so members are insured next year),
  medical assistance on what insurance left, then the out-of-pocket cap (a share of the
  cost and an amount a year, 兴安盟) with the government backstop paying the rest;
- `chronic_assistance`: half of chronic-care costs above 3000 yuan a year, at most 15,000
  (昆都仑区);
- `supplementary_insurance`: commercial top-up cover bought for poor people, paying a
  share of what is still left.

They act on this year's admissions (`state.values["admissions"]`), in the scenario's order.
"""
from __future__ import annotations

import numpy as np

from fupin_sim.population.rules import wsum

from fupin_sim.interventions.base import Instrument, kept_for


def assistance_and_cap(cost: np.ndarray, left: np.ndarray, rules: dict) -> dict[str, np.ndarray]:
    """Medical assistance on what insurance left, then the cap; the backstop pays above it."""
    assistance = rules["assistance_rate"] * left
    after = left - assistance
    oop = np.minimum(after, np.minimum(rules["cap_share"] * cost, rules["cap_amount"]))
    return {"medical_assistance": assistance, "government_backstop": after - oop, "out_of_pocket": oop}


class HealthAssistance(Instrument):
    name, family = "health_assistance", "health"
    description = "premium subsidy, medical assistance and the out-of-pocket cap for poor households"
    priority = ("illness", "lowest_income")
    category = "in_kind"

    def cost(self, ctx, rules, rows):
        adm = ctx.state.values["admissions"]
        mine, local = ctx.cases_of(rows, adm["hh"])
        left = adm["left"].take(mine)
        oop = assistance_and_cap(adm["cost"].take(mine), left, rules)["out_of_pocket"]
        relief = np.bincount(local, weights=left - oop, minlength=len(rows))
        self._cases = rows, mine, local, oop, relief
        return rules["premium"] * ctx.h["size"].take(rows) + relief

    def serve(self, ctx, rules, rows, amount):  # right after cost(), on the same state
        h = ctx.h
        candidates, mine, local, oop, relief = self._cases
        at = np.arange(len(rows)) if len(rows) == len(candidates) else np.searchsorted(candidates, rows)
        h["oop"][rows] -= relief[at]
        h["insured"][rows] = True
        served = np.zeros(len(candidates), dtype=bool)
        served[at] = True
        hit = served[local]
        ctx.state.values["admissions"]["left"][mine[hit]] = oop[hit]  # what is left now falls on them


class ChronicAssistance(Instrument):
    name, family = "chronic_assistance", "health"
    description = "assistance with chronic-care costs above a yearly threshold"
    priority = ("illness", "lowest_income")
    category = "in_kind"

    def eligible(self, ctx, rules, rows):
        cc = ctx.state.values["chronic_costs"]
        mine, local = ctx.cases_of(rows, cc["hh"])
        each = np.minimum(rules["rate"] * np.maximum(cc["cost"].take(mine) - rules["threshold"], 0.0),
                          rules["max_amount"])
        relief = np.bincount(local, weights=each, minlength=len(rows))
        helped = np.flatnonzero(relief > 0)
        self._helped = rows.take(helped), relief.take(helped)
        return self._helped[0]

    def cost(self, ctx, rules, rows):  # right after eligible(), on the same state
        return kept_for(rows, *self._helped)

    def serve(self, ctx, rules, rows, amount):
        ctx.h["oop"][rows] -= amount


class SupplementaryInsurance(Instrument):
    name, family = "supplementary_insurance", "health"
    description = "commercial supplementary insurance bought for poor people: pays a share of what is left"
    priority = ("lowest_income",)
    category = "insurance_claim"

    def cost(self, ctx, rules, rows):
        return rules["premium"] * ctx.h["size"].take(rows)

    def serve(self, ctx, rules, rows, amount):
        adm = ctx.state.values["admissions"]
        mine, local = ctx.cases_of(rows, adm["hh"])
        left = adm["left"].take(mine)
        claim = rules["pays_share"] * left
        adm["left"][mine] = left - claim
        per_household = np.bincount(local, weights=claim, minlength=len(rows))
        ctx.h["oop"][rows] -= per_household
        w = ctx.weights.take(rows)
        return claims_split(wsum(per_household, w), wsum(amount, w))


def claims_split(claims: float, premiums: float) -> dict[str, float]:
    """Premiums paid are claims received by households plus the insurer's margin (negative
    when claims exceed premiums)."""
    if premiums <= 0:
        return {"insurance_claim": 1.0}
    return {"insurance_claim": claims / premiums, "insurance_margin": 1.0 - claims / premiums}
