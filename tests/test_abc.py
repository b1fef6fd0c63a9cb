"""Parameter draws (fupin_sim/experiments/abc.py): ABC-SMC narrows them to parameter sets that fit,
and ensembles and forecasts run over them."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import fupin_sim as fs
from fupin_sim.experiments.draws import read_draws
from fupin_sim.experiments.calibrate import calibrate, load_spec, synthetic_targets
from fupin_sim.errors import InputError

TRUTH = {"income.wage_growth": 0.05, "income.operating_growth": 0.08}
TARGET_ROWS = ("year,metric,value,sd\n2017,income_wage_per_capita,1,1\n2019,income_wage_per_capita,1,1\n"
               "2017,income_operating_per_capita,1,1\n2019,income_operating_per_capita,1,1\n")


def _spec(rounds: int, **abc) -> dict:
    return {"name": "abc", "scenario": "baseline", "households": 300, "years": [2016, 2019], "targets": ["t.csv"],
            "parameters": {"income.wage_growth": {"range": [0.0, 0.2]},
                           "income.operating_growth": {"range": [-0.05, 0.15]}},
            "replicates": 1, "seed": 3, "optimizer": {"popsize": 3, "maxiter": 1, "seed": 1, "polish": "none"},
            "abc": {"samples": 40, "quantile": 0.25, "seed": 5, "rounds": rounds, **abc}}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("abc")
    (d / "t.csv").write_text(TARGET_ROWS)
    synthetic_targets(load_spec(_spec(1), base_dir=d), TRUTH).to_csv(d / "t.csv", index=False)
    return d


@pytest.fixture(scope="module")
def rejection(folder):
    return calibrate(load_spec(_spec(1), base_dir=folder), folder / "rejection")


@pytest.fixture(scope="module")
def smc(folder):
    return calibrate(load_spec(_spec(4), base_dir=folder), folder / "smc")


@pytest.mark.slow
def test_round_0_keeps_the_draws_within_the_tolerance(rejection):
    """Round 0: half the draws from the box, half around the best fit; those within the
    tolerance kept with importance weights (prior / the mixture they came from), then
    resampled. The tolerance is χ²(0.95, 4 targets) = 9.49 once two draws are within it."""
    every = pd.read_csv(rejection.out / "abc_draws.csv")
    draws = pd.read_csv(rejection.out / "draws.csv")
    (r0,) = rejection.manifest["abc"]["rounds"]
    assert r0["tolerance"] == rejection.manifest["abc"]["target_tolerance"] == pytest.approx(9.4877, abs=1e-4)
    assert len(every) == 40 and (every["accepted"] == (every["distance"] <= r0["tolerance"])).all()
    assert len(draws) == r0["accepted"] == len(rejection.draws) >= 2
    kept = every[every["accepted"]].set_index("draw")["weight"]
    assert kept.sum() == pytest.approx(1.0) and (every.loc[~every["accepted"], "weight"] == 0).all()
    counts = draws["particle"].value_counts()
    for particle, w in kept.items():  # systematic resampling: floor or ceil of n × weight copies
        assert np.floor(w * len(draws)) <= counts.get(particle, 0) <= np.ceil(w * len(draws))
    fs.load_scenario("baseline").edit(parameters=json.loads(draws["overrides"].iloc[0]))


@pytest.mark.slow
def test_smc_draws_fit_and_centre_on_the_truth(smc):
    """After four rounds the draws are within the tolerance and centre on the true values,
    with under half the box's spread."""
    rounds = smc.manifest["abc"]["rounds"]
    tolerance = smc.manifest["abc"]["target_tolerance"]
    assert len(rounds) == 4 and all(r["tolerance"] == tolerance for r in rounds)
    share = smc.manifest["abc"]["draws_within_2sd"]
    assert share == np.mean([(np.abs(_z(smc, row)) <= 2).all() for _, row in pd.read_csv(smc.out / "draws.csv").iterrows()])
    draws = pd.read_csv(smc.out / "draws.csv")
    assert (draws["distance"] <= tolerance).all()
    for label, truth in TRUTH.items():
        assert abs(draws[label].mean() - truth) < 0.01, (label, draws[label].mean())
        assert draws[label].std() < 0.5 * 0.2 / np.sqrt(12)  # half the box's sd
    every = pd.read_csv(smc.out / "abc_draws.csv")
    last = every[every["round"] == 3]
    assert last["weight"].sum() == pytest.approx(1.0)
    assert (last.loc[last["accepted"], "distance"] <= tolerance).all()


def _z(result, row) -> np.ndarray:
    """z of each target at a draw, from the trial log (what the manifest's share counts)."""
    from fupin_sim.experiments.calibrate import target_z

    spec = load_spec(_spec(4), base_dir=result.out.parent)
    logged = [json.loads(line) for line in (result.out / "trials.jsonl").read_text().splitlines()]
    rec = next(r for r in logged if np.allclose(r["x"], [row[k] for k in spec.labels], rtol=0, atol=1e-12))
    return target_z(np.asarray(rec["replicates"], float).mean(axis=0), spec.targets)


@pytest.mark.slow
def test_a_tolerance_out_of_reach_shrinks_round_by_round(folder):
    """With a tolerance no draw reaches, each round keeps the nearest quarter of its
    proposals, at most the last round's tolerance: the tolerances fall."""
    r = calibrate(load_spec(_spec(3, tolerance=1e-9), base_dir=folder), folder / "shrink")
    tolerances = [x["tolerance"] for x in r.manifest["abc"]["rounds"]]
    assert len(tolerances) == 3 and tolerances[0] > tolerances[1] > tolerances[2] > 1e-9
    assert r.manifest["abc"]["rounds"][0]["accepted"] == 10


def test_smc_reruns_from_its_trial_log(folder, smc):
    again = calibrate(load_spec(_spec(4), base_dir=folder), folder / "smc")
    assert again.manifest["execution"]["evaluated"] == 0
    pd.testing.assert_frame_equal(pd.read_csv(folder / "smc" / "draws.csv"), smc.draws.reset_index(drop=True),
                                  check_dtype=False)


def test_an_ensemble_runs_replicate_r_with_draw_r_mod_n(smc):
    draws = read_draws(smc.out)
    sc = fs.load_scenario("baseline").edit(households=300, years=(2016, 2018))
    result = fs.run(sc, reps=len(draws) + 2, draws=smc.out)
    reps = result.replicates
    assert (reps.groupby("rep")["draw"].first().to_numpy() == np.arange(len(draws) + 2) % len(draws)).all()
    man = result.manifest["parameter_draws"]
    assert man["count"] == len(draws) and man["used"] == len(draws) and man["sets"] == draws
    for r in (1, len(draws) + 1):  # the same draw and seed as a lone run
        seed = int(reps.loc[reps["rep"] == r, "seed"].iloc[0])
        alone = fs.run(sc.edit(parameters=draws[r % len(draws)]), seed=seed).summary
        ours = reps[reps["rep"] == r].drop(columns=["rep", "seed", "draw"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, alone, check_dtype=False)


def test_a_comparison_pairs_each_replicate_on_one_draw(smc):
    """Replicate r of the baseline and of the alternative run with the same draw and seed,
    so the paired differences carry parameter uncertainty without losing the pairing."""
    from fupin_sim.experiments.compare import compare

    draws = read_draws(smc.out)
    cmp = compare("baseline", "health_cap_3000", reps=3, households=300, years=(2016, 2017), draws=smc.out)
    reps = cmp.replicates
    assert list(reps.groupby(["scenario", "rep"])["draw"].first()) == [0, 1, 2] * 2
    assert cmp.manifest["parameter_draws"]["sets"] == draws
    base = fs.load_scenario("baseline").edit(households=300, years=(2016, 2017))
    for r in range(3):
        seed = int(reps.loc[(reps["scenario"] == "baseline") & (reps["rep"] == r), "seed"].iloc[0])
        alone = fs.run(base.edit(parameters=draws[r]), seed=seed).summary
        ours = reps[(reps["scenario"] == "baseline") & (reps["rep"] == r)]
        assert (ours["registered_poor"].to_numpy() == alone["registered_poor"].to_numpy()).all()


def test_forecast_over_draws_from_the_command_line(smc, tmp_path, capsys):
    from fupin_sim.cli import main

    sim = fs.Simulation(fs.load_scenario("consolidation").edit(households=200, years=(2016, 2020)), seed=2)
    sim.run()
    fs.write_register(sim.state.to_population(), tmp_path / "reg")
    assert main(["forecast", str(tmp_path / "reg"), "--horizon", "2", "--reps", "4", "--draws", str(smc.out),
                 "--out", str(tmp_path / "fc")]) == 0
    man = json.loads((tmp_path / "fc" / "manifest.json").read_text())
    assert man["parameter_sets"] == read_draws(smc.out) and man["parameter_draws_file"] == str(smc.out)


@pytest.mark.parametrize("content, message", [
    (None, "parameter draws not found"),
    ("draw,x\n0,1\n", "has no 'overrides' column"),
    ('draw,overrides\n0,"{""income.wage_growth"": 0.1}"\n1,not json\n', "row 3: column overrides: expected a JSON mapping"),
])
def test_bad_draws_files(tmp_path, content, message):
    path = tmp_path / "draws.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message) as e:
        read_draws(path)
    assert str(path) in str(e.value)


def test_a_draw_that_does_not_fit_the_scenario_names_its_row(tmp_path):
    path = tmp_path / "draws.csv"
    path.write_text('draw,overrides\n0,"{""income.wage_growth"": 0.1}"\n1,"{""income.wage_grwth"": 0.1}"\n')
    with pytest.raises(InputError, match=r"draws.csv: row 3: does not fit scenario 'baseline'.*unknown parameter "
                                         r"\(did you mean 'income.wage_growth'\?\)"):
        fs.run("baseline", households=100, years=(2016, 2017), reps=2, draws=path)


def test_a_calibration_without_abc_has_no_draws(tmp_path):
    (tmp_path / "result.json").write_text("{}")
    with pytest.raises(InputError, match="writes draws.csv only when its spec has `abc:`"):
        read_draws(tmp_path)
