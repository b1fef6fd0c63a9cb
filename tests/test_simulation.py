"""Whole-run invariants and monotone effects."""
import numpy as np
import pytest

import fupin_sim as fs
from fupin_sim.population import schema as S
from fupin_sim.results import simulate
from fupin_sim.simulation import Simulation


@pytest.fixture(scope="module")
def result(baseline):
    return simulate(baseline.edit(households=5000), seed=2, panel=True)


def test_summary_is_finite_and_within_bounds(result):
    s = result.summary
    assert list(s["year"]) == list(range(2016, 2021))
    assert np.isfinite(s.select_dtypes("number").to_numpy()).all()
    assert ((s["headcount_ratio"] >= 0) & (s["headcount_ratio"] <= 1)).all()
    assert ((s["fgt2"] <= s["fgt1"] + 1e-12) & (s["fgt1"] <= s["fgt0"] + 1e-12)).all()
    assert ((s["relapse_rate"] >= 0) & (s["relapse_rate"] <= 1)).all()


def test_persons_are_conserved_except_by_births_and_deaths(baseline):
    sim = Simulation(baseline.edit(households=5000), seed=3)
    persons = sim.state.h["size"] @ sim.state.h["weight"]
    while not sim.done:
        row = sim.step()
        assert row["persons"] == pytest.approx(persons + row["births"] - row["deaths"], rel=1e-12)
        persons = row["persons"]


def test_register_stocks_follow_their_flows(result):
    s = result.summary
    for prev, cur in zip(s.iloc[:-1].itertuples(), s.iloc[1:].itertuples()):
        # households that split from registered ones stay on the register (a family on it stays on it)
        assert cur.registered_poor == pytest.approx(prev.registered_poor - cur.exits + cur.reregistered
                                                    + cur.new_poor - cur.dissolved_poor + cur.formed_poor)
        assert cur.exited == pytest.approx(prev.exited + cur.exits - cur.reregistered - cur.dissolved_exited
                                           + cur.formed_exited)
    assert s["formed_poor"].sum() > 0 and s["formed_exited"].sum() > 0


def test_inpatient_costs_are_split_between_insurance_and_what_is_left(result):
    s = result.summary
    payers = s[["paid_basic_insurance", "paid_critical_insurance", "inpatient_left_after_insurance"]].sum(axis=1)
    assert np.allclose(payers, s["medical_cost"], rtol=1e-12)


def test_panel_is_opt_in_and_complete(result, baseline):
    # one row per household and year, households formed during the run included
    rows = result.panel.groupby("year").size()
    assert list(rows.index) == list(range(2016, 2021)) and rows.iloc[0] >= 5000 and rows.iloc[-1] > rows.iloc[0]
    assert rows.is_monotonic_increasing and not result.panel.duplicated(["year", "household_id"]).any()
    assert set(result.panel["status"].unique()) <= {S.NONPOOR, S.POOR, S.EXITED}
    assert fs.run(baseline.edit(households=500, years=(2016, 2017))).panel is None


def _final(scenario, key, **params):
    runs = [fs.run(scenario.edit(parameters=params or None), seed=s).summary.iloc[-1][key] for s in (1, 2)]
    return np.mean(runs)


def test_faster_wage_growth_means_fewer_poor(small):
    assert _final(small, "fgt0", **{"income.wage_growth": 0.12}) < _final(small, "fgt0")


def test_more_illness_means_more_out_of_pocket_costs_and_more_households_monitored_for_hardship(small):
    # the survey measure deducts no costs: illness shows in the costs and in monitoring (突发严重困难户)
    sick = {"health.admission_rate": [0.26, 0.4]}
    assert _final(small, "out_of_pocket_medical", **sick) > _final(small, "out_of_pocket_medical")
    assert _final(small, "monitored_hardship", **sick) > _final(small, "monitored_hardship")


def test_lower_identification_registers_fewer_new_poor(small):
    low, base = ({"register.identification": r} for r in (0.2, 1.0))
    years = small.edit(years=(2016, 2019))
    assert _sum(years, "new_poor", **low) < _sum(years, "new_poor", **base)


def _sum(scenario, key, **params):
    return np.mean([fs.run(scenario.edit(parameters=params), seed=s).summary[key].sum() for s in (1, 2)])


def test_jiangsu_line_is_the_provincial_6000(baseline):
    result = fs.run("jiangsu", households=2000, seed=1)
    assert (result.summary["poverty_line"] == 6000).all()


def test_the_state_holds_only_what_its_owners_declare():
    """Every household and person column and every value the state carries is declared with
    its type by the process or instrument that keeps it; anything else is refused at once."""
    sim = Simulation(fs.load_scenario("consolidation").edit(households=300, years=(2016, 2022)), seed=1)
    sim.run()
    st = sim.state
    for table in (st.h, st.p, st.values):
        assert set(table) <= set(table.types)
    assert all(st.h[k].dtype == st.h.types[k] for k in st.h) and all(st.p[k].dtype == st.p.types[k] for k in st.p)
    assert {st.h.owners[k] for k in ("oop", "monitored", "loan_balance", "served_relocation", "wage_level")} == {
        "processes.shocks", "status", "instrument microloan", "instrument relocation", "population.state"}
    assert st.values.owners["admissions"] == "processes.shocks" and isinstance(st.values["admissions"], dict)
    with pytest.raises(KeyError, match="undeclared state column 'extra'"):
        st.h["extra"] = np.zeros(st.n)
    with pytest.raises(TypeError, match="'oop' is declared as float64 by processes.shocks, got float32"):
        st.h["oop"] = np.zeros(st.n, np.float32)
    with pytest.raises(KeyError, match="undeclared state value 'anything'"):
        st.values["anything"] = 1.0
    with pytest.raises(TypeError, match="'previous_line' is declared as <class 'float'> by status"):
        st.values["previous_line"] = "4000"
    with pytest.raises(AttributeError):
        st.admissions = {}  # no attribute outside the declared tables


def test_a_preset_of_a_whole_country_asks_how_many_households_to_simulate(tmp_path):
    """china_rural stands for 294 m households: simulating each would take hundreds of GB, so a
    scenario that does not say how many to simulate is refused, naming the file and key."""
    path = tmp_path / "country.yaml"
    path.write_text("name: country\npopulation: {preset: china_rural}\nyears: [2013, 2014]\n", encoding="utf-8")
    with pytest.raises(fs.InputError, match=r"country.yaml.*population.households.*294,000,000 households.*"
                                            r"--households"):
        Simulation(fs.load_scenario(path), seed=1)
    run = fs.run(path, households=300, seed=1).summary
    assert run["households"].iloc[0] == pytest.approx(294e6, rel=0.05)  # 300 households weighted to the total
