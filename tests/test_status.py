import numpy as np
import pytest

from fupin_sim import status
from fupin_sim.params import Params
from fupin_sim.population import schema as S
from fupin_sim.population.state import State
from fupin_sim.simulation import CARRIED
from fupin_sim.population.synthetic import generate
from fupin_sim.rng import RandomStreams
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
    registered = h["status"] == S.POOR
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
        "out_of_pocket_medical": (w * h["oop"]).sum(),
    }
    for name, value in expected.items():
        assert m[name] == pytest.approx(value, rel=1e-12), name


def test_register_transitions():
    incomes = [5000, 8000, 1000, 2000, 5000, 20000]
    st = [S.POOR, S.POOR, S.EXITED, S.NONPOOR, S.NONPOOR, S.NONPOOR]
    safe = [True, False, True, True, True, True]
    state, m = run_status(tiny_population(incomes, st, safe))
    # exits need income above the line AND a safe house (三保障)
    assert list(state.h["status"]) == [S.EXITED, S.POOR, S.POOR, S.POOR, S.NONPOOR, S.NONPOOR]
    assert (m["exits"], m["relapses"], m["new_poor"]) == (1, 1, 1)
    assert m["relapse_rate"] == 1.0  # the one exited household relapsed
    assert state.h["year_exited"][0] == 2020 and state.h["relapses"][2] == 1
    assert state.h["year_registered"][3] == 2020 and state.h["cause"][3] == S.CODE["cause"]["skills"]
    # monitoring (监测): not registered poor and under 1.5 x the line (6000): the new exit and the 5000 one
    assert list(np.flatnonzero(state.h["monitored"])) == [0, 4]
    assert m["monitored"] == 2


def test_heavy_medical_costs_push_under_the_line_and_set_the_cause():
    state = State(tiny_population([6000, 6000], [S.NONPOOR, S.NONPOOR]), Params.defaults(), CARRIED)
    state.h["oop"][0] = 4000  # (6000 - 4000) per capita is under the 4000 line
    status.step(state, P2020, RandomStreams(0), 2020)
    assert list(state.h["status"]) == [S.POOR, S.NONPOOR]
    assert state.h["cause"][0] == S.CODE["cause"]["illness"]


def test_deduction_share_is_a_lever():
    p = dict(P2020)
    p["exit.deduct_expenditure"] = 0.0
    state = State(tiny_population([6000]), Params.defaults(), CARRIED)
    state.h["oop"][0] = 4000
    status.step(state, p, RandomStreams(0), 2020)
    assert state.h["status"][0] == S.NONPOOR


def test_compulsory_age_dropout_blocks_exit():
    pop = tiny_population([8000, 8000], [S.POOR, S.POOR], ages=[10, 40])
    pop.persons["school"][:] = [S.NOT_IN_SCHOOL, S.NOT_IN_SCHOOL]  # a 10-year-old out of school
    state, _ = run_status(pop)
    assert list(state.h["status"]) == [S.POOR, S.EXITED]
