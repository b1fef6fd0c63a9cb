"""Health support for poor households (健康扶贫), on top of the insurance layers every
insured person has (`processes.shocks`):

- `health_assistance`: the individual premium paid (so members are insured next year),
  medical assistance on what insurance left, then the out-of-pocket cap (a share of the
  cost and an amount a year, 兴安盟) with the government backstop paying the rest;
- `chronic_assistance`: half of chronic-care costs above 3000 yuan a year, at most 15,000
  (昆都仑区);
- `supplementary_insurance`: commercial top-up cover bought for poor people, paying a
  share of what is still left.

They act on this year's admissions (`state.admissions`), in the scenario's order.
"""
from __future__ import annotations

import numpy as np

from fupin_sim.population.rules import wsum

from fupin_sim.interventions.base import Instrument


def assistance_and_cap(cost: np.ndarray, left: np.ndarray, rules: dict) -> dict[str, np.ndarray]:
    """Medical assistance on what insurance left, then the cap; the backstop pays above it."""
    assistance = rules["assistance_rate"] * left
    after = left - assistance
    oop = np.minimum(after, np.minimum(rules["cap_share"] * cost, rules["cap_amount"]))
    return {"medical_assistance": assistance, "government_backstop": after - oop, "out_of_pocket": oop}


def _per_household(n: int, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.bincount(rows, weights=values, minlength=n)


class HealthAssistance(Instrument):
    name, family = "health_assistance", "health"
    description = "premium subsidy, medical assistance and the out-of-pocket cap for poor households"
    priority = ("illness", "lowest_income")
    category = "in_kind"

    def _relief(self, ctx, rules):
        adm = ctx.state.admissions
        split = assistance_and_cap(adm["cost"], adm["left"], rules)
        return split, _per_household(ctx.state.n, adm["hh"], adm["left"] - split["out_of_pocket"])

    def cost(self, ctx, rules, rows):
        self._split = self._relief(ctx, rules)
        return rules["premium"] * ctx.h["size"][rows] + self._split[1][rows]

    def serve(self, ctx, rules, rows, amount):  # right after cost(), on the same state
        h = ctx.h
        split, relief = self._split
        h["oop"][rows] -= relief[rows]
        h["insured"][rows] = True
        served = np.zeros(ctx.state.n, dtype=bool)
        served[rows] = True
        adm = ctx.state.admissions
        adm["left"] = np.where(served[adm["hh"]], split["out_of_pocket"], adm["left"])


class ChronicAssistance(Instrument):
    name, family = "chronic_assistance", "health"
    description = "assistance with chronic-care costs above a yearly threshold"
    priority = ("illness", "lowest_income")
    category = "in_kind"

    def _relief(self, ctx, rules):
        cc = ctx.state.chronic_costs
        each = np.minimum(rules["rate"] * np.maximum(cc["cost"] - rules["threshold"], 0.0), rules["max_amount"])
        return _per_household(ctx.state.n, cc["hh"], each)

    def eligible(self, ctx, rules, rows):
        self._each = self._relief(ctx, rules)
        return ctx.among(rows, self._each > 0)

    def cost(self, ctx, rules, rows):  # right after eligible(), on the same state
        return self._each[rows]

    def serve(self, ctx, rules, rows, amount):
        ctx.h["oop"][rows] -= amount


class SupplementaryInsurance(Instrument):
    name, family = "supplementary_insurance", "health"
    description = "commercial supplementary insurance bought for poor people: pays a share of what is left"
    priority = ("lowest_income",)
    category = "insurance_claim"

    def cost(self, ctx, rules, rows):
        return rules["premium"] * ctx.h["size"][rows]

    def serve(self, ctx, rules, rows, amount):
        adm = ctx.state.admissions
        served = np.zeros(ctx.state.n, dtype=bool)
        served[rows] = True
        claim = np.where(served[adm["hh"]], rules["pays_share"] * adm["left"], 0.0)
        adm["left"] = adm["left"] - claim
        per_household = _per_household(ctx.state.n, adm["hh"], claim)
        ctx.h["oop"] -= per_household
        w = ctx.h["weight"]
        return claims_split(wsum(per_household[rows], w[rows]), wsum(amount, w[rows]))


def claims_split(claims: float, premiums: float) -> dict[str, float]:
    """Premiums paid are claims received by households plus the insurer's margin (negative
    when claims exceed premiums)."""
    if premiums <= 0:
        return {"insurance_claim": 1.0}
    return {"insurance_claim": claims / premiums, "insurance_margin": 1.0 - claims / premiums}
