"""Education subsidies, housing renovation (危房改造), ecological compensation and
anti-poverty insurance (防贫保险)."""
from __future__ import annotations

import numpy as np

from fupin_sim.population.rules import select, wsum

from fupin_sim.interventions.base import Instrument, kept_for
from fupin_sim.interventions.health import claims_split
from fupin_sim.population import schema as S


class EducationSubsidy(Instrument):
    name, family = "education_subsidy", "education"
    description = "stage subsidies for students of poor households and a yearly grant for their university students"

    def eligible(self, ctx, rules, rows):
        students = ctx.state.values["students"]  # this year's, from the shocks step
        mine, at = ctx.cases_of(rows, students["hh"])
        stage, age = students["stage"].take(mine), ctx.state.p["age"].take(students["rows"].take(mine))
        each = np.array([0.0, *rules["stage_amounts"]]).take(stage)
        # 10,000 yuan every year of study for those who entered university from `university_grant_from` (000)
        entered = ctx.year - (age - ctx.p["education.stage_ages"][3])
        each += rules["university_grant"] * ((stage == S.UNIVERSITY) & (entered >= rules["university_grant_from"]))
        amounts = np.bincount(at, weights=each, minlength=len(rows))
        paid = np.flatnonzero(amounts > 0)
        self._amounts = rows.take(paid), amounts.take(paid)
        return self._amounts[0]

    def cost(self, ctx, rules, rows):  # called right after eligible(), on the same state
        return kept_for(rows, *self._amounts)

    def serve(self, ctx, rules, rows, amount):
        ctx.pay("transfer", rows, amount)


class HousingRenovation(Instrument):
    name, family = "housing_renovation", "housing"
    description = "renovation of dangerous houses: a subsidy, the household's own share as debt; the house becomes safe"
    once = True
    category = "in_kind"

    def eligible(self, ctx, rules, rows):
        return select(rows, ~ctx.h["housing_safe"].take(rows))

    def cost(self, ctx, rules, rows):
        return np.full(len(rows), float(rules["subsidy"]))

    def serve(self, ctx, rules, rows, amount):
        ctx.h["housing_safe"][rows] = True
        ctx.h["debt"][rows] += rules["own_contribution"]


class EcologicalCompensation(Instrument):
    name, family = "ecological_compensation", "ecology"
    description = "grazing-ban subsidies and grass-livestock balance rewards per mu of grassland"
    targets = "all"

    def eligible(self, ctx, rules, rows):
        return ctx.among(rows, ctx.h["grassland_mu"] > 0)

    def cost(self, ctx, rules, rows):
        per_mu = rules["ban_share"] * rules["grazing_ban"] + (1 - rules["ban_share"]) * rules["balance_reward"]
        return ctx.h["grassland_mu"].take(rows) * per_mu

    def serve(self, ctx, rules, rows, amount):
        ctx.pay("transfer", rows, amount)


class AntiPovertyInsurance(Instrument):
    """防贫保: the government pays a premium per person for covered households; when a
    household's income net of a medical or schooling cost falls to the trigger multiple of
    the previous year's line or below, the insurance pays a share of that cost."""

    name, family = "anti_poverty_insurance", "insurance"
    description = "防贫保险: premiums for near-poor and exited households; pays part of a large cost that pushes them down"
    targets = "near_poor"
    category = "insurance_claim"

    def cost(self, ctx, rules, rows):
        return rules["premium"] * ctx.h["size"].take(rows)

    def serve(self, ctx, rules, rows, amount):
        h = ctx.h
        previous_line = ctx.state.values.get("previous_line", ctx.line)
        expense = h["oop"].take(rows) + h["school_cost"].take(rows)
        triggered = (expense > 0) & (ctx.per_capita_income(rows) <= rules["trigger_multiple"] * previous_line)
        claim = np.where(triggered, rules["pays_share"] * expense, 0.0)
        ctx.pay("transfer", rows, claim)
        w = ctx.weights.take(rows)
        return claims_split(wsum(claim, w), wsum(amount, w))
