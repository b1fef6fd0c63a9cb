"""Poverty-alleviation relocation (易地扶贫搬迁): households from harsh areas move to a town
or central village. The move costs a sum per person; afterwards operating income falls to a
share, wage prospects rise, the land is rented out (100 yuan per mu, 化德), the new house is
safe, and follow-up support (后续扶持) is paid for some years."""
from __future__ import annotations

import numpy as np

from fupin_sim.interventions.base import Instrument
from fupin_sim.population import schema as S
from fupin_sim.population.rules import select


class Relocation(Instrument):
    name, family = "relocation", "relocation"
    description = "moves households out of harsh areas: less farming, more wage work, land rented out, a safe house"
    priority = ("lowest_income",)
    once = True
    category = "in_kind"
    columns = {"land_rent": (np.float64, 0.0), "follow_up_years": (np.int16, 0)}

    def carry(self, ctx, rules):
        h = ctx.h
        renting = np.flatnonzero(h["land_rent"] > 0)
        h["income_property"][renting] += h["land_rent"][renting]
        due = np.flatnonzero(h["follow_up_years"] > 0)
        if len(due):
            amount = rules["follow_up"] * h["size"][due] * h["weight"][due]
            paid = ctx.funds.charge(self.name, due, amount, "transfer") / h["weight"][due]
            h["income_transfer"][due] += paid
            h["follow_up_years"][due] -= 1

    def eligible(self, ctx, rules, rows):
        return select(rows, ctx.h["harsh_area"].take(rows))

    def cost(self, ctx, rules, rows):
        return rules["cost_per_person"] * ctx.h["size"].take(rows)

    def serve(self, ctx, rules, rows, amount):
        h = ctx.h
        h["region_type"][rows] = S.CODE["region_type"]["urban_fringe"]
        h["harsh_area"][rows] = False
        h["housing_safe"][rows] = True
        h["operating_level"][rows] *= rules["operating_kept"]
        h["wage_level"][rows] *= 1.0 + rules["wage_gain"]
        h["land_rent"][rows] = rules["land_rent"] * h["land_mu"].take(rows)
        h["land_mu"][rows] = 0.0
        h["follow_up_years"][rows] = int(rules["follow_up_years"])
