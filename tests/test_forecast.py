"""Relapse-risk forecasts and their backtest (fupin_sim.experiments.forecast, fupin_sim.experiments.backtest)."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

import fupin_sim as fs
from fupin_sim.experiments.backtest import auc, backtest
from fupin_sim.errors import InputError
from fupin_sim.cli import cmd_backtest, cmd_forecast, parser
from fupin_sim.experiments.forecast import forecast, nan_quantiles, tier_of
from fupin_sim.simulation import Simulation

HORIZON = 3


@pytest.fixture(scope="module")
def scenario():
    return fs.load_scenario("consolidation")


@pytest.fixture(scope="module")
def register(scenario):
    """A simulated county written out at the end of 2020: registered, exited and others."""
    world = Simulation(scenario.edit(households=1200, years=(2016, 2020)), seed=11)
    world.run()
    return world.state.to_population()


@pytest.fixture(scope="module")
def result(register, scenario):
    return forecast(register, scenario, HORIZON, 12, seed=5)


def test_probabilities_in_unit_interval_and_monotone_in_horizon(result, register):
    t = result.table
    assert len(t) == len(register.households)
    assert (t["household_id"].to_numpy() == register.households["household_id"]).all()
    p = t[[f"p_within_{k}" for k in range(1, HORIZON + 1)]].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    assert (np.diff(p, axis=1) >= 0).all()
    assert 0 < p[:, -1].mean() < 1
    assert set(t["outcome"]) <= {"relapse", "new_poverty", "still_poor"}
    assert set(t["status"]) >= {"exited", "nonpoor"}
    ok = t["income_pc_final_q10"].notna()
    assert (t.loc[ok, "income_pc_final_q10"] <= t.loc[ok, "income_pc_final_q90"] + 1e-6).all()


def test_tiers_and_drivers(result):
    t = result.table
    p = t[f"p_within_{HORIZON}"]
    assert (t.loc[p >= 0.5, "tier"] == "high").all()
    assert (t.loc[(p >= 0.2) & (p < 0.5), "tier"] == "medium").all()
    assert (t.loc[p < 0.2, "tier"] == "low").all()
    tiers = tier_of(np.array([0.0, 0.19, 0.2, 0.49, 0.5, 1.0]))
    assert list(tiers) == ["low", "low", "medium", "medium", "high", "high"]
    drivers = t[[c for c in t.columns if c.startswith("driver_")]]
    never = p == 0
    assert drivers[never].isna().all().all()
    assert ((drivers[~never] >= 0) & (drivers[~never] <= 1)).all().all()
    assert (t.loc[never, "main_driver"] == "").all()
    # sorted by risk in risk.csv
    risk = result.risk
    assert risk[f"p_within_{HORIZON}"].is_monotonic_decreasing


def test_aggregate_counts_match_household_probabilities(result):
    """Mean over replicates of the weighted number fallen by year k = Σ weight × P(within k)."""
    t, agg = result.table, result.aggregate
    w = t["weight"].to_numpy()
    first = result.manifest["years"][0]
    for k in range(1, HORIZON + 1):
        row = agg[(agg["year"] == first + k - 1) & (agg["by"] == "all") & (agg["metric"] == "fallen")].iloc[0]
        assert row["mean"] == pytest.approx(float((t[f"p_within_{k}"] * w).sum()), rel=1e-9)
        assert row["q10"] <= row["q50"] <= row["q90"]
        parts = agg[(agg["year"] == first + k - 1) & (agg["by"] == "region_type") & (agg["metric"] == "fallen")]
        assert parts["mean"].sum() == pytest.approx(row["mean"], rel=1e-9)
        split = agg[(agg["year"] == first + k - 1) & (agg["by"] == "all")
                    & agg["metric"].isin(["relapse", "new_poverty", "still_poor"])]
        assert split["mean"].sum() == pytest.approx(row["mean"], rel=1e-9)
    relapse = agg[(agg["year"] == first + HORIZON - 1) & (agg["by"] == "all") & (agg["metric"] == "relapse")]
    exited = t["status"] == "exited"
    assert relapse["mean"].iloc[0] == pytest.approx(float((t.loc[exited, f"p_within_{HORIZON}"] * w[exited]).sum()))
    assert {"engine_relapses", "engine_new_poor"} <= set(agg["metric"])
    assert set(agg.loc[agg["by"] == "cause", "group"]) == set(fs.population.schema.CATEGORIES["cause"])


def test_reproducible_and_independent_of_n_jobs(register, scenario, result):
    again = forecast(register, scenario, HORIZON, 12, seed=5)
    pd.testing.assert_frame_equal(again.table, result.table)
    parallel = forecast(register, scenario, HORIZON, 12, seed=5, n_jobs=2)
    pd.testing.assert_frame_equal(parallel.table, result.table)
    pd.testing.assert_frame_equal(parallel.aggregate, result.aggregate)
    other = forecast(register, scenario, HORIZON, 12, seed=6)
    assert not other.table[f"p_within_{HORIZON}"].equals(result.table[f"p_within_{HORIZON}"])


def test_parameter_sets_cycle_over_replicates(register, scenario):
    base = forecast(register, scenario, 1, 4, seed=1)
    noop = forecast(register, scenario, 1, 4, seed=1, parameter_sets=[{}])
    pd.testing.assert_frame_equal(base.table, noop.table)
    harsh = forecast(register, scenario, 1, 4, seed=1, parameter_sets=[{}, {"income.wage_growth": -0.3}])
    assert harsh.table["p_within_1"].sum() > base.table["p_within_1"].sum()


def test_nan_quantiles_match_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(23, 300)).astype(np.float32)
    a[rng.random(a.shape) < 0.2] = np.nan
    a[:, 3] = np.nan
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanquantile(a.astype(np.float64), [0.1, 0.9], axis=0)
    for got, want in zip(nan_quantiles(a, (0.1, 0.9)), expected):
        np.testing.assert_allclose(got, want, equal_nan=True, rtol=1e-6)


def test_auc_is_mann_whitney():
    assert auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert auc(np.array([1.0, 1.0, 0.0]), np.array([1, 0, 0])) == 0.75  # a tie counts half
    assert np.isnan(auc(np.array([0.1, 0.2]), np.array([0, 0])))


# --------------------------------------------------------------------------- bad input

def test_horizon_must_be_positive(register, scenario):
    for h in (0, -2):
        with pytest.raises(InputError) as e:
            forecast(register, scenario, h, 2)
        assert str(e.value) == f"horizon: horizon must be at least 1 year, got {h}"


def test_register_year_outside_scenario_years(register, scenario):
    with pytest.raises(InputError) as e:
        forecast(register, scenario, 6, 2)
    assert str(e.value).endswith(
        "years: the register describes the end of 2020, so a 6-year forecast needs the years 2021-2026, "
        "outside the scenario's years 2016-2025; usable: registers from the end of 2015 to 2019")
    early = fs.generate(scenario.params, 50, seed=1, year=2010)
    with pytest.raises(InputError, match="needs the years 2011-2013, outside the scenario's years 2016-2025"):
        forecast(early, scenario, 3, 2)


def test_register_problems_are_surfaced(tmp_path, register, scenario):
    folder = fs.write_register(register, tmp_path / "reg")
    persons = pd.read_csv(folder / "persons.csv")
    lonely = int(pd.read_csv(folder / "households.csv")["household_id"].iloc[2])
    persons[persons["household_id"] != lonely].to_csv(folder / "persons.csv", index=False)
    with pytest.raises(InputError) as e:
        forecast(folder, scenario, 2, 2)
    assert str(e.value) == f"{folder / 'households.csv'}: row 4: household {lonely} has no members in persons.csv"

    missing = tmp_path / "missing"
    shutil.copytree(folder, missing)
    households = pd.read_csv(missing / "households.csv").drop(columns=["income_wage"])
    households.to_csv(missing / "households.csv", index=False)
    with pytest.raises(InputError, match="missing column 'income_wage'"):
        forecast(missing, scenario, 2, 2)

    hh = register.households.copy()
    del hh.columns["status"]
    with pytest.raises(InputError, match=r"register: the register's household table lacks column\(s\) \['status'\]"):
        forecast(fs.Population(hh, register.persons, register.year), scenario, 2, 2)
    empty = fs.Population(register.households, register.persons.take(np.flatnonzero(
        register.persons["household_id"] != register.households["household_id"][0])), register.year)
    with pytest.raises(InputError, match="1 household\\(s\\) have no members in the person table"):
        forecast(empty, scenario, 2, 2)


# --------------------------------------------------------------------------- command line

def _parse(argv):
    return parser().parse_args(argv)


def test_cli_forecast_writes_risk_aggregate_manifest(tmp_path, register, capsys):
    folder = fs.write_register(register, tmp_path / "reg")
    out = tmp_path / "fc"
    args = _parse(["forecast", str(folder), "--scenario", "consolidation", "--horizon", "2", "--reps", "3",
                   "--out", str(out)])
    assert cmd_forecast(args) == 0
    risk = pd.read_csv(out / "risk.csv", keep_default_na=False, na_values=[""])
    assert len(risk) == len(register.households) and risk["p_within_2"].is_monotonic_decreasing
    assert {"household_id", "status", "p_within_1", "p_within_2", "tier", "income_pc_final_mean",
            "income_pc_final_q10", "income_pc_final_q90", "main_driver"} <= set(risk.columns)
    agg = pd.read_csv(out / "aggregate.csv")
    assert set(agg.columns) == {"year", "by", "group", "metric", "mean", "q10", "q50", "q90"}
    man = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert man["register_year"] == 2020 and man["years"] == [2021, 2022] and man["reps"] == 3
    assert "written to" in capsys.readouterr().out


def test_cli_forecast_bad_horizon_is_an_input_error(tmp_path, register):
    folder = fs.write_register(register, tmp_path / "reg")
    args = _parse(["forecast", str(folder), "--horizon", "0", "--reps", "2", "--out", str(tmp_path / "x")])
    with pytest.raises(InputError, match="horizon must be at least 1 year, got 0"):
        cmd_forecast(args)
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- backtest

@pytest.fixture(scope="module")
def bt():
    # 8000 households: about 60 falls in 2021-23 now that relapse is rare (4000 gave 22)
    return backtest("consolidation", households=8000, t=2020, horizon=3, reps=100, seed=3)


@pytest.mark.slow
def test_backtest_forecast_beats_the_income_rule(bt):
    s = bt.scores.set_index(["population", "method"])
    for pop in ("all", "monitoring"):
        f, rule = s.loc[(pop, "forecast")], s.loc[(pop, "income_below_1.5x_line")]
        assert f["events"] >= 30
        assert f["auc"] > rule["auc"] + 0.05
        assert f["auc"] > s.loc[(pop, "any_rule"), "auc"]
        # near the Brier score of predicting 0 for everyone: falls are rare (about 1% in three years)
        # and the register shows incomes, not the persistent shocks that will partly revert
        assert 0 <= f["brier"] < 1.1 * f["prevalence"]
    assert set(bt.reliability["decile"]) == set(range(1, 11))
    mon = bt.monitoring.set_index(["population", "capacity", "method"])
    assert (mon.loc[("monitoring", "income_below_1.5x_line", "forecast"), "hits"]
            >= mon.loc[("monitoring", "income_below_1.5x_line", "income_below_1.5x_line"), "hits"])


def test_backtest_writes_scores(bt, tmp_path):
    out = bt.write(tmp_path / "bt")
    scores = pd.read_csv(out / "backtest.csv")
    assert {"forecast", "income_below_1.5x_line", "large_medical_bill", "lifted_by_transfers", "any_rule",
            "income_rank"} == set(scores["method"])
    assert (out / "forecast" / "risk.csv").exists() and (out / "monitoring.csv").exists()
    assert "forecast AUC" in bt.headline()


def test_backtest_cli_and_bad_years(tmp_path, capsys):
    args = _parse(["backtest", "--households", "300", "--year", "2021", "--horizon", "2", "--reps", "3",
                   "--seed", "1", "--out", str(tmp_path / "bt")])
    assert cmd_backtest(args) == 0
    assert (tmp_path / "bt" / "backtest.csv").exists()
    with pytest.raises(InputError, match="use t from 2015 to 2022"):
        backtest("consolidation", households=100, t=2024, horizon=3, reps=2)
