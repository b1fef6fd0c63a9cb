"""Anti-poverty insurance (防贫保险) as the 魏县 scheme ran it: a pool insured at the start of the
year from last year's record, claims that pay the gap up to the trigger line (capped, and no more
than the year's medical and schooling costs), premiums that fund claims first and a budget line
that pays the loss beyond them, in a balanced ledger."""
import numpy as np
import pytest

import fupin_sim as fs
from fupin_sim.errors import InputError
from fupin_sim.interventions import parse
from fupin_sim.population import schema as S
from fupin_sim.population.state import State
from fupin_sim.processes import demography, income, shocks
from fupin_sim.rng import RandomStreams
from fupin_sim.simulation import CARRIED
from fupin_sim import status

from test_funding import check_books

YEAR = 2018
LABEL = "anti_poverty_insurance"


def one_year(rules=None, budgets=None, n=8000, seed=4):
    """A year of record (YEAR - 1, through the status step: last year's incomes and line), then
    YEAR's demography, income and shocks (`before`) and its interventions step."""
    sc = fs.load_scenario("no_policy")
    data = {"interventions": {LABEL: {"rules": rules or {}}},
            "budgets": budgets or {"central_special": {"amounts": "unlimited"}}}
    programme = parse(data, (2016, 2025), None).fresh()
    pop = fs.generate(sc.params, n, seed=seed, year=YEAR - 2)
    state = State(pop, sc.params, CARRIED)
    programme.prepare(state)
    rs = RandomStreams(seed)
    for process in (demography.step, income.step, shocks.step, status.step):
        process(state, sc.params.at(YEAR - 1), rs, YEAR - 1)
    p = sc.params.at(YEAR)
    for process in (demography.step, income.step, shocks.step):
        process(state, p, rs, YEAR)
    before = {k: v.copy() for k, v in state.h.items()}
    previous_line = state.values["previous_line"]
    programme.step(state, p, rs, YEAR)
    return before, state, programme, p, previous_line


def net_income(h):
    """Income net of the year's medical out-of-pocket and schooling costs, per person."""
    total = sum(h[f"income_{s}"].astype(np.float64) for s in S.INCOME_SOURCES)
    return (total - h["oop"] - h["school_cost"]) / np.maximum(h["size"], 1)


def line(p):
    return float(p["poverty_line.national"])


@pytest.fixture(scope="module")
def year():
    return one_year()


def test_the_pool_is_insured_from_last_years_record_before_any_claim(year):
    before, state, prog, p, previous_line = year
    h = before
    alive = h["size"] > 0
    last = h["income_last"]
    pool = alive & (((h["status"] == S.NONPOOR) & (last != 0) & (last < 1.5 * previous_line))
                    | (h["status"] == S.EXITED))  # a household formed this year keeps its register status
    insured = np.zeros(state.n, dtype=bool)
    insured[prog.served[LABEL]] = True
    assert insured[:len(pool)].tolist() == pool.tolist()  # nothing this year decided who is covered
    paid = (state.h["income_transfer"] - before["income_transfer"]) > 0
    assert paid.any() and not (paid & ~insured).any()
    # households under the trigger this year because of their costs but not insured: not paid
    under = alive & (net_income(before) < 1.1 * line(p)) & (before["oop"] + before["school_cost"] > 0)
    outside = under & ~insured & (h["status"] != S.POOR)
    assert outside.sum() > 10
    assert (state.h["income_transfer"][outside] == before["income_transfer"][outside]).all()
    # and the pool was not picked from those under the trigger: most of it is above the line this year
    assert (net_income(before)[pool] >= 1.1 * line(p)).mean() > 0.5


def test_a_claim_pays_the_gap_up_to_the_trigger_line_and_no_more_than_the_costs(year):
    before, state, prog, p, _ = year
    claim = (state.h["income_transfer"] - before["income_transfer"]).astype(np.float64)
    rows = np.flatnonzero(claim > 0)
    assert len(rows) > 20
    size = before["size"][rows]
    trigger = 1.1 * line(p) * size
    net = net_income(before)[rows] * size
    cost = (before["oop"] + before["school_cost"])[rows]
    assert claim[rows] == pytest.approx(np.minimum(np.minimum(trigger - net, cost), 30000), abs=0.05)
    after = net_income(state.h)[rows] * size
    assert (after <= trigger + 0.05).all()  # at most the trigger line: the gap, not a share of a cost
    full = (trigger - net <= cost) & (trigger - net < 30000)
    assert full.sum() > 10 and after[full] == pytest.approx(trigger[full], abs=0.05)
    # no claim above the trigger line, however large the cost
    insured = prog.served[LABEL]
    above = insured[(net_income(before)[insured] >= 1.1 * line(p))]
    assert len(above) and (claim[above] == 0).all()


def test_the_yearly_cap_holds():
    before, state, prog, p, _ = one_year(rules={"max_claim": 1500})
    claim = (state.h["income_transfer"] - before["income_transfer"]).astype(np.float64)
    assert claim.max() <= 1500 + 0.05
    assert (np.abs(claim - 1500) < 0.05).sum() > 5  # it binds


@pytest.mark.parametrize("rule, value, message", [
    ("trigger_multiple", 5.0, "outside the range [0.5, 3]"),
    ("premium", -10, "outside >= 0"),
    ("premium", 5000, "outside the range [0, 1000]"),
    ("cover_multiple", 0.5, "outside the range [1, 5]"),
    ("max_claim", 2e6, "outside the range [0, 1e+06]"),
    ("cover_exited", "some", "is not one of ['all', 'under_cover_line', 'none']"),
])
def test_rules_outside_their_range_are_refused_naming_the_key(rule, value, message):
    data = {"interventions": {LABEL: {"rules": {rule: value}}}, "budgets": {"central_special": {"amounts": 1}}}
    with pytest.raises(InputError) as err:
        parse(data, (2016, 2025), "s.yaml")
    assert f"interventions.{LABEL}.rules.{rule}" in str(err.value) and message in str(err.value)


def test_a_rules_range_cannot_be_restated_by_a_scenario():
    data = {"interventions": {LABEL: {"rules": {"premium": {"value": 60, "range": [0, 1e9]}}}},
            "budgets": {"central_special": {"amounts": 1}}}
    with pytest.raises(InputError, match=rf"interventions\.{LABEL}\.rules\.premium\.range"):
        parse(data, (2016, 2025), "s.yaml")


@pytest.fixture(scope="module")
def consolidation():
    """The bundled consolidation scenario at 3000 households: its run and its insurance books."""
    sc = fs.load_scenario("consolidation").edit(households=3000, seed=1)
    sim = fs.Simulation(sc)
    sim.run()
    return fs.run(sc), sim.programme.item(LABEL).instrument.books, sim.programme.ledger.frame()


def test_the_loss_ratio_on_the_consolidation_scenario_is_plausible(consolidation):
    """Claims over premiums, 2021-2025 together (the measured ratio was 2.35 at seed 1; 25-30 before
    the rework). 魏县's own first year ran at about 2-3: 4 m yuan of premiums a year, over 7 m paid by
    September 2018 and 11.4 m by mid-November (Xinhua 2018-09-03; the county made good the shortfall).
    A ratio under 0.5 would be an insurer's profit the schemes never showed; over 4, a pool picked
    from households already in trouble."""
    _, books, _ = consolidation
    premiums = sum(b["premiums"] for b in books)
    claims = sum(b["claims"] for b in books)
    assert [b["year"] for b in books] == [2021, 2022, 2023, 2024, 2025]
    assert premiums > 0 and 0.5 <= claims / premiums <= 4.0
    assert all(b["claims"] / b["premiums"] < 8 for b in books)


def test_premiums_fund_claims_and_the_loss_is_paid_by_the_risk_fund(consolidation):
    result, books, ledger = consolidation
    check_books(result)
    mine = ledger[ledger["instrument"] == LABEL]
    claims = mine[mine["category"] == "insurance_claim"]["amount"].sum()
    assert claims == pytest.approx(sum(b["claims"] for b in books), rel=1e-9)
    assert (mine[mine["category"] == "insurance_margin"]["amount"] >= 0).all()  # a loss is never a negative margin
    total = sum(b["premiums"] + b["loss"] for b in books)
    assert mine["amount"].sum() == pytest.approx(total, rel=1e-9)  # premiums + loss, nothing else
    loss = sum(b["loss"] for b in books)
    assert loss > 0 and mine[mine["line"] == "risk_fund"]["amount"].sum() >= loss * (1 - 1e-9)
    assert all(b["unpaid"] == 0 for b in books)  # the fund is unlimited


def test_when_the_loss_line_runs_short_the_others_get_the_premiums_share():
    before, state, prog, p, _ = one_year()
    books = prog.item(LABEL).instrument.books[-1]
    premiums, loss = books["premiums"], books["loss"]
    assert loss > 0
    budgets = {"central_special": {"amounts": premiums + 0.3 * loss}}
    before, state, prog, p, _ = one_year(budgets=budgets)
    short = prog.item(LABEL).instrument.books[-1]
    assert short["premiums"] == pytest.approx(premiums)  # the same pool, fully insured
    assert 0 < short["loss"] <= 0.3 * loss * (1 + 1e-9) and short["unpaid"] > 0.6 * loss
    received = float((state.h["income_transfer"] - before["income_transfer"]).astype(np.float64) @ state.h["weight"])
    assert received == pytest.approx(premiums + short["loss"], rel=1e-5)
    ledger = prog.ledger.frame()
    assert ledger["amount"].sum() == pytest.approx(premiums + short["loss"], rel=1e-9)
    assert ledger["amount"].sum() <= premiums + 0.3 * loss + 1e-6


def test_a_rationed_pool_leaves_the_uninsured_unpaid(year):
    """Premiums for only part of the pool: those left out are not paid, whatever their costs."""
    full_before, full_state, full_prog, _, _ = year
    before, state, prog, p, _ = one_year(budgets={"central_special": {"amounts": 200_000}})
    insured = np.zeros(state.n, dtype=bool)
    insured[prog.served[LABEL]] = True
    pool = np.zeros(full_state.n, dtype=bool)
    pool[full_prog.served[LABEL]] = True
    assert 0 < insured.sum() < pool.sum() and not (insured[:len(pool)] & ~pool).any()
    assert prog.item(LABEL).instrument.books[-1]["premiums"] <= 200_000 + 1e-6
    paid = (state.h["income_transfer"] - before["income_transfer"]) > 0
    would = (full_state.h["income_transfer"] - full_before["income_transfer"]) > 0  # claims with the whole pool
    left_out = would & ~insured[:len(would)]
    assert left_out.sum() > 5 and not paid[:len(would)][left_out].any()
    assert not (paid & ~insured).any()
