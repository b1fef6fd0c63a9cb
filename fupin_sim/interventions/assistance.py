"""Social assistance: 低保 (minimum living guarantee), 特困 (support for the extremely poor),
support for aged bedridden registered poor (兴安盟), and help for households flagged by
relapse monitoring (防止返贫监测)."""
from __future__ import annotations

import numpy as np

from fupin_sim.population.rules import select

from fupin_sim.interventions.base import Instrument
from fupin_sim.population import schema as S


def _gross_per_capita(ctx, rows: np.ndarray) -> np.ndarray:
    """Income per person before costs of households `rows`: what a means test counts."""
    h = ctx.h
    total = h["income_wage"].take(rows) + h["income_operating"].take(rows)  # take: a fifth faster than a[rows]
    total += h["income_property"].take(rows)
    total += h["income_transfer"].take(rows)
    total /= np.maximum(h["size"].take(rows), 1)
    return total


def _assessed_per_capita(ctx, imputed_earnings: float, rows: np.ndarray) -> np.ndarray:
    """Income per person of households `rows` as the 低保 means test assesses it: wage income
    counted at no less than `imputed_earnings` per labour unit (labour units weigh members by
    capacity, as the test's 劳动力系数 does), so a household that can work is not topped up
    as one that cannot. Never below the gross income per person."""
    pc = _gross_per_capita(ctx, rows)
    if imputed_earnings > 0:
        h = ctx.h
        imputed = imputed_earnings * h["labour_units"].take(rows) - h["income_wage"].take(rows)
        pc += np.maximum(imputed, 0.0) / np.maximum(h["size"].take(rows), 1)
    return pc


class Dibao(Instrument):
    """A means-tested top-up to the standard, with extra for vulnerable members, and the
    targeting errors real programmes have: some eligible households are left out
    (exclusion), some ineligible ones near the standard are enrolled (inclusion). A
    household's propensity to be reached is drawn once, so errors persist over years.
    The test imputes earnings to members who can work (`imputed_earnings`), as the rules
    do (000_2488b6b2437a55b6.txt); the top-up is the standard less the assessed income."""

    name, family = "dibao", "assistance"
    description = "低保: means-tested top-up to the standard, with targeting errors"
    targets = "all"

    columns = {"dibao_propensity": (np.float32, -1.0)}

    def _propensity(self, ctx):
        h = ctx.h
        if h["dibao_propensity"][0] < 0:  # drawn once per run: targeting errors persist
            h["dibao_propensity"][:] = ctx.rs.uniform("dibao.targeting", 0, h["household_id"])
        return h["dibao_propensity"]

    def eligible(self, ctx, rules, rows):
        standard = rules["standard"]
        reach = max(standard, 1.5 * standard)  # nobody assessed above it can be reached
        h = ctx.h
        # as the assessed income is at least the gross, households are first cut on gross
        # income (by a bound a little wide, so that rounding can drop nobody): only the
        # few left are assessed (two in five at the bundled standards)
        total = h["income_wage"] + h["income_operating"]
        total += h["income_property"]
        total += h["income_transfer"]
        near = ctx.among(rows, total < (reach + abs(reach) * 1e-9) * np.maximum(h["size"], 1))
        pc = _assessed_per_capita(ctx, rules["imputed_earnings"], near)
        at = np.flatnonzero(pc < reach)
        near, pc = near.take(at), pc.take(at)
        u = self._propensity(ctx).take(near)
        truly = pc < standard
        reached = np.flatnonzero((truly & (u >= rules["exclusion_error"]))
                                 | (~truly & (pc < 1.5 * standard) & (u < rules["inclusion_error"])))
        self._assessed = near.take(reached), pc.take(reached)
        return self._assessed[0]

    def cost(self, ctx, rules, rows):  # right after eligible(), on the same state
        assessed, pc = self._assessed
        pc = pc if len(rows) == len(assessed) else pc[np.searchsorted(assessed, rows)]
        extra = rules["vulnerable_extra"] * rules["standard"] * ctx.count("vulnerable").take(rows)
        gap = np.maximum(rules["standard"] - pc, 0.0) * ctx.h["size"].take(rows)
        return gap + extra

    def serve(self, ctx, rules, rows, amount):
        ctx.h["income_transfer"][rows] += amount


class Tekun(Instrument):
    name, family = "tekun", "assistance"
    description = "特困: support to the standard for people living alone without labour capacity (by age or health)"
    targets = "all"

    def eligible(self, ctx, rules, rows):
        h = ctx.h
        rows = ctx.among(rows, (h["size"] == 1) & (h["labour_units"] == 0))  # alone, without labour
        return select(rows, _gross_per_capita(ctx, rows) < rules["standard"])

    def cost(self, ctx, rules, rows):
        return np.maximum(rules["standard"] - _gross_per_capita(ctx, rows), 0.0)

    def serve(self, ctx, rules, rows, amount):
        ctx.h["income_transfer"][rows] += amount


class AgedSupport(Instrument):
    name, family = "aged_support", "assistance"
    description = "a yearly sum for each registered poor person aged 65+ who is bedridden or cannot care for themselves"

    def eligible(self, ctx, rules, rows):
        pp = ctx.state.p
        aged = np.flatnonzero((pp["age"] >= rules["age"]) & pp["disabled"])  # a few percent of persons:
        households, persons = np.unique(pp["hh"].take(aged), return_counts=True)  # counted where they are
        among = ctx.mask_of(rows).take(households)
        self._aged = households[among], persons[among]
        return self._aged[0]

    def cost(self, ctx, rules, rows):  # right after eligible(), on the same state
        households, persons = self._aged
        return rules["amount"] * (persons if len(rows) == len(households)
                                  else persons[np.searchsorted(households, rows)])

    def serve(self, ctx, rules, rows, amount):
        ctx.h["income_transfer"][rows] += amount


class MonitoringAssistance(Instrument):
    """Help for households the monitoring rule flagged last year, within the office's
    caseload: a grant closing the gap to the monitoring threshold, up to a maximum."""

    name, family = "monitoring_assistance", "monitoring"
    description = "防止返贫监测: grants to households flagged by the monitoring rule, within a caseload"
    targets = "monitored"

    def _gap(self, ctx, rows):
        threshold = ctx.p["monitoring.income_multiple"] * ctx.line
        return np.maximum(threshold - ctx.per_capita_income(rows), 0.0) * ctx.h["size"].take(rows)

    def eligible(self, ctx, rules, rows):
        return rows[(self._gap(ctx, rows) > 0) & (ctx.h["status"].take(rows) != S.POOR)]

    def capacity(self, ctx, rules):
        return rules["capacity_per_10k_households"] * ctx.households / 1e4

    def cost(self, ctx, rules, rows):
        return np.minimum(self._gap(ctx, rows), rules["max_amount"])

    def serve(self, ctx, rules, rows, amount):
        ctx.h["income_transfer"][rows] += amount
