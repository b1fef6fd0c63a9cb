import numpy as np
import pytest

from fupin_sim import status
from fupin_sim.params import Params
from fupin_sim.population import schema as S
from fupin_sim.population.state import State
from fupin_sim.population.synthetic import generate
from fupin_sim.rng import RandomStreams
from fupin_sim.simulation import CARRIED
from helpers import tiny_population

P2020 = Params.defaults().at(2020)  # national line 4000


def run_status(pop):
    state = State(pop, Params.defaults(), CARRIED)
    return state, status.step(state, P2020, RandomStreams(0), 2020)


def test_fgt_indices_on_a_hand_computed_example():
    # per-capita incomes 1000, 2000, 4000, 8000 against a line of 4000: gaps 0.75, 0.5, 0, 0
    _, m = run_status(tiny_population([1000, 2000, 4000, 8000]))
    assert m["poverty_line"] == 4000
    assert m["fgt0"] == pytest.approx(0.5)
    assert m["fgt1"] == pytest.approx((0.75 + 0.5) / 4)
    assert m["fgt2"] == pytest.approx((0.75**2 + 0.5**2) / 4)
    assert m["income_poor_persons"] == 2 and m["headcount_ratio"] == pytest.approx(0.5)


@pytest.mark.parametrize("equal_weights", [True, False])
def test_metrics_are_their_weighted_definitions(equal_weights):
    # equal weights (synthetic populations) take counts and plain sums, unequal ones
    # (registers) the weighted sums: both must give the definitions
    state = State(generate(Params.defaults(), 3000, seed=4, year=2019), Params.defaults(), CARRIED)
    h = state.h
    if not equal_weights:
        h["weight"] = np.random.default_rng(1).uniform(0.5, 3.0, state.n)
    h["oop"][::7] = 3000.0  # some medical costs, so the test income differs from income
    m = status.step(state, P2020, RandomStreams(0), 2020)
    w, line = h["weight"], m["poverty_line"]
    wp = w * h["size"]
    y = status.test_income(state, P2020)
    gap = np.clip((line - y) / line, 0.0, 1.0)
    registered, filed = h["status"] == S.POOR, h["status"] != S.NONPOOR
    assert 0 < registered.sum() < state.n and 0 < (gap > 0).sum() < state.n
    expected = {
        "households": w[h["size"] > 0].sum(), "persons": wp.sum(),
        "registered_poor": w[registered].sum(), "registered_poor_persons": wp[registered].sum(),
        "exited": w[h["status"] == S.EXITED].sum(), "monitored": w[h["monitored"]].sum(),
        "income_poor_persons": wp[gap > 0].sum(), "fgt0": wp[gap > 0].sum() / wp.sum(),
        "fgt1": (wp * gap).sum() / wp.sum(), "fgt2": (wp * gap**2).sum() / wp.sum(),
        "income_wage_per_capita": (w * h["income_wage"]).sum() / wp.sum(),
        "income_transfer_per_capita": (w * h["income_transfer"]).sum() / wp.sum(),
        "income_per_capita_registered_poor": (w * state.income_total())[registered].sum() / wp[registered].sum(),
        "income_per_capita_filed": (w * state.income_total())[filed].sum() / wp[filed].sum(),
        "income_poor_exited_persons": wp[(gap > 0) & (h["status"] == S.EXITED)].sum(),
        "out_of_pocket_medical": (w * h["oop"]).sum(),
    }
    for name, value in expected.items():
        assert m[name] == pytest.approx(value, rel=1e-12), name


def exact(year: int = 2019, **changes) -> dict:
    """A year's parameters with the register's chance and error taken out, for exact tests."""
    p = dict(Params.defaults().at(year))
    p.update({"register.identification": 1.0, "register.assessment_error": 0.0, "register.exit_plan": 1.0,
              "monitoring.identification": 1.0, **changes})
    return p


def step(state, p, year=2019):
    return status.step(state, p, RandomStreams(0), year)


def test_register_transitions():
    # 2019, a year of the campaign (the line is 3218): exits, relapses and new poor
    incomes = [5000, 8000, 1000, 2000, 5000, 20000]
    st = [S.POOR, S.POOR, S.EXITED, S.NONPOOR, S.NONPOOR, S.NONPOOR]
    safe = [True, False, True, True, True, True]
    state = State(tiny_population(incomes, st, safe), Params.defaults(), CARRIED)
    m = step(state, exact())
    # exits need income above the line AND a safe house (三保障)
    assert list(state.h["status"]) == [S.EXITED, S.POOR, S.POOR, S.POOR, S.NONPOOR, S.NONPOOR]
    assert (m["exits"], m["relapses"], m["new_poor"]) == (1, 1, 1)
    assert m["relapse_rate"] == 1.0  # the one exited household relapsed
    assert state.h["year_exited"][0] == 2019 and state.h["relapses"][2] == 1
    assert state.h["year_registered"][3] == 2019 and state.h["cause"][3] == S.CODE["cause"]["skills"]
    assert m["monitored"] == 0  # monitoring begins in 2020


def test_nobody_enters_the_register_after_its_last_entry_year():
    state = State(tiny_population([1000, 1000, 1000], [S.EXITED, S.NONPOOR, S.NONPOOR]), Params.defaults(), CARRIED)
    state.h["income_last"][:] = [3000, 5000, 1000]
    m = step(state, exact(2020), 2020)
    assert list(state.h["status"]) == [S.EXITED, S.NONPOOR, S.NONPOOR] and m["new_poor"] == 0
    # instead monitoring objects, of their kinds: the exited one under the line (脱贫不稳定户), the others
    # under it too (边缘易致贫户), whether a fall of income struck them this year or not
    assert list(state.h["monitor_kind"]) == [status.UNSTABLE, status.EDGE, status.EDGE] and m["monitored"] == 3
    assert m["relapses"] == 0  # found this year: helped before it can count as a relapse
    assert step(state, exact(2021), 2021)["relapses"] == 1  # still under the line after a year of help


def test_a_relapse_after_the_register_closed_is_counted_once_not_every_year_under_the_line():
    state = State(tiny_population([1000], [S.EXITED]), Params.defaults(), CARRIED)
    relapses = [step(state, exact(year), year)["relapses"] for year in (2021, 2022, 2023)]
    assert relapses == [0, 1, 0] and state.h["relapses"][0] == 1


def test_the_exit_plan_exits_the_highest_assessed_incomes_first():
    state = State(tiny_population([4000, 9000, 6000, 5000, 1000], [S.POOR] * 5), Params.defaults(), CARRIED)
    m = step(state, exact(**{"register.exit_plan": 0.4}))  # 2 of the 5 registered at most
    assert list(state.h["status"]) == [S.POOR, S.EXITED, S.EXITED, S.POOR, S.POOR] and m["exits"] == 2
    m = step(state, exact(**{"register.exit_plan": 1.0}))  # every household ready
    assert list(state.h["status"]) == [S.EXITED, S.EXITED, S.EXITED, S.EXITED, S.POOR] and m["exits"] == 2


def test_the_survey_measure_deducts_no_costs_and_a_local_rule_can_register_heavy_medical_spending():
    def run(**changes):
        state = State(tiny_population([6000, 6000], [S.NONPOOR, S.NONPOOR]), Params.defaults(), CARRIED)
        state.h["oop"][0] = 4000  # (6000 - 4000) per capita would be under the 3218 line
        return state, step(state, exact(**changes))

    state, m = run()
    assert m["income_poor_persons"] == 0 and list(state.h["status"]) == [S.NONPOOR, S.NONPOOR]
    state, m = run(**{"register.deduct_expenditure": 1.0})  # 兴安盟's rule (004)
    assert m["income_poor_persons"] == 0 and list(state.h["status"]) == [S.POOR, S.NONPOOR]
    assert state.h["cause"][0] == S.CODE["cause"]["illness"]
    state, m = run(**{"poverty.deduct_expenditure": 1.0})  # an expenditure-based survey measure
    assert m["income_poor_persons"] == 1 and list(state.h["status"]) == [S.POOR, S.NONPOOR]


def test_the_assessment_error_is_persistent_and_has_mean_one():
    state = State(generate(Params.defaults(), 20000, seed=2, year=2018), Params.defaults(), CARRIED)
    p = dict(Params.defaults().at(2019))
    first = status.assessment_factor(state, p, RandomStreams(3)).copy()
    again = status.assessment_factor(state, p, RandomStreams(3))
    assert np.array_equal(first, again)
    assert np.mean(first) == pytest.approx(1.0, abs=0.01)
    assert np.std(np.log(first)) == pytest.approx(p["register.assessment_error"], rel=0.03)


def test_monitoring_objects_leave_when_the_risk_is_eliminated():
    state = State(tiny_population([5000, 5000], [S.EXITED, S.NONPOOR]), Params.defaults(), CARRIED)
    state.h["income_last"][:] = 9000  # a sharp fall, under the 6000 threshold: both found
    m = step(state, exact(2021), 2021)
    assert m["new_monitored"] == 2 and list(state.h["monitor_kind"]) == [status.UNSTABLE, status.EDGE]
    state.h["income_wage"][:] = [9000, 5000]  # the first is safe again, the second is not
    state.h["oop"][1] = 6000  # and hardship strikes it
    m = step(state, exact(2022), 2022)
    assert m["risk_eliminated"] == 1 and list(state.h["monitored"]) == [False, True]


def test_compulsory_age_dropout_blocks_exit():
    pop = tiny_population([8000, 8000], [S.POOR, S.POOR], ages=[10, 40])
    pop.persons["school"][:] = [S.NOT_IN_SCHOOL, S.NOT_IN_SCHOOL]  # a 10-year-old out of school
    state = State(pop, Params.defaults(), CARRIED)
    step(state, exact())
    assert list(state.h["status"]) == [S.POOR, S.EXITED]
