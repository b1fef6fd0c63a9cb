"""Education subsidies, housing renovation (危房改造), ecological compensation and
anti-poverty insurance (防贫保险)."""
from __future__ import annotations

import numpy as np

from fupin_sim.population.rules import select, wsum

from fupin_sim.interventions.base import Instrument, kept_for
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
    """防贫保险 as 魏县 (Hebei, 2017) ran it and Jiangsu's 防贫保险基金 / "防贫宝" (003):

    - the pool is insured for the year before any claim: households not registered whose
      survey income last year was under `cover_multiple` × last year's line (边缘户), and
      exited households (`cover_exited`), as the register stood at the end of last year; the
      government pays `premium` a person for them (the instrument's budget lines, rationed as
      usual). A household formed during the year keeps its register status; one not registered
      has no income of last year recorded and is insured from the next year.
    - a claim arises when an insured household's income net of this year's medical
      out-of-pocket and schooling costs falls under `trigger_multiple` × this year's line per
      person, and pays the gap back up to that line, at most `max_claim` a year, and no more
      than those costs (a fall of income alone is not insured: 因病, 因学 致贫);
    - premiums pay claims first; what claims cost beyond them (the insurer's loss) is drawn from
      the instrument's lines like any cost, earmarked lines first (a scenario names the line, e.g.
      a county `risk_fund`), and booked as claims from that line. When the lines cannot pay the
      whole loss, the claimants with the lowest net incomes are paid in full while it lasts and
      the others only the premiums' share of their claims.

    The ledger: the premium lines pay premiums, split into claims and the insurer's margin
    (never negative); the loss lines pay the claims beyond premiums. `books` keeps each year's
    premiums, claims and loss (weighted yuan) for the loss ratio.
    """

    name, family = "anti_poverty_insurance", "insurance"
    description = ("防贫保险: premiums for a pool of near-poor and exited households fixed at the start of the year; "
                   "a claim pays the gap up to the trigger line, capped, the loss beyond premiums from a budget line")
    targets = "all"  # the pool is the rule's (`eligible`), from last year's record
    priority = ("lowest_income",)
    category = "insurance_claim"

    def __init__(self):
        self.books: list[dict] = []  # one entry a year: premiums, claims, loss paid, claims unpaid (weighted yuan)

    def eligible(self, ctx, rules, rows):
        """The insured pool, from the register and incomes as they stood at the end of last year
        (status is updated after the interventions step; `income_last` is last year's survey
        income): nothing that happens this year decides who is covered."""
        h = ctx.h
        previous_line = ctx.state.values.get("previous_line") or ctx.line
        status, last = h["status"].take(rows), h["income_last"].take(rows)
        recorded = last != 0  # a household formed this year has no income recorded last year
        under = recorded & (last < rules["cover_multiple"] * previous_line)
        covered = (status == S.NONPOOR) & under
        if rules["cover_exited"] == "all":
            covered |= status == S.EXITED
        elif rules["cover_exited"] == "under_cover_line":
            covered |= (status == S.EXITED) & under
        return select(rows, covered)

    def cost(self, ctx, rules, rows):
        return rules["premium"] * ctx.h["size"].take(rows)

    def claims(self, ctx, rules, rows) -> tuple[np.ndarray, np.ndarray]:
        """Each household's claim this year (yuan, per simulated household: the gap between its
        income net of medical and schooling costs and the trigger line, at most the cap), and
        that net income per person."""
        h = ctx.h
        size = h["size"].take(rows)
        cost = h["oop"].take(rows) + h["school_cost"].take(rows)
        net = sum(h[f"income_{s}"].take(rows).astype(np.float64) for s in S.INCOME_SOURCES) - cost
        trigger = rules["trigger_multiple"] * ctx.line * size
        # the gap up to the line, but only as far as the costs made it: a fall of income alone is
        # no claim (因病, 因学 致贫), and a household under the line without them is not paid
        claim = np.minimum(np.minimum(np.maximum(trigger - net, 0.0), np.maximum(cost, 0.0)), rules["max_claim"])
        return claim, net / np.maximum(size, 1)

    def serve(self, ctx, rules, rows, amount):
        claim, net = self.claims(ctx, rules, rows)
        w = ctx.weights.take(rows)
        premiums, total = wsum(w, amount), wsum(w, claim)
        loss, unpaid = max(total - premiums, 0.0), 0.0
        if loss > 0:  # the share of every claim that premiums do not cover, from the loss lines
            claimants = np.flatnonzero(claim > 0)
            beyond = claim.take(claimants) * (loss / total)
            label = _label(ctx, self.name)
            pos, charges = ctx.funds.ration(label, rows.take(claimants), beyond * w.take(claimants),
                                            lambda: [net.take(claimants)])
            paid = float(sum(part.sum() for part in charges.values()))
            if charges:
                ctx.funds.book(label, rows.take(claimants).take(pos),
                               {name: part.take(pos) for name, part in charges.items()}, {"insurance_claim": 1.0})
            if len(pos) < len(claimants):  # the lines ran short: the claimants they did not reach (in
                short = np.ones(len(claimants), dtype=bool)  # order of net income) get the premiums' share
                short[pos] = False
                claim[claimants[short]] *= premiums / total
                unpaid, loss = total - premiums - paid, paid
        ctx.pay("transfer", rows, claim)
        self.books.append({"year": ctx.year, "premiums": premiums, "claims": wsum(w, claim), "loss": loss,
                           "unpaid": unpaid})
        if premiums <= 0:
            return {"insurance_claim": 1.0}
        covered = min(total, premiums) / premiums
        return {"insurance_claim": covered, "insurance_margin": 1.0 - covered}


def _label(ctx, name: str) -> str:
    """The scenario's label of the instrument being served (its budget lines name the label).
    `serve` is not given it, so it is read from this year's draws: the premiums just rationed
    were the label's first draw of the year (each label is served once a year), so the latest
    (label, line) entry is its. Without a draw (nothing served), the instrument's name."""
    drawn = ctx.funds.drawn
    return next(reversed(drawn))[0] if drawn else name
