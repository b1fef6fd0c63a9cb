"""Budgets bind, rationing follows the stated priority, and every yuan is in the ledger."""
import copy

import numpy as np
import pandas as pd
import pytest

import fupin_sim as fs
from fupin_sim.errors import InputError
from fupin_sim.interventions import REGISTRY, parse
from fupin_sim.interventions.base import PRIORITY_RULES
from fupin_sim.interventions.funding import SOURCES, TO_HOUSEHOLDS
from fupin_sim.scenario import _build

TO_PUBLIC = (*TO_HOUSEHOLDS, "insurance_margin", "overhead")


def scenario_with(interventions, budgets, years=(2016, 2019), households=3000, seed=5):
    data = {"name": "t", "population": {"preset": "inner_mongolia_county", "households": households},
            "years": list(years), "seed": seed, "interventions": interventions, "budgets": budgets}
    return _build(data, None)


def check_books(result):
    """Spending never exceeds a line; the ledger adds up to the spending; nothing is lost."""
    budget, ledger, summary = result.budget, result.ledger, result.summary
    finite = budget.dropna(subset=["available"])
    assert (finite["spent"] <= finite["available"] * (1 + 1e-12) + 1e-6).all()
    assert (finite["unspent"] >= -1e-6).all()
    assert np.allclose(finite["spent"] + finite["unspent"], finite["available"])
    public = ledger[ledger["category"].isin(TO_PUBLIC)]
    by_line = public.groupby(["year", "line"])["amount"].sum()
    loans = ledger[ledger["category"] == "loan"].groupby(["year", "line"])["amount"].sum()
    spent = pd.concat([by_line, loans]).groupby(level=[0, 1]).sum()
    for row in finite.itertuples():
        assert spent.get((row.year, row.line), 0.0) == pytest.approx(row.spent, abs=1e-3)
    per_year = public.groupby("year")["amount"].sum().reindex(summary["year"], fill_value=0.0)
    assert np.allclose(per_year.to_numpy(), summary["spending"].to_numpy(), atol=1e-3)
    assert set(ledger["category"]) <= set(TO_PUBLIC) | {"loan"}


def test_rationing_serves_the_lowest_incomes_first():
    budgets = {"central_special": {"instruments": ["industry_menu"], "amounts": 2_000_000}}
    result = fs.run(scenario_with({"industry_menu": {"priority": "lowest_income"}}, budgets, years=(2016, 2016)),
                    panel=True)
    assert result.budget["unspent"].iloc[0] < 1600 * 3 * 40000 / 3000  # less than one household's cost is left
    assert 0 < result.summary["served_industry_menu"].iloc[0] < 2_000_000 / 1600


def test_strict_priority_and_common_random_tie_breaks():
    from fupin_sim.interventions.funding import priority_order

    keys = [np.array([2, 1, 1, 0, 1]), np.array([0.5, 0.1, 0.2, 0.9, 0.05], np.float32)]
    assert list(priority_order(keys, 5)) == [3, 4, 1, 2, 0]


def test_more_budget_never_lowers_coverage():
    served = []
    for amount in (5e5, 2e6, 8e6, 3e7):
        budgets = {"central_special": {"instruments": ["industry_menu"], "amounts": amount}}
        s = fs.run(scenario_with({"industry_menu": {}}, budgets)).summary
        served.append(s["served_industry_menu"].sum())
    assert served == sorted(served) and served[0] < served[-1]


def test_deep_poverty_areas_get_more_per_poor_person():
    budgets = {"central_special": {"instruments": ["dibao"], "amounts": 3_000_000,
                                   "allocation": {"rule": "deep_poverty", "bonus": 0.1, "per_area_fixed": 0,
                                                  "per_poor_person": 1000}}}
    sc = scenario_with({"dibao": {}}, budgets, years=(2016, 2016), households=6000)
    result = fs.run(sc)
    check_books(result)
    from fupin_sim.interventions.funding import BudgetLine, _allocate
    from fupin_sim.population.state import State
    from fupin_sim.population.schema import NONPOOR

    state = State(fs.generate(sc.params, 6000, seed=5, year=2015), sc.params)
    line = BudgetLine("x", "central_special", None, {2016: 3e6}, sc.programme.lines[0].allocation)
    split = _allocate(line, 3e6, state)
    h = state.h
    poor = np.bincount(h["village"], weights=h["weight"] * h["size"] * (h["status"] != NONPOOR))
    deep = np.bincount(h["village"], weights=h["deep_poverty_area"]) > 0
    per_poor = split / np.maximum(poor, 1e-9)
    assert split.sum() == pytest.approx(3e6)
    assert per_poor[deep & (poor > 0)].min() > per_poor[~deep & (poor > 0)].max()


@pytest.mark.parametrize("trial", range(12))
def test_random_programmes_balance_to_the_yuan(trial):
    rng = np.random.default_rng(trial)
    names = sorted(REGISTRY)
    chosen = list(rng.choice(names, size=rng.integers(2, 9), replace=False))
    interventions = {}
    for name in chosen:
        entry = {"priority": list(rng.choice(PRIORITY_RULES, size=rng.integers(1, 3), replace=False))}
        if rng.random() < 0.3:
            entry["overhead_share"] = float(rng.uniform(0, 0.2))
        interventions[name] = entry
    budgets = {}
    for i, source in enumerate(rng.choice([s for s in SOURCES if s != "bank_credit"], size=3, replace=False)):
        share = list(rng.choice(chosen, size=rng.integers(1, len(chosen) + 1), replace=False))
        amount = "unlimited" if rng.random() < 0.2 else float(rng.choice([0, 1e5, 1e6, 1e7]))
        budgets[f"line{i}"] = {"source": str(source), "instruments": share if rng.random() < 0.7 else "all",
                               "amounts": amount}
    if "microloan" in chosen:
        budgets["bank"] = {"source": "bank_credit", "instruments": ["microloan"], "amounts": float(rng.choice([1e6, 1e7]))}
    result = fs.run(scenario_with(interventions, budgets, seed=trial))
    check_books(result)
    assert np.isfinite(result.summary.select_dtypes("number").to_numpy()).all()


def test_bundled_consolidation_books_balance():
    check_books(fs.run("consolidation", households=3000, seed=1))


@pytest.mark.parametrize("data, message", [
    ({"interventions": {"dibo": {}}}, "interventions.dibo: unknown instrument 'dibo' (did you mean 'dibao'?)"),
    ({"interventions": {"dibao": {"rule": {}}}}, "interventions.dibao.rule: unknown key (did you mean 'rules'?)"),
    ({"interventions": {"dibao": {"rules": {"exclusion_error": 1.4}}}},
     "interventions.dibao.rules.exclusion_error: 1.4 is outside [0, 1] for unit 'probability'"),
    ({"interventions": {"dibao": {"rules": {"standrd": 5000}}}},
     "interventions.dibao.rules.standrd: unknown parameter (did you mean 'standard'?)"),
    ({"interventions": {"dibao": {"priority": ["lowest_incom"]}}},
     "interventions.dibao.priority[0]: unknown priority rule 'lowest_incom' (did you mean 'lowest_income'?)"),
    ({"interventions": {"dibao": {"targets": "registerd"}}},
     "interventions.dibao.targets: unknown target group 'registerd' (did you mean 'registered'?)"),
    ({"interventions": {"dibao": {"years": [2010, 2018]}}},
     "interventions.dibao.years: years 2010-2018 fall outside the scenario's years 2016-2020"),
    ({"interventions": {"dibao": {}}, "budgets": {"civil_affairs": {"instruments": ["dibao"], "amounts": -5}}},
     "budgets.civil_affairs.amounts: a budget cannot be negative, got -5"),
    ({"interventions": {"dibao": {}}, "budgets": {"civil_affairs": {"instruments": ["dibao"], "amounts": {2030: 5}}}},
     "budgets.civil_affairs.amounts.2030: year 2030 is outside the scenario's years 2016-2020"),
    ({"interventions": {"dibao": {}}, "budgets": {"civil_afairs": {"amounts": 5}}},
     "budgets.civil_afairs: unknown funding source 'civil_afairs' (did you mean 'civil_affairs'?)"),
    ({"interventions": {"dibao": {}}, "budgets": {"civil_affairs": {"instruments": ["dibaoo"], "amounts": 5}}},
     "budgets.civil_affairs.instruments[0]: 'dibaoo' is not an intervention of this scenario (did you mean 'dibao'?)"),
    ({"interventions": {"dibao": {}}, "budgets": {"civil_affairs": {"instruments": ["dibao"]}}},
     "budgets.civil_affairs: missing 'amounts'"),
    ({"interventions": {"dibao": {}}, "budgets": {"civil_affairs": {"amounts": 5, "allocation": {"rule": "deep_povert"}}}},
     "budgets.civil_affairs.allocation.rule: unknown allocation rule 'deep_povert' (did you mean 'deep_poverty'?)"),
])
def test_bad_programmes_name_the_key_path(data, message):
    with pytest.raises(InputError) as err:
        parse(data, (2016, 2020), "s.yaml")
    assert str(err.value).startswith(f"s.yaml: {message}")


def test_shares_that_do_not_add_up_are_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nyears: [2016, 2017]\nparameters: {population.income_shares: [0.5, 0.5, 0.1, 0.1]}\n",
                    encoding="utf-8")
    with pytest.raises(InputError, match="population.income_shares: shares add up to 1.2, not 1"):
        fs.load_scenario(path)


def test_one_amount_funds_every_simulated_year_and_columns_stay_complete():
    sc = fs.load_scenario("baseline").with_options(households=2000, years=(2016, 2023))
    s = fs.run(sc, seed=1).summary
    assert not s.isna().any().any()
    assert (s.loc[s["year"] > 2020, "spending_industry_menu"] >= 0).all()
    assert (s.loc[s["year"] > 2020, "served_dibao"] > 0).all()  # scalar budgets and open schedules run on
    scheduled = fs.run("consolidation", households=2000, years=(2016, 2018), seed=1).summary
    assert (scheduled["served_monitoring_assistance"] == 0).all()  # scheduled for 2021-2025: inactive, zero
