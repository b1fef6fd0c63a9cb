"""Rules of social assistance beyond the plain means test: 低保's gradual exit (渐退, 缓退) and
single-person coverage (单人保), both in 003_2029d448e398c879.txt, and temporary assistance
(临时救助). Several interventions steps on a synthetic population, unlimited money, incomes
set by the test between the years, so each rule's effect is the only one."""
import numpy as np
import pytest

import fupin_sim as fs
from fupin_sim.interventions import instrument_defaults, parse
from fupin_sim.population import schema as S
from fupin_sim.population.state import State
from fupin_sim.processes import demography, income, shocks
from fupin_sim.rng import RandomStreams
from fupin_sim.simulation import CARRIED

FIRST = 2018
EXACT = {"exclusion_error": 0.0, "inclusion_error": 0.0}  # the means test alone decides


def setup(interventions: dict, n=6000, seed=4):
    """A state after demography, income and shocks of FIRST, and the programme to step on it."""
    sc = fs.load_scenario("no_policy")
    data = {"interventions": interventions, "budgets": {"civil_affairs": {"amounts": "unlimited"}}}
    programme = parse(data, (2016, 2025), None).fresh()
    state = State(fs.generate(sc.params, n, seed=seed, year=FIRST - 1), sc.params, CARRIED)
    programme.prepare(state)
    rs = RandomStreams(seed)
    for process in (demography.step, income.step, shocks.step):
        process(state, sc.params.at(FIRST), rs, FIRST)
    return sc, state, programme, rs


def step(sc, state, programme, rs, year):
    """One interventions step; returns what each household was paid (yuan), after which the
    payment is taken back out of income, so the next year starts from the same incomes."""
    programme.step(state, sc.params.at(year), rs, year)
    paid = state.h["programme_transfer"].copy()
    state.h["income_transfer"] -= paid
    return paid


def assessed(state, year, rules=None):
    """Per-capita income as the 低保 means test assesses it (see Dibao)."""
    r = instrument_defaults()["dibao"].at(year) if rules is None else rules
    h = state.h
    size = np.maximum(h["size"], 1)
    gross = sum(h[f"income_{s}"] for s in S.INCOME_SOURCES) / size
    return gross + np.maximum(r["imputed_share"] * r["standard"] * h["labour_units"] - h["income_wage"], 0) / size


def dibao(**rules):
    return {"dibao": {"rules": {**EXACT, **rules}}}


# --- gradual exit (渐退) -----------------------------------------------------------------------

def _rising(years):
    """Three years of 低保 with `gradual_exit_years`: half the households paid in the first year
    see their wage income rise well above the standard in the second; paid amounts by year."""
    sc, state, programme, rs = setup(dibao(gradual_exit_years=years))
    first = step(sc, state, programme, rs, FIRST)
    served = np.flatnonzero(first > 0)
    risen = served[::2]
    standard = instrument_defaults()["dibao"].at(2021)["standard"]
    state.h["income_wage"][risen] += 3 * standard * state.h["size"][risen]
    later = [step(sc, state, programme, rs, y) for y in (FIRST + 1, FIRST + 2, FIRST + 3)]
    return state, first, later, served, risen


def test_gradual_exit_keeps_paying_for_the_stated_years_then_stops():
    state, first, (y1, y2, y3), served, risen = _rising(2)
    assert len(risen) > 50
    assert (assessed(state, FIRST + 1)[risen] >= 6124).all()  # no longer qualifying
    # the amount of its last qualifying year, for two years, then nothing
    assert y1[risen] == pytest.approx(first[risen])
    assert y2[risen] == pytest.approx(first[risen])
    assert (y3[risen] == 0).all()
    assert (state.h["dibao_grace"][risen] == 2).all()


def test_a_part_year_of_gradual_exit_pays_that_share_in_its_last_year():
    _, first, (y1, y2, _), _, risen = _rising(1.5)
    assert y1[risen] == pytest.approx(first[risen])
    assert y2[risen] == pytest.approx(0.5 * first[risen])


def test_no_gradual_exit_drops_households_at_once_and_leaves_everyone_else_as_they_were():
    state0, first0, later0, served0, risen0 = _rising(0)
    state2, first2, later2, served2, risen2 = _rising(2)
    np.testing.assert_array_equal(first0, first2)
    assert (later0[0][risen0] == 0).all()  # today's rule: dropped the year they no longer qualify
    others = np.ones(len(first0), bool)
    others[risen0] = False
    for a, b in zip(later0, later2):  # households the rule never touches: bit-identical
        np.testing.assert_array_equal(a[others], b[others])
    for column in ("income_wage", "income_operating", "income_transfer", "size"):
        np.testing.assert_array_equal(state0.h[column], state2.h[column])


def test_zero_years_reproduce_the_default_run_exactly(tmp_path):
    path = tmp_path / "explicit.yaml"
    path.write_text("name: explicit\nextends: baseline\ninterventions:\n"
                    "  dibao: {rules: {gradual_exit_years: 0, single_person: none}}\n", encoding="utf-8")
    a = fs.run("baseline", households=1500, seed=11, years=(2016, 2020)).summary
    b = fs.run(str(path), households=1500, seed=11, years=(2016, 2020)).summary
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    c = fs.run(str(path), households=1500, seed=11, years=(2016, 2020)).summary  # reproducible
    np.testing.assert_array_equal(b.to_numpy(), c.to_numpy())


def test_gradual_exit_runs_reproduce():
    path_rules = {"gradual_exit_years": 1}
    runs = []
    for _ in range(2):
        sc, state, programme, rs = setup(dibao(**path_rules), n=3000, seed=9)
        runs.append([step(sc, state, programme, rs, y) for y in range(FIRST, FIRST + 3)])
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


# --- single-person coverage (单人保) ------------------------------------------------------------

def _members(state, severe=True):
    pp = state.p
    flagged = pp["disabled"] | pp["chronic"]
    if severe:
        flagged &= pp["labour"] == S.NO_LABOUR
    return np.bincount(pp["hh"][flagged], minlength=state.n)


@pytest.mark.parametrize("mode", ["severe", "flagged"])
def test_single_person_coverage_pays_the_member_only_in_households_failing_the_test(mode):
    sc, state, programme, rs = setup(dibao(single_person=mode))
    pc = assessed(state, FIRST)
    paid = step(sc, state, programme, rs, FIRST)
    _, state0, programme0, rs0 = setup(dibao())
    paid0 = step(sc, state0, programme0, rs0, FIRST)
    standard = 5547
    members = _members(state, severe=mode == "severe")
    alive = state.h["size"] > 0
    fails = alive & (pc >= standard)
    single = fails & (members > 0) & (pc < 1.5 * standard)
    assert single.sum() > 20
    # each such member at the standard, the household's other members not
    np.testing.assert_allclose(paid[single], standard * members[single])
    assert (paid[single] < standard * state.h["size"][single]).any()
    # nobody else's payment changes: those passing the test as a household as before, and no
    # household failing it is paid without such a member, or far above the test
    np.testing.assert_array_equal(paid[~single], paid0[~single])
    assert (paid0[single] == 0).all()


def test_single_person_coverage_keeps_the_households_exclusion_error():
    rules = {"single_person": "severe", "exclusion_error": 0.6, "exclusion_error_registered": 0.6,
             "inclusion_error": 0.0}
    sc, state, programme, rs = setup({"dibao": {"rules": rules}})
    pc = assessed(state, FIRST)
    paid = step(sc, state, programme, rs, FIRST)
    single = (state.h["size"] > 0) & (pc >= 5547) & (pc < 1.5 * 5547) & (_members(state) > 0)
    reached = paid[single] > 0
    np.testing.assert_array_equal(reached, state.h["dibao_propensity"][single] >= 0.6)  # the same office
    assert 0.25 < reached.mean() < 0.55  # about 1 - 0.6


# --- temporary assistance (临时救助) -----------------------------------------------------------

def _temporary(rules=None, n=6000, seed=4, no_shock=False):
    sc, state, programme, rs = setup({"temporary_assistance": {"rules": rules or {}}}, n=n, seed=seed)
    if no_shock:
        state.h["oop"][:] = 0.0
        state.h["school_cost"][:] = 0.0
    h = state.h
    size = np.maximum(h["size"], 1)
    expense = h["oop"] + h["school_cost"]
    net = sum(h[f"income_{s}"] for s in S.INCOME_SOURCES) / size - expense / size
    paid = step(sc, state, programme, rs, FIRST)
    return state, programme, paid, net, expense, size


def test_temporary_assistance_pays_only_those_under_the_standard_after_the_shock_at_most_the_sum():
    state, programme, paid, net, expense, size = _temporary()
    r = instrument_defaults()["temporary_assistance"].at(FIRST)
    alive = state.h["size"] > 0
    under = alive & (expense > 0) & (net < r["standard"])
    assert under.sum() > 50 and (alive & (expense > 0) & ~under).sum() > 50
    assert (paid[~under] == 0).all()
    assert (paid[under] > 0).all()
    cap = r["months"] / 12 * r["standard"] * size
    assert (paid <= cap + 1e-9).all() and (paid <= expense + 1e-9).all()
    # what it pays: the gap to the standard net of the costs, no more than the costs, up to the sum
    want = np.minimum(np.minimum((r["standard"] - net) * size, expense), cap)
    np.testing.assert_allclose(paid[under], want[under])
    assert (paid[under] == cap[under]).any() and (paid[under] < cap[under]).any()
    ledger = programme.ledger.frame()
    assert set(ledger["category"]) == {"transfer"}
    assert ledger["amount"].sum() == pytest.approx(float(paid @ state.h["weight"]))


def test_temporary_assistance_pays_nothing_in_a_year_without_a_shock():
    _, programme, paid, *_ = _temporary(no_shock=True)
    assert (paid == 0).all()
    assert sum(r["amount"] for r in programme.ledger.rows) == 0


def test_temporary_assistance_sum_is_a_rule_and_runs_reproduce():
    _, _, paid3, *_ = _temporary({"months": 3})
    _, _, paid1, *_ = _temporary({"months": 1})
    assert (paid1 <= paid3).all() and paid1.sum() < paid3.sum()
    _, _, again, *_ = _temporary({"months": 3})
    np.testing.assert_array_equal(paid3, again)
