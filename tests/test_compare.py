import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import fupin_sim as fs
from fupin_sim.cli import main
from fupin_sim.experiments.compare import compare, crn_variance_reduction, paired_table, ratio_interval
from fupin_sim.errors import InputError

OPTIONS = {"households": 600, "years": (2016, 2018)}
CHANGE = {"income.wage_growth": 0.15}  # a real effect: wages grow faster than 9% a year


@pytest.fixture(scope="module")
def comparison():
    base = fs.load_scenario("baseline")
    return compare(base, {"noop": fs.load_scenario("baseline"),
                          "growth": base.edit(parameters=CHANGE)}, reps=4, **OPTIONS)


def test_a_no_op_alternative_differs_by_exactly_zero(comparison):
    t = comparison.table[comparison.table["alternative"] == "noop"]
    plain = t[t["base_mean"].notna()]
    assert len(plain) > 100
    assert (plain["mean_diff"] == 0).all() and (plain["se"] == 0).all()
    assert (plain["ci_low"] == 0).all() and (plain["ci_high"] == 0).all()
    assert (plain["base_mean"] == plain["alt_mean"]).all()
    noop = comparison.replicates[comparison.replicates["scenario"] == "noop"].drop(columns="scenario")
    base = comparison.replicates[comparison.replicates["scenario"] == "baseline"].drop(columns="scenario")
    pd.testing.assert_frame_equal(noop.reset_index(drop=True), base.reset_index(drop=True))


def test_paired_differences_use_the_same_seeds_and_students_t(comparison):
    rep = comparison.replicates
    assert rep.groupby("scenario")["seed"].apply(tuple).nunique() == 1  # every scenario ran on the same seeds
    base = rep[rep["scenario"] == "baseline"].set_index(["rep", "year"])
    alt = rep[rep["scenario"] == "growth"].set_index(["rep", "year"])
    d = (alt["fgt1"] - base["fgt1"]).xs(2016, level="year").to_numpy()
    row = comparison.table.query("alternative == 'growth' and metric == 'fgt1' and year == 2016").iloc[0]
    se = d.std(ddof=1) / 2
    t = stats.t.ppf(0.975, 3)
    assert row["mean_diff"] == pytest.approx(d.mean()) and row["se"] == pytest.approx(se)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((d.mean() - t * se, d.mean() + t * se))
    assert row["mean_diff"] < 0 and row["ci_high"] < 0  # faster growth, a smaller poverty gap


def test_totals_sum_flows_and_average_levels_and_name_the_headlines(comparison):
    t = comparison.table[comparison.table["alternative"] == "growth"]
    yearly = t[t["year"].isin([2016, 2017, 2018])]
    exits = t.query("metric == 'exits' and year == 'total'").iloc[0]
    assert exits["mean_diff"] == pytest.approx(yearly.query("metric == 'exits'")["mean_diff"].sum())
    assert t.query("metric == 'extra_exits'").iloc[0]["mean_diff"] == pytest.approx(exits["mean_diff"])
    relapses = t.query("metric == 'relapses' and year == 'total'").iloc[0]
    assert t.query("metric == 'relapses_averted'").iloc[0]["mean_diff"] == pytest.approx(-relapses["mean_diff"])
    fgt1 = t.query("metric == 'fgt1' and year == 'mean'").iloc[0]
    assert fgt1["mean_diff"] == pytest.approx(yearly.query("metric == 'fgt1'")["mean_diff"].mean())
    assert t.query("metric == 'poverty_gap_change_yuan'").iloc[0]["mean_diff"] < 0
    head = comparison.headline()
    assert list(head.query("alternative == 'growth'")["metric"][:4]) == [
        "extra_exits", "relapses_averted", "new_poor_averted", "poverty_gap_change_yuan"]


def _frames(exits, relapses, spending, fgt1=0.1):
    return pd.DataFrame({"year": [2020, 2021], "exits": exits, "relapses": relapses, "spending": spending,
                         "fgt1": [fgt1, fgt1], "persons": [1000.0, 1000.0], "poverty_line": [4000.0, 4000.0]})


def test_value_for_money_from_spending():
    base = [_frames([10, 10], [5, 5], [1e6, 1e6]), _frames([12, 8], [6, 4], [1e6, 1e6]),
            _frames([9, 11], [5, 5], [1e6, 1e6])]
    alt = [_frames([20, 20], [3, 3], [2e6, 2e6]), _frames([24, 18], [4, 2], [2e6, 2e6]),
           _frames([20, 18], [3, 3], [2e6, 2e6])]
    notes = []
    t = paired_table(base, {"more": alt}, notes).set_index("metric")
    t = t[t["year"] == "total"]
    extra = np.array([20, 22, 18])  # extra exits by replicate
    assert t.at["extra_exits", "mean_diff"] == 20 and t.at["extra_spending", "mean_diff"] == 2e6
    assert t.at["extra_exits_per_million_yuan", "mean_diff"] == pytest.approx(10)
    assert t.at["relapses_averted_per_million_yuan", "mean_diff"] == pytest.approx(2)
    assert t.at["cost_per_extra_exit", "mean_diff"] == pytest.approx(1e5)
    assert t.at["cost_per_relapse_averted", "mean_diff"] == pytest.approx(5e5)
    assert t.at["poverty_gap_closed_per_yuan", "mean_diff"] == 0  # same fgt1 in both
    lo, hi = t.at["cost_per_extra_exit", "ci_low"], t.at["cost_per_extra_exit", "ci_high"]
    assert lo < 1e5 < hi
    # Fieller's interval: cost is fixed (2e6), so it is 2e6 / (extra exits' t interval)
    half = stats.t.ppf(0.975, 2) * extra.std(ddof=1) / np.sqrt(3)
    assert (lo, hi) == pytest.approx((2e6 / (20 + half), 2e6 / (20 - half)))
    assert notes == []
    no_spending = paired_table([f.drop(columns="spending") for f in base],
                               {"more": [f.drop(columns="spending") for f in alt]}, notes)
    assert "extra_spending" not in set(no_spending["metric"])
    assert notes == ["value for money omitted: the yearly summary has no 'spending' column (no intervention "
                     "spends money in this engine version or these scenarios)"]


def test_a_ratio_whose_denominator_may_be_zero_has_no_bounded_interval():
    r, se, lo, hi = ratio_interval(np.array([1e6, 1e6, 1e6]), np.array([-2.0, 1.0, 4.0]))
    assert r == pytest.approx(1e6) and np.isnan(lo) and np.isnan(hi)


def test_common_random_numbers_shrink_the_variance_of_a_paired_difference():
    base = fs.load_scenario("baseline")
    faster = base.edit(parameters={"income.wage_growth": 0.10})  # from 9% a year
    out = crn_variance_reduction(base, faster, reps=8, households=800, years=(2016, 2018),
                                 metrics=["fgt0:mean", "fgt1:mean", "income_wage_per_capita:final"])
    assert list(out["metric"]) == ["fgt0:mean", "fgt1:mean", "income_wage_per_capita:final"]
    assert (out["variance_ratio"] > 10).all(), out
    assert (out["replicates_for_equal_ci"] > 5).all()
    assert (out["mean_diff_crn"] != 0).all()  # a real effect, not a no-op


def test_compare_does_not_depend_on_n_jobs():
    one = compare("baseline", {"growth": fs.load_scenario("baseline").edit(parameters=CHANGE)},
                  reps=3, n_jobs=1, **OPTIONS)
    two = compare("baseline", {"growth": fs.load_scenario("baseline").edit(parameters=CHANGE)},
                  reps=3, n_jobs=2, **OPTIONS)
    pd.testing.assert_frame_equal(one.table, two.table)


@pytest.mark.slow
def test_cli_compare_writes_the_table_manifest_and_figure(tmp_path, capsys):
    alt = tmp_path / "growth.yaml"
    alt.write_text("name: growth\nextends: baseline\nparameters: {income: {wage_growth: 0.15}}\n", encoding="utf-8")
    out = tmp_path / "cmp"
    assert main(["compare", "baseline", str(alt), "baseline", "--reps", "3", "--households", "500",
                 "--years", "2016-2017", "--seed", "9", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 paired replicate(s)" in printed and "extra_exits:" in printed and "baseline [2]:" in printed
    table = pd.read_csv(out / "comparison.csv")
    assert list(table.columns[:9]) == ["alternative", "year", "metric", "mean_diff", "se", "ci_low", "ci_high",
                                       "base_mean", "alt_mean"]
    assert set(table["alternative"]) == {"growth", "baseline [2]"}
    assert set(table["year"].astype(str)) >= {"2016", "2017", "total", "mean"}
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["replicates"] == 3 and manifest["seed"] == 9 and len(manifest["replicate_seeds"]) == 3
    assert set(manifest["alternatives"]) == {"growth", "baseline [2]"}
    assert (out / "comparison.png").stat().st_size > 20_000


def test_alternatives_on_other_years_are_refused(tmp_path, capsys):
    alt = tmp_path / "short.yaml"
    alt.write_text("name: short\nextends: baseline\nyears: [2016, 2017]\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        compare("baseline", alt, reps=2)
    assert str(err.value).startswith(f"{alt}: years: simulates 2016-2017 but the baseline 'baseline' simulates ")
    assert main(["compare", "baseline", "no_such_scenario", "--reps", "2", "--out", str(tmp_path / "x")]) == 2
    assert "scenario file not found" in capsys.readouterr().err
    with pytest.raises(InputError, match="reps must be a whole number of at least 1, got 0"):
        compare("baseline", "baseline", reps=0)


@pytest.mark.slow
def test_an_alternative_can_scale_an_instruments_budget(tmp_path, capsys):
    """{"scenario": ..., "instrument_scale": ...} is the scenario with those budgets scaled:
    no money for microloans issues no loans, replicate by replicate, against the same seeds."""
    from fupin_sim.experiments.seeds import replicate_seeds
    from fupin_sim.results import simulate

    base = fs.load_scenario("baseline")
    c = compare(base, {"no loans": {"scenario": base, "instrument_scale": {"microloan": 0}}}, reps=2, **OPTIONS)
    reps = c.replicates
    assert (reps.loc[reps["scenario"] == "no loans", "loans_issued"] == 0).all()
    assert reps.loc[reps["scenario"] == "baseline", "loans_issued"].sum() > 0
    sc = base.edit(**OPTIONS)
    seed = replicate_seeds(sc.seed, 2)[1]
    alone = simulate(sc.edit(instrument_scale={"microloan": 0.0}), seed=seed).summary
    run = reps[(reps["scenario"] == "no loans") & (reps["seed"] == seed)]
    assert np.allclose(run["exits"].to_numpy(), alone["exits"].to_numpy())
    assert c.manifest["alternatives"]["no loans"]["instrument_scale"] == {"microloan": 0.0}
    with pytest.raises(InputError, match=r"alternatives.x.instrument_scale.microlon: unknown instrument 'microlon' "
                                         r"\(did you mean 'microloan'\?\)"):
        compare(base, {"x": {"scenario": base, "instrument_scale": {"microlon": 2}}}, reps=2, **OPTIONS)
    assert main(["compare", "baseline", "baseline", "--instrument-scale", "microloan=0", "--households", "600",
                 "--years", "2016-2018", "--reps", "2", "--out", str(tmp_path / "cmp")]) == 0
    assert "baseline, microloan × 0:" in capsys.readouterr().out
