"""Employment: skills training, organised labour transfer (劳务输出), public-welfare posts
(公益性岗位) and forest-ranger posts (生态护林员). Posts are limited in number; their holders
keep them from year to year while they stay eligible and the money lasts."""
from __future__ import annotations

import numpy as np

from fupin_sim.population.rules import select

from fupin_sim.interventions.base import Instrument
from fupin_sim.population import schema as S


class SkillsTraining(Instrument):
    name, family = "skills_training", "employment"
    description = "vocational training: a lasting rise of the wage level from the next year"
    once = True
    category = "in_kind"
    counts = ("trainable",)

    def eligible(self, ctx, rules, rows):
        return select(rows, ctx.count("trainable")[rows] > 0)

    def cost(self, ctx, rules, rows):
        return rules["cost_per_person"] * ctx.count("trainable")[rows]

    def serve(self, ctx, rules, rows, amount):
        ctx.h["wage_level"][rows] *= 1.0 + rules["wage_gain"]  # this year's wages are paid: it shows next year


class LabourTransfer(Instrument):
    """Placements are limited in number, not only by money: few registered poor workers could
    and would go (000_2488b6b2437a55b6.txt: 23,370 identified, 19,499 placed in 2018)."""

    name, family = "labour_transfer", "employment"
    description = "organised migrant work: one worker away, sending money home in place of a home wage while the job lasts"
    once = True
    category = "in_kind"
    columns = {"migrant": (np.bool_, False)}

    def capacity(self, ctx, rules):
        return rules["placements_per_10k_households"] * ctx.households / 1e4

    def carry(self, ctx, rules):
        h = ctx.h
        away = np.flatnonzero(h["migrant"])
        # the remittance replaces what the worker would have earned at home: one full worker's
        # share of the household's wage income this year
        home = h["income_wage"].take(away) / np.maximum(h["labour_units"].take(away), 1.0)
        h["income_wage"][away] += rules["annual_remittance"] - home
        stays = ctx.rs.uniform("labour_transfer.retention", ctx.year, h["household_id"][away]) < rules["retention"]
        h["migrant"][away[~stays]] = False

    def eligible(self, ctx, rules, rows):
        return select(rows, (ctx.h["labour_units"].take(rows) >= 1) & ~ctx.h["migrant"].take(rows))

    def cost(self, ctx, rules, rows):
        return np.full(len(rows), float(rules["cost_per_person"]))

    def serve(self, ctx, rules, rows, amount):
        ctx.h["migrant"][rows] = True


class _Post(Instrument):
    """A yearly paid post: holders first, then newcomers by priority, within the number of
    posts (per 10,000 households of the population) and the money."""

    family = "employment"
    priority = ("lowest_income",)

    def carry(self, ctx, rules):
        self._holders = ctx.h[self.column].copy()
        ctx.h[self.column][:] = False

    def first_keys(self, ctx, rows):
        return [(~self._holders[rows]).astype(np.int8)]

    @property
    def column(self):
        return f"post_{self.name}"

    def eligible(self, ctx, rules, rows):
        return select(rows, ctx.h["labour_units"].take(rows) > 0)

    def capacity(self, ctx, rules):
        return rules["posts_per_10k_households"] * ctx.households / 1e4

    def cost(self, ctx, rules, rows):
        return np.full(len(rows), float(rules["pay"]))

    def serve(self, ctx, rules, rows, amount):
        ctx.pay("wage", rows, amount)
        ctx.h[self.column][rows] = True


class PublicWelfarePost(_Post):
    name = "public_welfare_post"
    description = "public-welfare posts (公益性岗位) for poor people with some labour capacity"
    columns = {"post_public_welfare_post": (np.bool_, False)}


class ForestRanger(_Post):
    name = "forest_ranger"
    description = "forest and grassland ranger posts (生态护林员), 10,000 yuan a year"
    columns = {"post_forest_ranger": (np.bool_, False)}

    def eligible(self, ctx, rules, rows):
        rows = super().eligible(ctx, rules, rows)
        return select(rows, ctx.h["region_type"].take(rows) != S.CODE["region_type"]["urban_fringe"])  # rural
