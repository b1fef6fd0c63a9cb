"""Each instrument against what its sources describe: who gets it, what it costs, what it
changes. One interventions step on a real synthetic population, unlimited money, one
instrument at a time (so the effect is that instrument's alone)."""
import numpy as np
import pytest

import fupin_sim as fs
from fupin_sim.interventions import instrument_defaults, parse
from fupin_sim.population import schema as S
from fupin_sim.population.state import State
from fupin_sim.simulation import CARRIED
from fupin_sim.processes import demography, income, shocks
from fupin_sim.rng import RandomStreams

YEAR = 2018


def one_year(instrument, rules=None, targets=None, n=20_000, extra=None, years=None):
    """State after demography, income and shocks of YEAR (before), and after the interventions step."""
    sc = fs.load_scenario("no_policy")
    entry = {"rules": rules or {}}
    if targets:
        entry["targets"] = targets
    data = {"interventions": {instrument: entry, **(extra or {})},
            "budgets": {"central_special": {"amounts": "unlimited"},
                        "bank_credit": {"instruments": [instrument], "amounts": "unlimited"}}}
    if instrument != "microloan":
        del data["budgets"]["bank_credit"]
    programme = parse(data, years or (2016, 2025), None).fresh()
    pop = fs.generate(sc.params, n, seed=4, year=YEAR - 1)
    state = State(pop, sc.params, CARRIED)
    programme.prepare(state)
    p, rs = sc.params.at(YEAR), RandomStreams(4)
    for process in (demography.step, income.step, shocks.step):
        process(state, p, rs, YEAR)
    before = {k: v.copy() for k, v in state.h.items()}
    out = programme.step(state, p, rs, YEAR)
    return before, state, out, programme



def delta(before, state, column):
    return state.h[column] - before[column]


def test_dibao_tops_up_to_the_standard_for_those_it_reaches():
    before, state, out, prog = one_year("dibao")
    standard = 5547  # 2018, 000_2488b6b2437a55b6.txt
    rules = instrument_defaults()["dibao"].at(2018)
    imputed = rules["imputed_share"] * standard  # earnings counted per labour unit by the means test
    gained = delta(before, state, "income_transfer")
    served = gained > 0
    gross = sum(before[f"income_{s}"] for s in S.INCOME_SOURCES) / np.maximum(before["size"], 1)
    assessed = gross + np.maximum(imputed * before["labour_units"] - before["income_wage"], 0) / np.maximum(
        before["size"], 1)
    assert served.any()
    after = assessed[served] + gained[served] / state.h["size"][served]
    assert (after >= standard - 1e-6).all()  # everyone reached gets at least to the standard, as assessed
    eligible = (assessed < standard) & (state.h["size"] > 0)
    # registered (or exited, support kept) households that cannot live by work: none missed since the
    # 2016 guideline linking 低保 and poverty alleviation (应保尽保); everyone else at the exclusion error
    linked = (before["status"] != S.NONPOOR) & (before["labour_units"] < 1)
    assert served[eligible & ~linked].mean() == pytest.approx(1 - rules["exclusion_error"], abs=0.05)
    assert served[eligible & linked].mean() == pytest.approx(1 - rules["exclusion_error_registered"], abs=0.02)
    ledger = prog.ledger.frame()
    assert ledger["amount"].sum() == pytest.approx(float(gained @ state.h["weight"]))


def test_dibao_means_test_counts_earnings_of_members_who_can_work():
    """000: the test weighs members by labour capacity (劳动力系数): a household whose members
    can work is assessed as earning, so fewer of them are topped up, and by less."""
    before, state, _, _ = one_year("dibao", rules={"exclusion_error": 0.0, "inclusion_error": 0.0})
    _, state0, _, _ = one_year("dibao", rules={"exclusion_error": 0.0, "inclusion_error": 0.0,
                                               "imputed_share": 0})
    gained = delta(before, state, "income_transfer")
    gained0 = delta(before, state0, "income_transfer")
    workers = before["labour_units"] >= 1
    assert (gained <= gained0 + 1e-6).all()
    assert (gained[~workers & (before["income_wage"] == 0)] == pytest.approx(gained0[~workers & (before["income_wage"] == 0)]))
    # the fitted test counts 68% of the standard per labour unit: far fewer workers' households reached
    assert (gained[workers] > 0).mean() < 0.7 * (gained0[workers] > 0).mean()


def test_labour_transfer_places_at_most_its_yearly_placements():
    """000: 19,499 registered poor people placed in 2018 of 23,370 able and willing: money alone
    does not place workers."""
    before, state, out, _ = one_year("labour_transfer")
    households = float(state.h["weight"][state.h["size"] > 0].sum())
    assert 0 < out["served_labour_transfer"] <= 48 * households / 1e4 + 1e-6


def test_a_migrant_sends_money_home_in_place_of_a_home_wage():
    """A placed worker's remittance replaces one full worker's share of the household's wage
    income at home, not added on top of it."""
    sc = fs.load_scenario("no_policy")
    data = {"interventions": {"labour_transfer": {"rules": {"retention": 1.0}}},
            "budgets": {"central_special": {"amounts": "unlimited"}}}
    programme = parse(data, (2016, 2025), None).fresh()
    state = State(fs.generate(sc.params, 5000, seed=4, year=YEAR - 1), sc.params, CARRIED)
    programme.prepare(state)
    p, rs = sc.params.at(YEAR), RandomStreams(4)
    for process in (demography.step, income.step, shocks.step):
        process(state, p, rs, YEAR)
    away = np.flatnonzero((state.h["labour_units"] >= 1) & (state.h["size"] > 0))[:300]
    state.h["migrant"][away] = True  # placed in an earlier year
    before = state.h["income_wage"].copy()
    programme.step(state, p, rs, YEAR)
    remittance = instrument_defaults()["labour_transfer"].at(YEAR)["annual_remittance"]
    home = before[away] / state.h["labour_units"][away]
    assert state.h["income_wage"][away] == pytest.approx(before[away] + remittance - home, rel=1e-5, abs=0.01)
    assert (home > 0).any()


def test_health_assistance_caps_out_of_pocket_costs_of_registered_poor():
    before, state, out, _ = one_year("health_assistance")
    adm = state.values["admissions"]
    registered = (state.h["status"] != S.NONPOOR)[adm["hh"]]
    assert registered.any()
    cap = np.minimum(0.1 * adm["cost"], 5000)  # 兴安盟: 10% of the cost, 5000 a year
    assert (adm["left"][registered] <= cap[registered] + 1e-6).all()
    relief = -delta(before, state, "oop")
    assert relief.min() >= -1e-9 and relief.sum() > 0
    assert state.h["insured"][state.h["status"] == S.POOR].all()


def test_chronic_assistance_pays_half_above_3000_at_most_15000():
    before, state, _, _ = one_year("chronic_assistance")
    cc = state.values["chronic_costs"]
    each = np.minimum(0.5 * np.maximum(cc["cost"] - 3000, 0), 15000)
    registered = (state.h["status"] != S.NONPOOR)[cc["hh"]]
    expected = np.bincount(cc["hh"][registered], weights=each[registered], minlength=state.n)
    assert np.allclose(-delta(before, state, "oop"), expected)


def test_industry_menu_builds_operating_income_that_fades():
    _, state, out, prog = one_year("industry_menu")
    boost = state.h["boost_industry"]
    served = boost > 0
    assert served.any() and (state.h["labour_units"][served] >= 1).all()
    amount = 1600 * np.maximum(np.floor(state.h["labour_units"][served]), 1)  # 1600 yuan per able-bodied person (003)
    assert np.allclose(boost[served], 0.3 * amount)
    ctx_rules = prog.items[0].rules.at(YEAR + 1)
    before_carry = state.h["income_operating"].copy()
    prog.items[0].instrument.carry(type("C", (), {"h": state.h})(), ctx_rules)
    assert np.allclose(state.h["income_operating"][served] - before_carry[served], 0.3 * amount)
    assert np.allclose(state.h["boost_industry"][served], 0.3 * amount * 0.8)  # fades by 20%


def test_microloans_follow_take_up_and_run_three_years():
    _, state, out, prog = one_year("microloan")
    h = state.h
    borrowers = h["loan_balance"] > 0
    eligible = (h["status"] == S.POOR) & (h["labour_units"] >= 1)
    assert borrowers[eligible].mean() == pytest.approx(0.28, abs=0.03)  # take-up (PUBLIC_FACTS)
    assert (h["loan_balance"][borrowers] == 40000).all() and (h["debt"][borrowers] >= 40000).all()
    ledger = prog.ledger.frame()
    assert ledger.loc[ledger["category"] == "loan", "source"].eq("bank_credit").all()
    assert out["loans_issued"] == pytest.approx(40000 * float(h["weight"] @ borrowers))


def test_relocation_moves_households_out_of_harsh_areas():
    before, state, _, prog = one_year("relocation")
    moved = state.h["follow_up_years"] > 0
    assert moved.any() and before["harsh_area"][moved].all()
    h = state.h
    assert (h["region_type"][moved] == S.CODE["region_type"]["urban_fringe"]).all()
    assert h["housing_safe"][moved].all()
    assert np.allclose(h["wage_level"][moved], 1.5 * before["wage_level"][moved])
    assert np.allclose(h["land_rent"][moved], 100 * before["land_mu"][moved])  # 100 yuan per mu (化德)
    cost = prog.ledger.frame()["amount"].sum()
    assert cost == pytest.approx(62500 * float((before["size"] * before["weight"])[moved].sum()))


def test_housing_renovation_makes_houses_safe_and_adds_own_share_as_debt():
    before, state, _, _ = one_year("housing_renovation")
    fixed = ~before["housing_safe"] & state.h["housing_safe"]
    assert fixed.any()
    assert np.allclose(delta(before, state, "debt")[fixed], 10000)
    registered_unsafe = ~before["housing_safe"] & (before["status"] == S.POOR) & (before["size"] > 0)
    assert fixed[registered_unsafe].all()  # money unlimited, no capacity: every registered household with members


def test_posts_are_limited_in_number_and_pay_their_wage():
    before, state, out, _ = one_year("forest_ranger")
    holders = state.h["post_forest_ranger"]
    households = float(state.h["weight"] @ (state.h["size"] > 0))
    assert out["served_forest_ranger"] <= 50 * households / 1e4 + 1e-6
    assert out["served_forest_ranger"] >= 50 * households / 1e4 - state.h["weight"].max()
    assert np.allclose(delta(before, state, "income_wage")[holders], 10000)  # 000: 10,000 yuan a year


def test_solar_pays_households_without_labour():
    _, state, _, prog = one_year("solar")
    paying = state.h["solar_years_left"] == 20
    assert paying.any() and (state.h["labour_units"][paying] == 0).all()


def test_education_subsidy_gives_the_university_grant_every_year_of_study():
    """000: 10,000 yuan a year for each registered-poor student entering university from 2017
    (in 2018: those aged 18 and 19); earlier entrants get no grant (university has no stage amount)."""
    before, state, _, _ = one_year("education_subsidy")
    pp = state.p
    university = pp["school"] == S.UNIVERSITY
    registered = (state.h["status"] != S.NONPOOR)[pp["hh"]]
    gained = delta(before, state, "income_transfer")
    students = np.bincount(pp["hh"], weights=university & registered & (pp["age"] <= 19), minlength=state.n)
    earlier = np.bincount(pp["hh"], weights=university & (pp["age"] > 19), minlength=state.n)
    others = np.bincount(pp["hh"], weights=(pp["school"] > 0) & ~university, minlength=state.n)
    rows = np.flatnonzero((students == 1) & (earlier == 0) & (others == 0))  # one grant holder, no other student
    assert len(rows) and gained[rows] == pytest.approx(10000, abs=0.01)  # float32 incomes
    second_year = np.flatnonzero(np.bincount(pp["hh"], weights=university & registered & (pp["age"] == 19),
                                             minlength=state.n) > 0)
    assert len(second_year) and (gained[second_year] >= 10000 - 0.01).all()  # the grant is paid every year
    late = np.flatnonzero((earlier > 0) & (students == 0) & (others == 0))
    assert len(late) and (gained[late] == 0).all()


def test_ecological_compensation_pays_per_mu_of_grassland():
    before, state, _, _ = one_year("ecological_compensation")
    herders = (before["grassland_mu"] > 0) & (before["size"] > 0)
    per_mu = 0.4 * 7.5 + 0.6 * 2.5
    assert np.allclose(delta(before, state, "income_transfer")[herders], before["grassland_mu"][herders] * per_mu)


def test_monitoring_assistance_stays_within_its_caseload():
    # flag households first: monitoring assistance serves last year's flags
    before, state, out, _ = one_year("monitoring_assistance", rules={"capacity_per_10k_households": 30})
    households = float(state.h["weight"] @ (state.h["size"] > 0))
    assert out["served_monitoring_assistance"] <= 30 * households / 1e4 + 1e-6


def test_policy_after_exit_keeps_support_for_exited_households():
    kept = fs.run("consolidation", households=4000, seed=3).summary
    withdrawn = fs.run("withdrawn", households=4000, seed=3).summary
    later = kept["year"] >= 2021
    # without the support, more exited people fall under the line and more are flagged for monitoring
    for metric in ("income_poor_exited_persons", "new_monitored"):
        assert withdrawn.loc[later, metric].sum() > kept.loc[later, metric].sum()
    assert withdrawn.loc[later, "relapses"].sum() >= kept.loc[later, "relapses"].sum()
    assert withdrawn.loc[later, "spending"].sum() < kept.loc[later, "spending"].sum()


def test_policy_lowers_poverty_against_the_counterfactual():
    policy = fs.run("consolidation", households=4000, seed=3).summary
    none = fs.run("no_policy", households=4000, seed=3).summary
    assert (policy["fgt0"] < none["fgt0"]).all()
    assert policy["registered_poor"].iloc[-1] < none["registered_poor"].iloc[-1]


def test_the_instrument_reference_is_current():
    from pathlib import Path

    from fupin_sim.interventions import describe

    doc = Path(__file__).resolve().parents[1] / "docs" / "instruments.md"
    assert doc.read_text(encoding="utf-8") == describe() + "\n", \
        "regenerate it: python -m fupin_sim.interventions > docs/instruments.md"


def test_programme_income_streams_do_not_compound():
    """A solar share pays 3000 a year: the same 3000 every year, never carried into the
    household's own property income (it once compounded)."""
    from fupin_sim.scenario import Scenario
    from fupin_sim.simulation import Simulation

    data = {"name": "s", "population": {"households": 3000}, "years": [2016, 2020], "seed": 1,
            "interventions": {"solar": {}}, "budgets": {"central_special": {"amounts": "unlimited"}}}
    sim = Simulation(Scenario.from_data(data, None), seed=1)
    sim.step()
    h = sim.state.h
    paid = np.flatnonzero(h["solar_years_left"] > 0)
    for _ in range(3):
        sim.step()
        assert np.allclose(h["income_property"][paid] - h["property_base"][paid], 3000)
        assert np.allclose(h["programme_property"][paid], 0)  # a carried stream, not a payment of the year


def test_member_counts_packed_in_one_pass_equal_counts_one_by_one():
    from fupin_sim.interventions.base import person_count, person_counts
    from fupin_sim.params import Params
    from fupin_sim.population.synthetic import generate

    state = State(generate(Params.defaults(), 3000, seed=2, year=2018), Params.defaults(), CARRIED)
    rng = np.random.default_rng(0)
    masks = [rng.random(state.persons) < q for q in (0.9, 0.5, 0.2, 0.05)]
    for k in (2, 3, 4):
        packed = person_counts(state, masks[:k])
        assert all(np.array_equal(c, person_count(state, m)) for c, m in zip(packed, masks[:k]))
        assert all(c.dtype == np.int16 for c in packed)
    state.p["hh"][:300] = 0  # a household of 300 members would carry into the next byte: counted one by one
    state.h["size"][0] += 300
    assert all(np.array_equal(c, person_count(state, m)) for c, m in zip(person_counts(state, masks), masks))


@pytest.mark.parametrize("scenario", ["baseline", "consolidation"])
def test_programme_income_is_what_the_years_instruments_paid(scenario, monkeypatch):
    """`programme_<source>` (kept as instruments pay, `Context.pay`) equals each source's
    income at the end of the interventions step less its income once earlier years' streams
    were carried: every instrument that pays income this year pays it through `pay`."""
    from fupin_sim.interventions.base import Context
    from fupin_sim.simulation import Simulation

    sim = Simulation(fs.load_scenario(scenario).edit(households=3000), seed=2)
    carried = {}
    changed = Context.changed

    def note_carried(self, rows=None):  # called with no rows right after the carried streams
        if rows is None:
            carried.update({s: self.h[f"income_{s}"].copy() for s in S.INCOME_SOURCES})
        changed(self, rows)

    monkeypatch.setattr(Context, "changed", note_carried)
    for _ in range(3):
        sim.step()
        h = sim.state.h
        for s in S.INCOME_SOURCES:
            np.testing.assert_allclose(h[f"programme_{s}"], h[f"income_{s}"] - carried[s], rtol=0, atol=1e-6)
        assert h["programme_transfer"].sum() > 0 and h["programme_wage"].sum() > 0


def test_a_register_written_mid_run_does_not_count_programme_income_twice(tmp_path):
    """Run on from a register written by a run: this year's instrument payments are not
    taken as the household's own income (transfers), while streams from earlier support
    (solar, asset shares, land rent) stay part of it."""
    from fupin_sim.population.state import State
    from fupin_sim.simulation import Simulation

    sc = fs.load_scenario("consolidation").edit(households=2000, years=(2016, 2022))
    sim = Simulation(sc, seed=2)
    for _ in range(5):
        sim.step()
    back = fs.read_register(fs.write_register(sim.state.to_population(), tmp_path / "reg"))
    restarted = State(back, sc.params, CARRIED)
    live = sim.state.h
    rows = np.flatnonzero(live["size"] > 0)
    pension = 12 * sc.params.at(2020)["income.pension_monthly"] * live["pensioners"][rows]
    own_transfers = np.maximum(live["income_transfer"][rows] - live["programme_transfer"][rows] - pension, 0)
    assert np.allclose(restarted.h["transfer_base"], own_transfers, rtol=1e-6, atol=1e-6)
    assert (restarted.h["transfer_base"] <= live["income_transfer"][rows] - pension + 1e-6).all()
    streams = live["income_property"][rows] - live["programme_property"][rows]
    assert np.allclose(restarted.h["property_base"], streams, rtol=1e-6, atol=1e-6)
