"""Calibration: targets and spec validation, parameter recovery, the trial log and resume,
n_jobs independence, the fitted scenario, ABC draws, the command line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fupin_sim as fs
from fupin_sim.cli import cmd_calibrate, parser
from fupin_sim.experiments.calibrate import (DERIVED, calibrate, load_spec, read_targets, simulate_moments,
                                 synthetic_targets, target_z)
from fupin_sim.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
TRUTH = {"income.wage_growth": 0.05, "income.operating_growth": 0.08}


def _spec(**over) -> dict:
    spec = {"name": "rec", "scenario": "baseline", "households": 300, "years": [2016, 2019], "targets": ["t.csv"],
            "parameters": {"income.wage_growth": {"range": [0.0, 0.2]},
                           "income.operating_growth": {"range": [-0.05, 0.15]}},
            "replicates": 1, "seed": 3,
            "optimizer": {"popsize": 5, "maxiter": 6, "seed": 1, "polish": "nelder-mead", "polish_maxiter": 20}}
    spec.update(over)
    return spec


TARGET_ROWS = ("year,metric,value,sd\n2017,income_wage_per_capita,1,1\n2019,income_wage_per_capita,1,1\n"
               "2017,income_operating_per_capita,1,1\n2019,income_operating_per_capita,1,1\n"
               "2019,registered_persons_share,0.1,0.1\n")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A folder with targets simulated at TRUTH (the spec's own seeds: noise-free recovery)."""
    d = tmp_path_factory.mktemp("cal")
    (d / "t.csv").write_text(TARGET_ROWS)
    t = synthetic_targets(load_spec(_spec(), base_dir=d), TRUTH)
    t.to_csv(d / "t.csv", index=False)
    return d


@pytest.fixture(scope="module")
def fitted(synthetic):
    out = synthetic / "out"
    return calibrate(load_spec(_spec(), base_dir=synthetic), out)


# ---- targets --------------------------------------------------------------------------

def test_bundled_targets_and_specs_validate():
    for name in ("jiangsu", "inner_mongolia"):
        spec = load_spec(ROOT / "calibration" / f"{name}.yaml")
        assert len(spec.targets) >= 4
        assert set(spec.targets["source"].str.len() > 0) == {True}
        assert (spec.targets["sd"] > 0).all()


def _write(d: Path, text: str) -> Path:
    (d / "t.csv").write_text(text)
    return d


def test_unknown_metric_is_an_error_with_a_close_match(tmp_path):
    _write(tmp_path, "year,metric,value,sd\n2018,registered_persons_ration,0.2,0.05\n")
    with pytest.raises(InputError, match=r"row 2.*unknown metric.*did you mean 'registered_persons_ratio'"):
        load_spec(_spec(), base_dir=tmp_path)


def test_year_outside_the_run_is_an_error(tmp_path):
    _write(tmp_path, "year,metric,value,sd\n2020,registered_persons_ratio,0.2,0.05\n")
    with pytest.raises(InputError, match="year 2020 is outside the simulated years 2016-2019"):
        load_spec(_spec(), base_dir=tmp_path)


@pytest.mark.parametrize("text, message", [
    ("year,metric,value\n2018,exits,1\n", "lacks column"),
    ("year,metric,value,sd\n2018,exits,1,0\n", "sd: must be above 0"),
    ("year,metric,value,sd\n2018,exits,abc,1\n", "value: expected a finite number"),
    ("year,metric,value,sd,colour\n2018,exits,1,1,red\n", "unknown column 'colour'"),
    ("year,metric,value,sd\n2018,exits,1,1\n2018,exits,2,1\n", "given twice"),
    ("year,metric,value,sd,bound\n2018,exits,1,1,lowr\n", "bound: 'lowr' is not one of.*did you mean 'lower'"),
])
def test_malformed_targets(tmp_path, text, message):
    _write(tmp_path, text)
    with pytest.raises(InputError, match=message):
        read_targets([tmp_path / "t.csv"])


def test_a_bound_is_penalised_only_when_crossed(tmp_path):
    """A figure that is a lower bound (e.g. industry exits, one route among several) says
    nothing about how far above it the truth lies: only a shortfall counts."""
    _write(tmp_path, "year,metric,value,sd,bound\n2018,exits,10,2,lower\n2019,exits,10,2,upper\n"
                     "2017,exits,10,2,\n")
    t = read_targets([tmp_path / "t.csv"])
    assert list(t["bound"]) == ["lower", "upper", "point"]
    assert list(target_z(np.array([14.0, 14.0, 14.0]), t)) == [0.0, 2.0, 2.0]
    assert list(target_z(np.array([6.0, 6.0, 6.0]), t)) == [-2.0, 0.0, -2.0]


@pytest.mark.slow
def test_a_comparison_figure_is_shown_but_not_fitted(synthetic, fitted, tmp_path):
    """A target row with weight 0 appears in the fit table with its z, marked 'comparison',
    and leaves the distance, the best point and the counts of fitted targets unchanged."""
    from fupin_sim.experiments.calibrate import fit_counts

    t = pd.read_csv(synthetic / "t.csv")
    t["weight"] = t.get("weight", 1.0)
    extra = pd.DataFrame([{"year": 2018, "metric": "income_wage_per_capita", "value": 1.0, "sd": 1.0,
                           "weight": 0.0}])
    pd.concat([t, extra], ignore_index=True).to_csv(tmp_path / "t.csv", index=False)
    with_comparison = calibrate(load_spec(_spec(), base_dir=tmp_path), tmp_path / "out")
    assert with_comparison.distance == fitted.distance
    assert with_comparison.best == fitted.best
    row = with_comparison.fit.set_index(["year", "metric"]).loc[(2018, "income_wage_per_capita")]
    assert row["role"] == "comparison" and row["contribution"] == 0 and abs(row["z"]) > 2
    assert fit_counts(with_comparison.fit) == {**fit_counts(fitted.fit), "comparisons": 1}


def test_missing_targets_file(tmp_path):
    with pytest.raises(InputError, match="targets file not found"):
        load_spec(_spec(targets=["nope.csv"]), base_dir=tmp_path)


# ---- parameters -------------------------------------------------------------------------

@pytest.mark.parametrize("params, message", [
    ({"income.wage_growth": {"range": [0.2, 0.1]}}, "low 0.2 is above high 0.1"),
    ({"income.wage_grwth": {"range": [0.0, 0.1]}}, "unknown parameter.*did you mean 'income.wage_growth'"),
    ({"population.income_ratio": {"range": [0.5, 1.0]}}, "population.income_ratio: is a list.*element"),
    ({"poverty_line.national": {"range": [2000, 4000]}}, r"poverty_line.national: is dated.*element: \[year\].*scale: true"),
    ({"poverty_line.national": {"range": [2000, 4000], "element": [2009]}}, r"index \[2009\] does not point to a number"),
    ({"status.line": {"range": [0, 1]}}, "status.line: is a text parameter"),
    ({"register.identification": {"range": [0.5, 1.5]}}, r"high bound 1.5 is not allowed.*outside \[0, 1\]"),
    ({"population.income_ratio": {"range": [0.5, 1.0], "element": [5, 0]}}, "does not point to a number"),
    ({"income.wage_growth": {"range": [0.0, 0.1], "step": 2}}, "unknown key"),
])
def test_bad_parameters(tmp_path, params, message):
    _write(tmp_path, TARGET_ROWS)
    with pytest.raises(InputError, match=message):
        load_spec(_spec(parameters=params), base_dir=tmp_path)


@pytest.mark.parametrize("abc, message", [
    ({"rounds": 0}, r"abc.rounds"),
    ({"tolerance": 0}, r"abc.tolerance: expected a distance above 0, got 0.0"),
    ({"quantile": 1.5}, r"abc.quantile: expected a share in \(0, 1\], got 1.5"),
    ({"round": 3}, r"abc.*unknown key.*did you mean 'rounds'"),
])
def test_bad_abc_settings(tmp_path, abc, message):
    _write(tmp_path, TARGET_ROWS)
    with pytest.raises(InputError, match=message):
        load_spec(_spec(abc=abc), base_dir=tmp_path)


def test_element_and_scale_overrides(tmp_path):
    _write(tmp_path, TARGET_ROWS)
    spec = load_spec(_spec(parameters={"population.income_ratio": {"range": [0.5, 1.2], "element": [0, 0]},
                                       "health.admission_rate": {"range": [0.5, 1.5], "scale": True}}),
                     base_dir=tmp_path)
    over = spec.overrides([0.7, 2.0])
    base = spec.scenario.params
    assert over["population.income_ratio"][0][0] == 0.7
    assert over["population.income_ratio"][1:] == base["population.income_ratio"].value[1:]
    assert over["health.admission_rate"] == [2 * v for v in base["health.admission_rate"].value]
    # one year of a dated value: the exit plan's yearly share, the other years kept
    dated = load_spec(_spec(parameters={"register.exit_plan": {"range": [0.1, 0.6], "element": [2016]}}),
                      base_dir=tmp_path)
    plan = dated.overrides([0.45])["register.exit_plan"]
    assert plan == {**base["register.exit_plan"].value, 2016: 0.45} and dated.labels == ["register.exit_plan[2016]"]


def test_several_numbers_of_one_table(tmp_path):
    _write(tmp_path, TARGET_ROWS)
    spec = load_spec(_spec(parameters={"population.income_ratio": [{"range": [0.5, 1.2], "element": [0, 0]},
                                                                   {"range": [0.1, 0.6], "element": [0, 1]}]}),
                     base_dir=tmp_path)
    assert spec.labels == ["population.income_ratio[0][0]", "population.income_ratio[0][1]"]
    over = spec.overrides([0.7, 0.2])
    assert over["population.income_ratio"][0] == [0.7, 0.2]
    assert over["population.income_ratio"][1:] == spec.scenario.params["population.income_ratio"].value[1:]
    twice = [{"range": [0.5, 1.2], "element": [0, 0]}, {"range": [0.6, 1.0], "element": [0, 0]}]
    with pytest.raises(InputError, match=r"population.income_ratio\[0\]\[0\] is fitted twice"):
        load_spec(_spec(parameters={"population.income_ratio": twice}), base_dir=tmp_path)
    with pytest.raises(InputError, match=r"parameters.population.income_ratio\[0\].*element"):
        load_spec(_spec(parameters={"population.income_ratio": [{"range": [0.5, 1.2]}]}), base_dir=tmp_path)


def test_derived_moments_are_consistent():
    sc = fs.load_scenario("jiangsu").edit(households=300)
    m = simulate_moments(sc, 4)
    assert set(DERIVED) <= set(m.columns)
    summary = fs.run(sc, seed=4).summary
    pd.testing.assert_frame_equal(m[summary.columns], summary)  # the engine's own columns unchanged
    assert np.allclose(m["cum_exits_persons_share"], m["exits_persons_share"].cumsum())
    assert ((m["cum_development_exit_share"] >= 0) & (m["cum_development_exit_share"] <= 1)).all()
    assert (m["exits_development_persons_share"] <= m["exits_persons_share"] + 1e-12).all()
    # the adjusted register (the starting one and its entrants) is the starting register scaled up
    scale = m["cum_exits_persons_share"] / m["cum_exits_persons_of_adjusted"]  # adjusted / starting register
    assert np.allclose(scale, scale.iloc[0]) and scale.iloc[0] > 1  # it had entrants
    assert np.allclose(m["exits_persons_of_adjusted"] * scale, m["exits_persons_share"])
    assert np.allclose(m["registered_persons_of_adjusted"] * scale, m["registered_persons_ratio"])
    assert np.allclose(m["cum_exits_persons_of_adjusted"], m["exits_persons_of_adjusted"].cumsum())


def test_development_exits_do_not_count_the_backstop():
    """An exit carried by this year's programme transfers (低保 and the like: 兜底) is not a
    development exit; without instruments every exit is one, pensions and remittances included."""
    sc = fs.load_scenario("jiangsu").edit(households=1000)
    m = simulate_moments(sc, 4)
    assert (m["cum_development_exit_share"] < 1).all()
    none = simulate_moments(fs.load_scenario("no_policy").edit(households=500), 4)
    assert np.allclose(none["exits_development_persons_share"], none["exits_persons_share"])


# ---- fitting ------------------------------------------------------------------------------

def test_parameter_recovery(fitted):
    """Known values, wide bounds, tiny population: recovered within 0.005 (2.5% of the ranges)."""
    for k, v in TRUTH.items():
        assert abs(fitted.best[k] - v) < 0.005, (k, fitted.best[k])
    assert fitted.distance < 0.5
    assert fitted.fit["within_1sd"].all()


def test_outputs_and_fitted_scenario_runs(fitted):
    out = fitted.out
    for name in ("calibration.json", "trials.jsonl", "fit.csv", "fitted.yaml", "result.json"):
        assert (out / name).is_file(), name
    sc = fs.load_scenario(out / "fitted.yaml")
    assert sc.params["income.wage_growth"].value == pytest.approx(fitted.best["income.wage_growth"])
    assert sc.params["income.wage_growth"].source.startswith("calibrated")
    assert sc.years == (2016, 2019)
    summary = fs.run(sc.edit(households=200), seed=1).summary
    assert list(summary["year"]) == [2016, 2017, 2018, 2019]


def test_an_instruments_rule_is_calibrated_and_written_under_its_entry(synthetic, tmp_path):
    """A rule (`interventions.<label>.<rule>`) is fitted like a parameter; the fitted
    scenario sets it under `interventions:` with its source, and runs with it."""
    import yaml

    spec = _spec(parameters={"income.wage_growth": {"range": [0.0, 0.2]},
                             "interventions.industry_linkage.annual_gain": {"range": [0, 4800]}},
                 optimizer={"popsize": 3, "maxiter": 1, "seed": 1, "polish": "none"})
    r = calibrate(load_spec(spec, base_dir=synthetic), tmp_path / "out")
    data = yaml.safe_load((tmp_path / "out" / "fitted.yaml").read_text())
    leaf = data["interventions"]["industry_linkage"]["rules"]["annual_gain"]
    assert leaf["value"] == r.best["interventions.industry_linkage.annual_gain"]
    assert leaf["source"].startswith("calibrated") and "interventions.industry_linkage.annual_gain" not in data["parameters"]
    sc = fs.load_scenario(tmp_path / "out" / "fitted.yaml")
    assert sc.parameter("interventions.industry_linkage.annual_gain").value == leaf["value"]
    assert [it.label for it in sc.programme.items] == [it.label for it in fs.load_scenario("baseline").programme.items]
    fs.run(sc.edit(households=200, years=(2016, 2017)), seed=1)


def test_a_budget_line_is_calibrated_and_written_under_its_line(synthetic, tmp_path):
    import yaml

    spec = _spec(parameters={"income.wage_growth": {"range": [0.0, 0.2]},
                             "budgets.risk_compensation.amounts": {"range": [0, 9e6]}},
                 optimizer={"popsize": 3, "maxiter": 1, "seed": 1, "polish": "none"})
    r = calibrate(load_spec(spec, base_dir=synthetic), tmp_path / "out")
    data = yaml.safe_load((tmp_path / "out" / "fitted.yaml").read_text())
    assert data["budgets"] == {"risk_compensation": {"amounts": r.best["budgets.risk_compensation.amounts"]}}
    sc = fs.load_scenario(tmp_path / "out" / "fitted.yaml")
    line = next(ln for ln in sc.programme.lines if ln.name == "risk_compensation")
    base = next(ln for ln in fs.load_scenario("baseline").programme.lines if ln.name == "risk_compensation")
    assert line.every_year == r.best["budgets.risk_compensation.amounts"] and line.instruments == base.instruments


def test_trial_log_resume_reuses_every_evaluation(synthetic, fitted):
    lines = (fitted.out / "trials.jsonl").read_text().splitlines()
    assert len(lines) == fitted.manifest["execution"]["evaluated"]
    rec = json.loads(lines[0])
    assert {"params", "moments", "distance", "key", "replicates"} <= set(rec)
    again = calibrate(load_spec(_spec(), base_dir=synthetic), fitted.out)
    assert again.manifest["execution"]["evaluated"] == 0
    assert again.best == fitted.best and again.distance == fitted.distance


@pytest.mark.slow
def test_killed_calibration_resumes_without_redoing_finished_trials(synthetic, fitted, tmp_path):
    import shutil

    out = tmp_path / "killed"
    shutil.copytree(fitted.out, out)
    lines = (out / "trials.jsonl").read_text().splitlines()
    keep = len(lines) // 2
    (out / "trials.jsonl").write_text("\n".join(lines[:keep]) + "\n" + lines[keep][: len(lines[keep]) // 2])
    again = calibrate(load_spec(_spec(), base_dir=synthetic), out)
    assert again.manifest["execution"]["evaluated"] == len(lines) - keep
    assert again.best == fitted.best


@pytest.mark.slow
def test_results_do_not_depend_on_n_jobs(synthetic, fitted):
    spec = _spec(optimizer={"popsize": 5, "maxiter": 2, "seed": 1, "polish": "none"})
    one = calibrate(load_spec(spec, base_dir=synthetic), None, n_jobs=1)
    two = calibrate(load_spec(spec, base_dir=synthetic), None, n_jobs=2)
    assert one.best == two.best and one.distance == two.distance


def test_folder_of_another_calibration_is_refused(synthetic, fitted):
    with pytest.raises(InputError, match="holds a calibration of other runs"):
        calibrate(load_spec(_spec(households=301), base_dir=synthetic), fitted.out)


# ---- command line -----------------------------------------------------------------------

def test_cli(synthetic, tmp_path, capsys):
    import yaml

    spec = _spec(optimizer={"popsize": 3, "maxiter": 1, "seed": 1, "polish": "none"},
                 targets=[str(synthetic / "t.csv")])
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    args = parser().parse_args(["calibrate", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "o")])
    assert cmd_calibrate(args) == 0
    assert "targets within 1 sd" in capsys.readouterr().out
    spec["parameters"] = {"income.wage_growth": {"range": [0.3, 0.1]}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(spec))
    args = parser().parse_args(["calibrate", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "o2")])
    with pytest.raises(InputError, match="bad.yaml: parameters.income.wage_growth.range"):
        cmd_calibrate(args)
    assert not (tmp_path / "o2").exists()


# ---- the bundled calibrations -----------------------------------------------------------

@pytest.mark.parametrize("name", ["jiangsu", "inner_mongolia"])
def test_bundled_fits_reproduce_their_targets(name):
    """The committed fitted scenarios (calibration/fitted/) reproduce the fit tables of
    calibration/README.md at the specs' own households and seeds: every fitted target within
    2 sd, the specs' tolerance (Jiangsu's all within 1 sd). Inner Mongolia's national income
    series is a comparison (weight 0): in the table, out of the distance."""
    from fupin_sim.experiments.draws import read_draws, scenarios_over
    from fupin_sim.experiments.calibrate import Evaluator, fit_counts, fit_table

    spec = load_spec(ROOT / "calibration" / f"{name}.yaml")
    fitted = fs.load_scenario(ROOT / "calibration" / "fitted" / f"{name}.yaml")
    x = []
    for p in spec.parameters:
        value = fitted.params[p.path].value
        for i in p.element or ():
            value = value[i]
        x.append(value)
    ev = Evaluator(spec, None)
    fit = fit_table(spec, ev, ev.records([x])[0])
    counts = fit_counts(fit)
    shown = fit[["year", "metric", "observed", "fitted", "z", "role"]]
    assert counts["within_2sd"] == counts["targets"] >= 3, shown
    if name == "jiangsu":
        assert counts["within_1sd"] == counts["targets"] and counts["comparisons"] == 0, shown
    else:
        compared = fit[fit["role"] == "comparison"]
        assert list(compared["metric"].unique()) == ["income_per_capita_filed"], shown
        assert (compared["contribution"] == 0).all()
    draws = read_draws(ROOT / "calibration" / "fitted" / f"{name}_draws.csv")
    assert len(draws) >= 20 and len(scenarios_over(fitted, draws)) == len(draws)  # the kept draws fit it
