"""Budgets bind, rationing follows the stated priority, and every yuan is in the ledger."""
import numpy as np
import pandas as pd
import pytest

import fupin_sim as fs
from fupin_sim.errors import InputError
from fupin_sim.interventions import REGISTRY, parse
from fupin_sim.interventions.base import PRIORITY_RULES
from fupin_sim.interventions.funding import SOURCES, TO_HOUSEHOLDS
from fupin_sim.scenario import Scenario
from fupin_sim.results import Result, simulate

TO_PUBLIC = (*TO_HOUSEHOLDS, "insurance_margin", "overhead")


def scenario_with(interventions, budgets, years=(2016, 2019), households=3000, seed=5):
    data = {"name": "t", "population": {"preset": "inner_mongolia_county", "households": households},
            "years": list(years), "seed": seed, "interventions": interventions, "budgets": budgets}
    return Scenario.from_data(data, None)


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

    keys, draws = [np.array([2, 1, 1, 0, 1])], np.array([0.5, 0.1, 0.2, 0.9, 0.05], np.float32)
    assert list(priority_order(keys, lambda at: draws if at is None else draws[at], 5)) == [3, 4, 1, 2, 0]


@pytest.mark.parametrize("ties", [0.0, 0.05, 0.5])
def test_lex_order_is_lexsorts_order(ties):
    from fupin_sim.interventions.funding import lex_order

    rng = np.random.default_rng(11)
    n = 5000
    income = rng.normal(4000, 1500, n)
    repeated = rng.random(n) < ties  # a share of incomes copied from others: exact ties
    income[repeated] = rng.choice(income[~repeated], repeated.sum())
    flags = (rng.random(n) < 0.3).astype(np.int8)
    draws = rng.random(n).astype(np.float32)
    for keys in ([income, draws], [income, flags, draws], [flags, income, draws], [income]):
        assert list(lex_order(keys)) == list(np.lexsort(keys[::-1]))


def test_priority_head_matches_a_full_sort_and_draws_only_the_head():
    from fupin_sim.interventions.funding import priority_order

    rng = np.random.default_rng(3)
    n, limit = 20_000, 300
    flags = -(rng.random(n) < 0.3).astype(np.int8)
    income = np.round(rng.normal(4000, 1500, n), -2)  # many exact ties, for the draw to break
    draws = rng.random(n).astype(np.float32)
    asked = []

    def tie(at):
        asked.append(n if at is None else len(at))
        return draws if at is None else draws[at]

    order = priority_order([flags, income], tie, limit)
    assert list(order[:limit]) == list(np.lexsort([draws, income, flags])[:limit])
    assert asked and max(asked) < n // 10  # drawn for the head only


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
    from fupin_sim.simulation import CARRIED
    from fupin_sim.population.schema import NONPOOR

    state = State(fs.generate(sc.params, 6000, seed=5, year=2015), sc.params, CARRIED)
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


def test_cached_per_capita_income_is_always_current(monkeypatch):
    """The per-capita income the instruments rank by is kept between instruments and worked
    out again only for the households served since: with every instrument ranking by it and
    money short, it must equal a fresh computation at every use."""
    from fupin_sim.interventions.base import Context
    from fupin_sim.status import test_income

    cached, uses = Context.per_capita_income, []

    def checked(self, rows=None):
        out = cached(self, rows)
        fresh = test_income(self.state, self.p, rows=rows)
        assert np.array_equal(out, fresh, equal_nan=True)
        uses.append(len(out))
        return out

    monkeypatch.setattr(Context, "per_capita_income", checked)
    interventions = {name: {"priority": ["lowest_income"]} for name in sorted(REGISTRY)}
    budgets = {"pooled": {"source": "central_special", "instruments": "all", "amounts": 4e6},
               "bank": {"source": "bank_credit", "instruments": ["microloan"], "amounts": 2e6}}
    result = fs.run(scenario_with(interventions, budgets, years=(2016, 2019)))
    assert len(uses) > 4 * len(REGISTRY) // 2  # ranked by it in every year
    check_books(result)


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
    ({"interventions": {"relocation": {"capacity": -1}}},
     "interventions.relocation.capacity: expected households per 10,000 a year (a number >= 0), got -1"),
    ({"interventions": {"relocation": {"capacity": "few"}}},
     "interventions.relocation.capacity: expected households per 10,000 a year (a number >= 0), got 'few'"),
    ({"interventions": {"relocation": {"capacty": 40}}},
     "interventions.relocation.capacty: unknown key (did you mean 'capacity'?)"),
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


def test_a_capacity_spreads_an_instrument_over_the_years():
    """`capacity` (households per 10,000 a year: builders, staff) caps whom an instrument serves
    each year, so a one-off programme that money alone would mostly finish at once runs over
    several years; with a post's own limit, the lower one holds."""
    money = {"central_special": {"amounts": "unlimited"}}
    free = simulate(scenario_with({"relocation": {}}, money, households=4000), seed=1).summary["served_relocation"]
    capped = simulate(scenario_with({"relocation": {"capacity": 10}}, money, households=4000), seed=1).summary
    limit = 10 * capped["households"].to_numpy() / 1e4
    capped = capped["served_relocation"]
    assert (capped <= limit + 1e-9).all() and (capped > 0).all()  # some every year, never over the cap
    assert free.iloc[0] > 2 * limit[0]  # money alone moves more, sooner
    assert (capped.cumsum().to_numpy() <= free.cumsum().to_numpy() + 1e-9).all()
    posts = simulate(scenario_with({"public_welfare_post": {"capacity": 10}}, money, households=4000), seed=1).summary
    assert (posts["served_public_welfare_post"] <= 10 * posts["households"] / 1e4 + 1e-9).all()
    assert parse({"interventions": {"relocation": {"capacity": 0}}}, (2016, 2020), None).items[0].capacity == 0.0


def test_shares_that_do_not_add_up_are_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nyears: [2016, 2017]\nparameters: {population.income_shares: [0.5, 0.5, 0.1, 0.1]}\n",
                    encoding="utf-8")
    with pytest.raises(InputError, match="population.income_shares: shares add up to 1.2, not 1"):
        fs.load_scenario(path)


def test_one_amount_funds_every_simulated_year_and_columns_stay_complete():
    sc = fs.load_scenario("baseline").edit(households=2000, years=(2016, 2023))
    s = fs.run(sc, seed=1).summary
    assert not s.isna().any().any()
    assert (s.loc[s["year"] > 2020, "spending_industry_menu"] >= 0).all()
    assert (s.loc[s["year"] > 2020, "served_dibao"] > 0).all()  # scalar budgets and open schedules run on
    scheduled = fs.run("consolidation", households=2000, years=(2016, 2018), seed=1).summary
    assert (scheduled["served_monitoring_assistance"] == 0).all()  # scheduled for 2021-2025: inactive, zero


# ---------------------------------------------------------------- instrument scales ("× its budget")

def _simulate(sc, **scale):
    from fupin_sim.simulation import Simulation

    sim = Simulation(sc.edit(instrument_scale=scale))
    sim.run()
    return sim, Result.of(sim)


@pytest.fixture(scope="module")
def county():
    """The baseline at 2000 households and its unscaled run: microloans, solar and relocation
    use up their lines there, so their scales bind."""
    from fupin_sim.simulation import Simulation

    sc = fs.load_scenario("baseline").edit(households=2000, seed=1)
    sim = Simulation(sc)
    sim.run()
    return sc, sim, Result.of(sim)


def test_a_scaled_instrument_gets_its_factor_times_its_unscaled_budget(county):
    sc, plain, plain_result = county
    accounts = plain.programme.accounts
    lines = {ln.name: ln for ln in sc.programme.lines}
    for factor in (0.0, 0.5, 2.0):
        sim, result = _simulate(sc, microloan=factor, housing_renovation=factor)
        check_books(result)
        assert sim.reference.programme.accounts == accounts  # the reference is the unscaled run (common random numbers)
        budget = result.budget.set_index(["year", "line"])
        for year in range(2016, 2021):
            account = accounts[year]
            for (instrument, line) in account.drawn:
                if instrument not in ("microloan", "housing_renovation") or not np.isfinite(lines[line].amount(year)):
                    continue
                own = budget["available"].get((year, f"{line}[{instrument}]"), 0.0)
                # its own line: factor × what it drew, or its share of a shared line where more
                assert own == pytest.approx(factor * account.budget(instrument, line))
            for line in ("bank_credit", "central_special", "east_west", "provincial_special"):
                # the others keep what the line held unscaled, carry-overs included, less the scaled ones' budgets
                held = lines[line].amount(year) + account.brought.get(line, 0.0)
                taken = sum(account.budget(i, line) for i in ("microloan", "housing_renovation"))
                left = budget["available"].get((year, line), 0.0)
                assert left == pytest.approx(max(held - taken, 0.0))
        if factor == 0:
            assert (result.summary[["spending_microloan", "served_microloan", "loans_issued", "spending_housing_renovation",
                                    "served_housing_renovation"]] == 0).all().all()
            assert not result.ledger["instrument"].isin(["microloan", "housing_renovation"]).any()
    assert result.manifest["instrument_scale"] == {"microloan": 2.0, "housing_renovation": 2.0}


def test_factors_of_one_change_nothing(county):
    sc, _, plain = county
    ones = {i: 1.0 for i in sc.programme.budgeted()}
    sim, result = _simulate(sc, **ones)
    assert sim.reference is None and result.summary.equals(plain.summary)
    # through the earmarks with a factor a hair above one: the same households are served, only
    # the unspent hair of added money differs
    _, hair = _simulate(sc, **{i: 1.0 + 1e-9 for i in ones})
    # the unspent hair of added money differs, and a scaled run returns what the unscaled one carries over
    same = hair.summary.drop(columns=["unspent", "returned"])
    assert np.allclose(same.to_numpy(float), plain.summary.drop(columns=["unspent", "returned"]).to_numpy(float),
                       rtol=1e-12)
    assert (hair.summary["unspent"] >= plain.summary["unspent"] - 1e-6).all()


@pytest.mark.parametrize("instrument", ["microloan", "solar", "housing_renovation", "industry_menu"])
def test_more_scale_never_lowers_the_instruments_coverage(county, instrument):
    sc = county[0]
    served, first, spent = [], [], []
    for factor in (0.0, 0.25, 0.5, 1.0, 2.0, 3.0):
        s = _simulate(sc, **{instrument: factor})[1].summary
        served.append(s[f"served_{instrument}"].sum())
        first.append(s[f"served_{instrument}"].iloc[0])
        spent.append(s[f"spending_{instrument}"].sum())
    assert spent[0] == 0 and served[0] == 0
    for series in (served, first, spent):
        assert np.all(np.diff(series) >= -1e-6), (instrument, series)
    assert served[2] < served[3]  # at half its budget it serves fewer: these instruments are limited by money


def test_instrument_scales_are_deterministic(county):
    sc = county[0]
    a = _simulate(sc, microloan=0.5, industry_menu=1.7)[1]
    b = _simulate(sc, microloan=0.5, industry_menu=1.7)[1]
    assert a.summary.equals(b.summary) and a.ledger.equals(b.ledger) and a.budget.equals(b.budget)


@pytest.mark.parametrize("scale, message", [
    ({"microlon": 0.5}, "instrument_scale.microlon: unknown instrument 'microlon' (did you mean 'microloan'?)"),
    ({"microloan": -0.5}, "instrument_scale.microloan: expected a finite factor >= 0, got -0.5"),
    ({"microloan": float("nan")}, "instrument_scale.microloan: expected a finite factor >= 0, got nan"),
    ({"microloan": True}, "instrument_scale.microloan: expected a finite factor >= 0, got True"),
    ({"microloan": "2"}, "instrument_scale.microloan: expected a finite factor >= 0, got '2'"),
    ({"dibao": 0.5}, "instrument_scale.dibao: 'dibao' cannot be scaled: it is an entitlement, paid whatever is "
                     "due from unlimited line(s) ['civil_affairs']"),
])
def test_bad_instrument_scales_are_refused_clearly(county, scale, message):
    with pytest.raises(InputError) as err:
        county[0].edit(instrument_scale=scale, where="")
    assert str(err.value).startswith(message)
    if "factor" not in message:  # which names would do
        assert "instruments with a budget to scale: ['education_subsidy'" in str(err.value)


def test_lines_split_by_area_cannot_be_scaled_per_instrument():
    budgets = {"central_special": {"instruments": ["industry_menu"], "amounts": 3e6,
                                   "allocation": {"rule": "deep_poverty"}},
               "local_special": {"instruments": ["solar"], "amounts": 1e6}}
    sc = scenario_with({"industry_menu": {}, "solar": {}, "skills_training": {}}, budgets, households=500)
    assert sc.programme.budgeted() == ["solar"]
    with pytest.raises(InputError, match="industry_menu: 'industry_menu' cannot be scaled: line\\(s\\) "
                                         "\\['central_special'\\] are split by area"):
        sc.edit(instrument_scale={"industry_menu": 2}, where="")
    with pytest.raises(InputError, match="'skills_training' cannot be scaled: no budget line pays for it"):
        sc.edit(instrument_scale={"skills_training": 2}, where="")
