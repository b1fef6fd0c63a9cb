"""The engine's yearly household dynamics written as idiomatic Mesa 3 agents, as the
reference point for the engine benchmark (`benchmarks/engine.py`).

One `Household` agent per household holds its members as small `Member` records; the
`PovertyModel` draws the year's village droughts and livestock price, then calls
`agents.shuffle_do("step")`, and a `DataCollector` records the year's aggregates. Each
household steps through the same processes, in the same order and with the same parameter
values (read from the engine's `Params`), as the engine's yearly steps other than the
policy instruments (`fupin_sim.simulation.STEPS`):

1. demography — ageing, Gompertz deaths, births (one a year at most, women 20–39),
   school entry at 15/18, labour capacity from age, chronic illness and disability;
2. income     — permanent–transitory wage and operating income (mean-one lognormal
   shocks), village drought and pastoral price shocks, property and transfer income
   with the residents' pension for members 60+;
3. shocks     — admissions by age, chronic and register status (scaled, as in the engine,
   so the group means are the survey rates), lognormal costs by severity through the
   reimbursement chain, chronic outpatient costs (as the engine version in use defines
   both: see `PovertyModel.out_of_pocket`), schooling costs, chronic and
   disability onset;
4. status     — the income test net of out-of-pocket costs, poor → exited → relapsed
   and non-poor → newly poor.

There are no policy instruments (assistance, subsidies, jobs, loans...): the engine's
like-for-like scenario is the bundled `no_policy`, which the benchmark compares it with.

Simplified relative to the engine (none of these makes the Mesa version do more work):
draws come from Mesa's `self.random` (Python's Mersenne Twister), not the engine's
counter-based common random numbers, so the two agree in distribution, not draw by draw;
no compulsory-school dropout (so the school guarantee always holds) and no dropout draw;
labour capacity is recomputed from the rule each year rather than kept incrementally;
no monitoring flag, no cause of poverty for new registrations, no household weights
(counts are of simulated households); a household whose members have all died is
removed from the model (the engine keeps it as an empty row).
"""
from __future__ import annotations

import bisect
import math

import mesa
import numpy as np

from fupin_sim.population import schema as S
from fupin_sim.population.rules import MAX_AGE, poverty_line, step_lookup

NONPOOR, POOR, EXITED = S.NONPOOR, S.POOR, S.EXITED
PASTORAL = S.CODE["region_type"]["pastoral"]
URBAN_FRINGE = S.CODE["region_type"]["urban_fringe"]


class Member:
    """One person of a household (plain attributes; `__slots__` keeps them small)."""

    __slots__ = ("age", "female", "chronic", "disabled", "student")

    def __init__(self, age: int, female: bool, chronic: bool, disabled: bool, student: bool):
        self.age = age
        self.female = female
        self.chronic = chronic
        self.disabled = disabled
        self.student = student


class Household(mesa.Agent):
    """A household: its members, permanent income levels and register status."""

    def __init__(self, model: "PovertyModel", members: list[Member], village: int, region_type: int, status: int,
                 wage_level: float, operating_level: float, income_property: float, transfer_base: float,
                 insured: bool, housing_safe: bool):
        super().__init__(model)
        self.members = members
        self.village = village
        self.region_type = region_type
        self.status = status
        self.wage_level = wage_level
        self.operating_level = operating_level
        self.income_property = income_property
        self.transfer_base = transfer_base
        self.insured = insured
        self.housing_safe = housing_safe
        self.relapses = 0
        self.income = 0.0

    def step(self) -> None:
        m = self.model
        rand = m.random.random
        gauss = m.random.gauss

        # 1. demography: age, die, give birth
        survivors = []
        women = 0
        for person in self.members:
            age = person.age + 1 if person.age < MAX_AGE else MAX_AGE
            person.age = age
            if rand() < m.mortality[age]:
                m.deaths += 1
                continue
            survivors.append(person)
            if person.female and m.fertile_from <= age <= m.fertile_to:
                women += 1
        if women and rand() < 1.0 - m.no_birth ** women:
            survivors.append(Member(0, rand() < m.girl_share, False, False, False))
            m.births += 1
        self.members = survivors
        if not survivors:
            self.remove()
            return

        # 1 (cont.) school entry and labour units, and 3. each member's health, in one pass over members
        registered = self.status != NONPOOR
        admission = m.admission[registered]
        labour = school_cost = oop = 0.0
        pensioners = 0
        for person in survivors:
            age = person.age
            if age == m.high_age:
                person.student = rand() < m.high_entry
            elif age == m.uni_age and person.student:
                person.student = rand() < m.uni_entry
            elif age == m.done_age:
                person.student = False
            if person.student:
                school_cost += m.student_cost[age]
            else:
                school_cost += m.pupil_cost[age]
            if age >= m.pension_age:
                pensioners += 1
            if not (age < m.work_from or age >= m.work_to or person.disabled or person.student):
                labour += m.partial if (person.chronic or age >= m.partial_from) else 1.0

            chronic = person.chronic
            if rand() < admission[chronic][age]:
                oop += m.out_of_pocket(self._admission_cost(rand, gauss), self.insured, registered)
            if chronic:
                oop += m.chronic_cost * (math.exp(m.chronic_cost_sd * gauss(0.0, 1.0) - m.half_var_chronic)
                                         if m.chronic_cost_sd else 1.0)
            elif rand() < m.chronic_onset[age]:
                person.chronic = True
            if not person.disabled and rand() < m.disability_onset[age]:
                person.disabled = True

        # 2. income by source
        self.wage_level *= m.wage_trend * math.exp(m.sd_p * gauss(0.0, 1.0) - m.half_var_p)
        wage = labour * self.wage_level * math.exp(m.sd_t * gauss(0.0, 1.0) - m.half_var_t)
        self.operating_level *= m.operating_trend * math.exp(m.sd_p * gauss(0.0, 1.0) - m.half_var_p)
        covariate = 1.0
        if self.region_type != URBAN_FRINGE:
            covariate -= m.drought_loss[self.village]
        if self.region_type == PASTORAL:
            covariate *= m.price_factor
        operating = (self.operating_level * (1.0 if labour > 0 else m.operating_without_labour) * covariate
                     * math.exp(m.sd_t * gauss(0.0, 1.0) - m.half_var_t))
        self.income_property *= m.property_trend
        self.transfer_base *= m.transfer_trend
        transfer = self.transfer_base + m.pension_year * pensioners
        total = wage + operating + self.income_property + transfer
        self.income = total

        # 4. status: the income test net of out-of-pocket medical and schooling costs
        size = len(survivors)
        y = (total - m.deduct * (oop + school_cost)) / size
        below = y < m.line
        guaranteed = self.insured and self.housing_safe
        if self.status == POOR:
            if y >= m.exit_line and guaranteed:
                self.status = EXITED
                m.exits += 1
        elif self.status == EXITED:
            if below or not guaranteed:
                self.status = POOR
                self.relapses += 1
                m.relapses += 1
        elif below:
            self.status = POOR
            m.new_poor += 1
        if self.status == POOR:
            m.poor += 1
        m.income_sum += total
        m.persons += size

    def _admission_cost(self, rand, gauss) -> float:
        """Cost of one admission: a severity class, then a mean-one lognormal spread."""
        m = self.model
        severity = min(bisect.bisect_right(m.severity_cdf, rand()), len(m.severity_cost) - 1)
        return m.severity_cost[severity] * math.exp(m.cost_sd * gauss(0.0, 1.0) - m.half_var_cost)


class PovertyModel(mesa.Model):
    """All households of a population, stepped one year at a time."""

    def __init__(self, population, params, *, seed: int = 1):
        super().__init__(seed=seed)
        self.params = params
        self.year = int(population.year)
        p0 = params.at(self.year)
        self._constants(p0)
        self.livestock_price = 0.0
        self.n_villages = int(population.households["village"].max(initial=0)) + 1
        self._add_households(population, p0)
        self.admission = self._admission_tables(p0)
        self.datacollector = mesa.DataCollector(model_reporters={
            "year": "year", "poor": "poor", "exits": "exits", "relapses": "relapses", "new_poor": "new_poor",
            "deaths": "deaths", "births": "births", "households": "households",
            "mean_income_per_capita": "mean_income_per_capita"})

    # --- set-up -------------------------------------------------------------------------
    def _constants(self, p) -> None:
        """Year-independent parameters as plain floats and per-age lists (one index each)."""
        ages = np.arange(MAX_AGE + 1)
        a, b = p["demography.mortality_gompertz"]
        q = np.minimum(a * np.exp(b * ages), 1.0)
        q = np.where(ages < 5, np.maximum(q, p["demography.child_mortality"]), q)
        self.mortality = np.where(ages >= p["demography.max_age"], 1.0, q).tolist()
        self.fertile_from, self.fertile_to = p["demography.fertility_ages"]
        self.no_birth = 1.0 - p["demography.fertility"]
        self.girl_share = 0.485  # the engine's share of births that are girls

        pre, comp, high, uni, done = p["education.stage_ages"]
        self.high_age, self.uni_age, self.done_age = high, uni, done
        self.high_entry, self.uni_entry = p["education.high_school_entry"], p["education.university_entry"]
        c_pre, c_comp, c_high, c_uni = p["education.cost"]
        self.pupil_cost = [c_pre if pre <= a < comp else c_comp if comp <= a < high else 0.0 for a in ages]
        self.student_cost = [c_high if high <= a < uni else c_uni if uni <= a < done else 0.0 for a in ages]
        self.work_from, self.partial_from, self.work_to = p["labour.ages"]
        self.partial = p["labour.partial_weight"]
        self.pension_age = p["income.pension_age"]

        self.sd_p, self.sd_t = p["income.sd_permanent"], p["income.sd_transitory"]
        self.half_var_p, self.half_var_t = 0.5 * self.sd_p ** 2, 0.5 * self.sd_t ** 2
        self.wage_trend = 1.0 + p["income.wage_growth"]
        self.operating_trend = 1.0 + p["income.operating_growth"]
        self.property_trend = 1.0 + p["income.property_growth"]
        self.transfer_trend = 1.0 + p["income.transfer_growth"]
        self.operating_without_labour = p["income.operating_without_labour"]

        self.severity_cdf = np.cumsum(p["health.severity_shares"]).tolist()
        self.severity_cost = [float(c) for c in p["health.severity_cost"]]
        self.cost_sd = p["health.cost_sd"]
        self.half_var_cost = 0.5 * self.cost_sd ** 2
        self.chronic_cost = p["health.chronic_cost"]
        # engine versions differ here: older ones give chronic care one fixed cost and apply the
        # registered-poor layers of the chain in the shocks step; newer ones spread the cost
        # (lognormal) and leave those layers to the health instruments
        self.chronic_cost_sd = p.get("health.chronic_cost_sd", 0.0)
        self.half_var_chronic = 0.5 * self.chronic_cost_sd ** 2
        self.poor_layers = "health.assistance_rate" in p
        self.chronic_onset = step_lookup(p["health.chronic_onset"], ages).tolist()
        self.disability_onset = step_lookup(p["disability.onset"], ages).tolist()
        # the survey measure's deduction (older engine versions had it in the exit test)
        self.deduct = p["poverty.deduct_expenditure"] if "poverty.deduct_expenditure" in p else p["exit.deduct_expenditure"]

    def _add_households(self, population, p) -> None:
        """One agent per household, from the population's column tables (grouped once with numpy)."""
        hh, pp = population.households, population.persons
        row = population.household_index()
        order = np.argsort(row, kind="stable")
        bounds = np.searchsorted(row[order], np.arange(len(hh) + 1))
        ages, sexes = pp["age"][order].tolist(), pp["sex"][order].tolist()
        chronic, disabled = pp["chronic"][order].tolist(), pp["disabled"][order].tolist()
        student = (pp["school"][order] >= S.HIGH).tolist()
        units = np.array([0.0, p["labour.partial_weight"], 1.0])
        labour = np.bincount(row, weights=units[pp["labour"]], minlength=len(hh))
        pensioners = np.bincount(row, weights=pp["age"] >= p["income.pension_age"], minlength=len(hh))

        # permanent levels implied by the snapshot's incomes, as the engine's State does
        wage = hh["income_wage"]
        with np.errstate(divide="ignore", invalid="ignore"):
            level = wage / labour
        earning = (labour > 0) & (wage > 0)
        typical = float(np.median(level[earning])) if earning.any() else 0.0
        wage_level = np.where(labour > 0, level, typical)
        operating_level = hh["income_operating"] / np.where(labour > 0, 1.0, p["income.operating_without_labour"])
        transfer_base = np.maximum(hh["income_transfer"] - 12 * p["income.pension_monthly"] * pensioners, 0.0)

        columns = zip(bounds[:-1].tolist(), bounds[1:].tolist(), hh["village"].tolist(), hh["region_type"].tolist(),
                      hh["status"].tolist(), wage_level.tolist(), operating_level.tolist(),
                      hh["income_property"].tolist(), transfer_base.tolist(), hh["insured"].tolist(),
                      hh["housing_safe"].tolist())
        for lo, hi, village, region, status, wl, ol, prop, tb, insured, safe in columns:
            members = [Member(ages[i], sexes[i] == 1, chronic[i], disabled[i], student[i]) for i in range(lo, hi)]
            Household(self, members, village, region, status, wl, ol, prop, tb, insured, safe)

    def _admission_tables(self, p) -> dict[bool, list[list[float]]]:
        """Admission probability [registered][chronic][age], scaled (as the engine does) so that
        the mean over the starting population is the survey rate of each register group."""
        by_age = step_lookup(p["health.age_risk"], np.arange(MAX_AGE + 1))
        risk = [by_age, by_age * p["health.chronic_risk"]]
        totals = {False: [0.0, 0], True: [0.0, 0]}
        for household in self.agents:
            group = totals[household.status != NONPOOR]
            for person in household.members:
                group[0] += risk[person.chronic][person.age]
                group[1] += 1
        rates = dict(zip((False, True), p["health.admission_rate"]))
        tables = {}
        for registered, (risk_sum, n) in totals.items():
            scale = rates[registered] / max(risk_sum / n, 1e-12) if n else rates[registered]
            tables[registered] = [np.minimum(r * scale, 1.0).tolist() for r in risk]
        return tables

    # --- the year -------------------------------------------------------------------------
    def step(self) -> None:
        self.year += 1
        self.p = p = self.params.at(self.year)
        self.line = poverty_line(p)
        self.exit_line = self.line * p["exit.income_ratio"]
        self.pension_year = 12.0 * p["income.pension_monthly"]
        self._covariate_shocks(p)
        self.poor = self.exits = self.relapses = self.new_poor = self.deaths = self.births = self.persons = 0
        self.income_sum = 0.0
        self.agents.shuffle_do("step")
        self.households = len(self.agents)
        self.mean_income_per_capita = self.income_sum / self.persons if self.persons else 0.0
        self.datacollector.collect(self)

    def _covariate_shocks(self, p) -> None:
        """This year's drought loss per village (a regional drought strikes all villages at once)
        and the regional livestock price (AR(1) in logs)."""
        rand = self.random.random
        prob, share = p["shocks.drought_probability"], p["shocks.drought_regional_share"]
        loss = p["shocks.drought_loss"]
        regional = rand() < prob * share
        village_prob = prob * (1 - share) / max(1 - prob * share, 1e-12)
        self.drought_loss = [min(2.0 * loss * rand(), 1.0) if (rand() < village_prob or regional) else 0.0
                             for _ in range(self.n_villages)]
        self.livestock_price = (p["shocks.livestock_price_rho"] * self.livestock_price
                                + p["shocks.livestock_price_sd"] * self.random.gauss(0.0, 1.0))
        self.price_factor = math.exp(self.livestock_price)

    def out_of_pocket(self, cost: float, insured: bool, poor: bool) -> float:
        """The patient's share of one admission after the reimbursement chain: basic and
        critical-illness insurance (scalar form of the engine's shocks step), then, where the
        parameters define them, medical assistance and the out-of-pocket cap for registered poor."""
        p = self.p
        factor = p["health.poor_threshold_factor"] if poor else 1.0
        left = cost
        if insured:
            left -= min(p["health.basic_rate"] * max(cost - p["health.basic_deductible"] * factor, 0.0),
                        p["health.basic_ceiling"])
            left -= p["health.critical_rate"] * max(left - p["health.critical_threshold"] * factor, 0.0)
        if not poor or not self.poor_layers:
            return left
        left -= p["health.assistance_rate"] * left
        return min(left, p["health.poor_cap_share"] * cost, p["health.poor_cap_amount"])


def run(population, params, years: int, seed: int = 1):
    """Build the model from `population` and step it `years` times; return the yearly frame."""
    model = PovertyModel(population, params, seed=seed)
    for _ in range(years):
        model.step()
    return model.datacollector.get_model_vars_dataframe()
