"""Social assistance: 低保 (minimum living guarantee, with gradual exit and single-person
coverage), 临时救助 (temporary assistance), 特困 (support for the extremely poor), support for
aged bedridden registered poor (兴安盟), and help for households flagged by relapse monitoring
(防止返贫监测)."""
from __future__ import annotations

import numpy as np

from fupin_sim.population.rules import guarantees_met, monitoring_threshold, poverty_line, select

from fupin_sim.interventions.base import Instrument, kept_for
from fupin_sim.population import schema as S


def _gross_per_capita(ctx, rows: np.ndarray | None = None) -> np.ndarray:
    """Income per person before costs: what a means test counts (for all households or `rows`)."""
    h = ctx.h
    pick = (lambda a: a) if rows is None else (lambda a: a.take(rows))  # take: a fifth faster than a[rows]
    total = pick(h["income_wage"]) + pick(h["income_operating"])
    total += pick(h["income_property"])
    total += pick(h["income_transfer"])
    total /= np.maximum(pick(h["size"]), 1)
    return total


def _assessed_per_capita(ctx, imputed_earnings: float) -> np.ndarray:
    """Income per person as the 低保 means test assesses it: wage income counted at no less
    than `imputed_earnings` per labour unit (labour units weigh members by capacity, as the
    test's 劳动力系数 does), so a household that can work is not topped up as one that cannot.
    For every household: one pass over each column costs less than gathering them for the
    two in five households under the gross-income reach of the test."""
    pc = _gross_per_capita(ctx)
    if imputed_earnings > 0:
        h = ctx.h
        shortfall = imputed_earnings * h["labour_units"]  # in place: a temporary over every
        shortfall -= h["income_wage"]                     # household costs a pass of its own
        np.maximum(shortfall, 0.0, out=shortfall)
        shortfall /= np.maximum(h["size"], 1)
        pc += shortfall
    return pc


def gap_as_assessed(ctx, rows: np.ndarray, target: float) -> np.ndarray:
    """What each household of `rows` must be paid (yuan) for its per-capita income, as the
    register's assessment sees it (its own persistent factor, `status.assessment_factor`; at
    face value before the first assessment), to reach `target`; 0 for those above it. A fen
    more, so that rounding never leaves the income a hair under."""
    factor = ctx.h["assessment_factor"].take(rows).astype(np.float64)
    factor[factor <= 0] = 1.0
    gap = np.maximum(target - ctx.per_capita_income(rows) * factor, 0.0) / factor
    gap[gap > 0] += 0.01
    return gap * ctx.h["size"].take(rows)


class Dibao(Instrument):
    """A means-tested top-up to the standard, with extra for vulnerable members, and the
    targeting errors real programmes have: some eligible households are left out
    (exclusion), some ineligible ones near the standard are enrolled (inclusion). A
    household's propensity to be reached is drawn once, so errors persist over years.
    The test imputes earnings to members who can work (`imputed_share` of the standard per
    labour unit), as the rules
    do (000_2488b6b2437a55b6.txt); the top-up is the standard less the assessed income.

    Two rules of the programme, both off by default (today's behaviour):
    - gradual exit (渐退, "缓退" in 003_2029d448e398c879.txt): a household paid as a household
      last year whose assessed income is now at or above the standard keeps what it was paid
      in its last qualifying year for `gradual_exit_years` more years (a part year pays that
      share of the amount in the last one), then stops;
    - single-person coverage (单人保, 003): in a household that fails the test as a whole but
      is near it (under `single_person_reach` x the standard, 低保边缘), each member with a
      disability or serious illness (`single_person`: `severe` - without labour capacity as
      well; `flagged` - any such member) is covered alone at the standard, the household's
      other members not. The same office reaches them (the household's exclusion error).
    The first listing of the class keeps the exit record: the last year a household was paid
    as a household (`dibao_year`), what it was then paid (`dibao_paid`) and the years of
    gradual exit it has had since (`dibao_grace`)."""

    name, family = "dibao", "assistance"
    description = "低保: means-tested top-up to the standard, with targeting errors, gradual exit and single-person coverage"
    targets = "all"

    columns = {"dibao_propensity": (np.float32, -1.0), "dibao_year": (np.int16, S.NO_YEAR),
               "dibao_paid": (np.float64, 0.0), "dibao_grace": (np.int8, 0)}
    counts = ("vulnerable",)

    def _propensity(self, ctx):
        h = ctx.h
        propensity = h["dibao_propensity"]
        new = np.flatnonzero(propensity < 0)  # drawn once for each household: targeting errors persist
        if len(new):
            propensity[new] = ctx.rs.uniform("dibao.targeting", 0, h["household_id"].take(new))
        return propensity

    @staticmethod
    def _missed(ctx, rules, rows):
        """The exclusion error each household of `rows` faces."""
        # registered households (and exited ones while support is kept: 脱贫不脱政策) and monitoring
        # objects that qualify and cannot live by work - no member of full labour capacity - are
        # all enrolled once the systems are linked (应保尽保 for 完全或部分丧失劳动能力的贫困家庭:
        # 000_2488b6b2437a55b6.txt; the 2016 guideline on linking 低保 and poverty alleviation)
        status = ctx.h["status"].take(rows)
        kept = (status == S.EXITED) & (ctx.year <= ctx.support_until)
        watched = ((status == S.POOR) | kept | ctx.h["monitored"].take(rows)) & (ctx.h["labour_units"].take(rows) < 1)
        return np.where(watched, rules["exclusion_error_registered"], rules["exclusion_error"])

    def eligible(self, ctx, rules, rows):
        pc = _assessed_per_capita(ctx, rules["imputed_share"] * rules["standard"])
        standard = rules["standard"]
        propensity = self._propensity(ctx)
        near = ctx.among(rows, pc < max(standard, 1.5 * standard))  # nobody above can be reached
        pc_near, u = pc.take(near), propensity.take(near)
        truly = pc_near < standard
        missed = self._missed(ctx, rules, near)
        reached = np.flatnonzero((truly & (u >= missed))
                                 | (~truly & (pc_near < 1.5 * standard) & (u < rules["inclusion_error"])))
        self._assessed = near.take(reached), pc_near.take(reached)
        self._grace = self._single = None
        chosen = self._assessed[0]
        years = rules["gradual_exit_years"]
        if years > 0:  # paid as a household last year, no longer qualifying, exit years left
            h = ctx.h
            left = ctx.among(rows, (h["dibao_year"] == ctx.year - 1) & (h["dibao_grace"] < years) & (pc >= standard))
            left = left[~np.isin(left, chosen, assume_unique=True)]  # enrolled again (inclusion): not exiting
            share = np.minimum(years - h["dibao_grace"].take(left), 1.0)
            self._grace = left, share * h["dibao_paid"].take(left)
        if rules["single_person"] != "none":
            self._single = self._single_members(ctx, rules, rows, pc, propensity, chosen)
        if self._grace is None and self._single is None:
            return chosen
        parts = [chosen, *(part[0] for part in (self._grace, self._single) if part is not None)]
        return np.sort(np.concatenate(parts))

    def _single_members(self, ctx, rules, rows, pc, propensity, chosen):
        """Households failing the test as a whole, near it, with members covered alone (单人保):
        their rows and what covering those members costs (the standard for each)."""
        pp = ctx.state.p
        flagged = pp["disabled"] | pp["chronic"]
        if rules["single_person"] == "severe":  # 重残, 重病: also without labour capacity
            flagged &= pp["labour"] == S.NO_LABOUR
        members = np.bincount(pp["hh"].take(np.flatnonzero(flagged)), minlength=ctx.state.n)
        standard = rules["standard"]
        exiting = self._grace[0] if self._grace is not None else chosen[:0]
        cand = ctx.among(rows, (members > 0) & (pc >= standard) & (pc < rules["single_person_reach"] * standard))
        cand = cand[~np.isin(cand, chosen, assume_unique=True) & ~np.isin(cand, exiting, assume_unique=True)]
        cand = cand[propensity.take(cand) >= self._missed(ctx, rules, cand)]
        return cand, standard * members.take(cand)

    def cost(self, ctx, rules, rows):  # right after eligible(), on the same state
        if self._grace is None and self._single is None:
            return self._topup(ctx, rules, rows, kept_for(rows, *self._assessed))
        out = np.zeros(len(rows))
        for part in (self._grace, self._single):
            if part is not None:
                at, hit = _found(rows, part[0])
                out[hit] = part[1][at[hit]]
        at, hit = _found(rows, self._assessed[0])
        out[hit] = self._topup(ctx, rules, rows[hit], self._assessed[1][at[hit]])
        return out

    @staticmethod
    def _topup(ctx, rules, rows, pc):
        extra = rules["vulnerable_extra"] * rules["standard"] * ctx.count("vulnerable").take(rows)
        gap = np.maximum(rules["standard"] - pc, 0.0) * ctx.h["size"].take(rows)
        return gap + extra

    def serve(self, ctx, rules, rows, amount):
        ctx.pay("transfer", rows, amount)
        h = ctx.h
        if self._grace is None and self._single is None:  # all of them paid as households
            paid, amount_paid = rows, amount
        else:
            _, hit = _found(rows, self._assessed[0])
            paid, amount_paid = rows[hit], amount[hit]
        h["dibao_year"][paid] = ctx.year  # paid as a household: its exit record starts again
        h["dibao_paid"][paid] = amount_paid
        h["dibao_grace"][paid] = 0
        if self._grace is not None:
            _, hit = _found(rows, self._grace[0])
            exiting = rows[hit]
            h["dibao_year"][exiting] = ctx.year
            h["dibao_grace"][exiting] += 1


def _found(rows: np.ndarray, kept: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of `rows`, its position in `kept` (ascending) and whether it is there."""
    if not len(kept):
        return np.zeros(len(rows), dtype=np.int64), np.zeros(len(rows), dtype=bool)
    at = np.minimum(np.searchsorted(kept, rows), len(kept) - 1)
    return at, kept.take(at) == rows


class TemporaryAssistance(Instrument):
    """临时救助: a payment for this year to households whose income, net of this year's medical
    out-of-pocket and schooling costs (what is left of them after the instruments listed before
    it), falls under the 低保 standard: the gap to the standard, no more than the costs
    themselves (the standing shortfall is 低保's), and at most `months` of the monthly standard
    per member. Income is counted as the means test does, before costs (`_gross_per_capita`)."""

    name, family = "temporary_assistance", "assistance"
    description = ("临时救助: a one-year payment to households under the 低保 standard net of this year's "
                   "medical or schooling costs, up to a stated number of months of the standard")
    targets = "all"

    def _amount(self, ctx, rules, rows):
        h = ctx.h
        expense = h["oop"].take(rows) + h["school_cost"].take(rows)
        size = np.maximum(h["size"].take(rows), 1)
        net = _gross_per_capita(ctx, rows) - expense / size
        gap = np.maximum(rules["standard"] - net, 0.0) * size
        return np.minimum(np.minimum(gap, expense), rules["months"] / 12.0 * rules["standard"] * size)

    def eligible(self, ctx, rules, rows):
        h = ctx.h
        return ctx.among(rows, (h["oop"] + h["school_cost"]) > 0)  # a shock this year

    def cost(self, ctx, rules, rows):
        return self._amount(ctx, rules, rows)

    def serve(self, ctx, rules, rows, amount):
        ctx.pay("transfer", rows, amount)


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
        ctx.pay("transfer", rows, amount)


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
        return rules["amount"] * kept_for(rows, *self._aged)

    def serve(self, ctx, rules, rows, amount):
        ctx.pay("transfer", rows, amount)


class MonitoringAssistance(Instrument):
    """Help for monitoring objects (found at the end of earlier years, risk not yet
    eliminated), within the office's caseload: a grant closing the gap to the monitoring
    threshold, up to a maximum."""

    name, family = "monitoring_assistance", "monitoring"
    description = "防止返贫监测: grants to households flagged by the monitoring rule, within a caseload"
    targets = "monitored"

    def _gap(self, ctx, rows):
        """The gap to the threshold as the monitoring office assesses income (`gap_as_assessed`)."""
        return gap_as_assessed(ctx, rows, monitoring_threshold(ctx.p))

    def eligible(self, ctx, rules, rows):
        return rows[(self._gap(ctx, rows) > 0) & (ctx.h["status"].take(rows) != S.POOR)]

    def capacity(self, ctx, rules):
        return rules["capacity_per_10k_households"] * ctx.households / 1e4

    def cost(self, ctx, rules, rows):
        return np.minimum(self._gap(ctx, rows), rules["max_amount"])

    def serve(self, ctx, rules, rows, amount):
        ctx.pay("transfer", rows, amount)


class Backstop(Instrument):
    """兜底保障 by the county's exit plan (`register.exit_plan`): when fewer registered households
    are ready to exit than the plan asks for this year, the shortfall is made up from those
    still under the exit line, no labour first, then the lowest income: each is paid the gap
    to the line as the exit assessment sees it. At the deadline the plan asks for every
    household, so every one still registered is brought to the line, the way the campaign
    cleared its registers (社会保障兜底一批, 000_2488b6b2437a55b6.txt; 到2020年...全部脱贫,
    001_17ea3b8225d8e0ca.txt)."""

    name, family = "backstop", "assistance"
    description = "兜底保障 by the exit plan: the gap to the exit line for registered households the plan exits this year"
    targets = "poor"
    priority = ("no_labour", "lowest_income")

    def capacity(self, ctx, rules):
        registered = ctx.target_rows("poor")
        if not len(registered):  # no register yet, or nobody left on it
            return 0.0
        line = poverty_line(ctx.p) * ctx.p["exit.income_ratio"]
        ready = (gap_as_assessed(ctx, registered, line) <= 0) & guarantees_met(ctx.state, ctx.p).take(registered)
        w = ctx.weights.take(registered)
        return max(ctx.p["register.exit_plan"] * float(w.sum()) - float(w[ready].sum()), 0.0)

    def _gap(self, ctx, rules, rows):
        line = poverty_line(ctx.p) * ctx.p["exit.income_ratio"] * (1.0 + rules["margin"])
        return gap_as_assessed(ctx, rows, line)

    def eligible(self, ctx, rules, rows):
        return rows[self._gap(ctx, rules, rows) > 0]

    def cost(self, ctx, rules, rows):
        return self._gap(ctx, rules, rows)

    def serve(self, ctx, rules, rows, amount):
        ctx.pay("transfer", rows, amount)
