"""Industry support (产业扶贫) and asset income (资产收益, 光伏扶贫).

Support bought this year raises income from next year on: each instrument keeps an income
stream per household that builds up with new support and fades at a stated rate.
"""
from __future__ import annotations

import numpy as np

from fupin_sim.interventions.base import Instrument
from fupin_sim.population.rules import select


class _Stream(Instrument):
    """An income stream into one source that builds up with support and fades each year."""

    stream = ""  # state column
    into = "income_operating"

    def carry(self, ctx, rules):
        h = ctx.h
        h[self.into] += h[self.stream]
        h[self.stream] *= 1.0 - rules["fade"]


class IndustryMenu(_Stream):
    """Paid every year a household with labour is registered, not once: 000 reports industry
    support covering every strong-labour registered household in 2018 (产业全覆盖), the
    yearly 以奖代补 of the county menus."""

    name, family = "industry_menu", "industry"
    description = "yearly 'menu' subsidies for livestock or crops to registered households with labour; operating income builds up and fades"
    priority = ("lowest_income",)
    category = "in_kind"
    stream, into = "boost_industry", "income_operating"
    columns = {"boost_industry": (np.float64, 0.0)}

    def eligible(self, ctx, rules, rows):
        return select(rows, ctx.h["labour_units"].take(rows) >= 1)

    def cost(self, ctx, rules, rows):
        workers = np.floor(ctx.h["labour_units"].take(rows))  # able-bodied persons, two partial workers as one
        return rules["amount_per_worker"] * np.maximum(workers, 1)

    def serve(self, ctx, rules, rows, amount):
        ctx.h["boost_industry"][rows] += amount * rules["annual_return"]


class IndustryLinkage(_Stream):
    name, family = "industry_linkage", "industry"
    description = "weak-labour households linked to firms and cooperatives (带贫); dividends or wages that fade as links lapse"
    once = True
    category = "in_kind"
    stream, into = "boost_linkage", "income_property"
    columns = {"boost_linkage": (np.float64, 0.0)}

    def eligible(self, ctx, rules, rows):
        lu = ctx.h["labour_units"].take(rows)
        return select(rows, (lu > 0) & (lu < 1.5))  # weak labour: at most one full worker

    def cost(self, ctx, rules, rows):
        return rules["cost_per_person"] * ctx.h["size"].take(rows)

    def serve(self, ctx, rules, rows, amount):
        ctx.h["boost_linkage"][rows] += rules["annual_gain"]


class AssetIncome(_Stream):
    name, family = "asset_income", "industry"
    description = "shares of fiscal-fund assets allocated to poor households, first to those without labour (资产收益)"
    priority = ("no_labour", "lowest_income")
    once = True
    category = "in_kind"
    stream, into = "boost_asset", "income_property"
    columns = {"boost_asset": (np.float64, 0.0)}

    def cost(self, ctx, rules, rows):
        return np.full(len(rows), float(rules["share_cost"]))

    def serve(self, ctx, rules, rows, amount):
        ctx.h["boost_asset"][rows] += amount * rules["annual_return"]


class Solar(Instrument):
    name, family = "solar", "industry"
    description = "solar-plant shares (光伏扶贫) paying a fixed yearly income to households without labour"
    priority = ("lowest_income",)
    once = True
    category = "in_kind"
    columns = {"solar_years_left": (np.int16, 0)}

    def carry(self, ctx, rules):
        h = ctx.h
        paying = np.flatnonzero(h["solar_years_left"] > 0)
        h["income_property"][paying] += rules["annual_income"]
        h["solar_years_left"][paying] -= 1

    def eligible(self, ctx, rules, rows):
        return select(rows, ctx.h["labour_units"].take(rows) == 0)

    def cost(self, ctx, rules, rows):
        return np.full(len(rows), float(rules["share_cost"]))

    def serve(self, ctx, rules, rows, amount):
        ctx.h["solar_years_left"][rows] = int(rules["years"])


class CollectiveEconomy(Instrument):
    """Seed funds per village (村集体经济); the collective's return is shared among the
    village's registered households each year. Rationed by village: the household row that
    stands for a village is its first registered household; the seed is held by the village."""

    name, family = "collective_economy", "industry"
    description = "village collective-economy seed funds whose returns are shared with the village's poor households"
    priority = ("deep_poverty_area",)
    category = "in_kind"
    values = {"village_seed": (np.ndarray, None)}  # yuan of seed funds held by each village

    def _seeds(self, ctx) -> np.ndarray:
        values = ctx.state.values
        if "village_seed" not in values:
            values["village_seed"] = np.zeros(int(ctx.h["village"].max(initial=0)) + 1)
        return values["village_seed"]

    def carry(self, ctx, rules):
        seeds = self._seeds(ctx)
        if not seeds.any():
            return
        h = ctx.h
        members = ctx.target_rows("registered")
        village = h["village"].take(members)
        count = np.bincount(village, weights=ctx.weights.take(members), minlength=len(seeds))
        payout = seeds * rules["annual_return"] * rules["poor_share"] / np.maximum(count, 1e-12)
        h["income_property"][members] += payout[village]

    def eligible(self, ctx, rules, rows):
        h = ctx.h
        rows = rows[self._seeds(ctx)[h["village"].take(rows)] == 0]  # once per village
        _, idx = np.unique(h["village"].take(rows), return_index=True)
        return np.sort(rows[idx])  # one household row stands for its village

    def cost(self, ctx, rules, rows):
        # the row stands for the village: its weight must not multiply the village's cost
        return rules["seed_per_village"] / ctx.h["weight"].take(rows)

    def serve(self, ctx, rules, rows, amount):
        self._seeds(ctx)[ctx.h["village"].take(rows)] += amount * ctx.h["weight"].take(rows)
