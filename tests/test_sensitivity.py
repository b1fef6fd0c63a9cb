import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import sobol_indices

from fupin_sim.cli import main
from fupin_sim.errors import InputError
from fupin_sim.experiments.sensitivity import saltelli_indices, sensitivity

SPEC = {
    "name": "known",
    "scenario": "baseline",
    "households": 400,
    "years": [2016, 2018],
    "seed": 4,
    "parameters": {
        "income.wage_growth": {"range": [0.02, 0.12]},        # drives incomes, so the poverty gap
        "shocks.livestock_price_sd": {"range": [0.05, 0.25]},  # pastoral price swings only
    },
    "design": {"type": "sobol", "samples": 16, "seed": 2},
    "outputs": {"fgt1": "mean", "exits": "sum"},
    "sensitivity": {"bootstrap": 200, "noise_points": 2, "noise_replicates": 4},
}


def write(folder, name="sens.yaml", **changes):
    path = folder / name
    path.write_text(yaml.safe_dump({**SPEC, **changes}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sens")
    return sensitivity(write(folder), folder / "out", n_jobs=1)


@pytest.mark.slow
def test_a_strong_parameter_ranks_above_a_weak_one(result):
    t = result.indices.set_index(["output", "parameter"])
    wage = t.loc[("fgt1_mean", "income.wage_growth")]
    price = t.loc[("fgt1_mean", "shocks.livestock_price_sd")]
    assert wage["ST"] > 0.5 and price["ST"] < 0.2 and wage["ST"] > 4 * price["ST"]
    assert wage["S1"] > price["S1"]
    assert wage["ST_low"] > price["ST_high"]  # the intervals do not overlap
    assert ((t["S1_low"] <= t["S1"]) & (t["S1"] <= t["S1_high"])).all()


def test_indices_are_scipys_and_noise_is_reported_apart(result):
    out = result.results
    design = out[out["kind"] == "design"]
    assert len(design) == 16 * 4 and design["seed"].nunique() == 1  # common random numbers at every point
    noise = out[out["kind"] == "noise"]
    assert len(noise) == 2 * 4 and noise["seed"].nunique() == 8
    f = design.set_index("point")["fgt1_mean"]
    blocks = result.design.set_index("point")["block"]
    f_a = f[blocks == "A"].to_numpy(float)
    f_b = f[blocks == "B"].to_numpy(float)
    f_ab = np.stack([f[blocks == f"AB:{p}"].to_numpy(float) for p in SPEC["parameters"]])
    ref = sobol_indices(func={"f_A": f_a[None], "f_B": f_b[None], "f_AB": f_ab[:, None]}, n=16)
    mine = saltelli_indices(f_a, f_b, f_ab)
    np.testing.assert_allclose(mine[0], np.ravel(ref.first_order), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mine[1], np.ravel(ref.total_order), rtol=1e-12, atol=1e-12)
    t = result.indices[result.indices["output"] == "fgt1_mean"]
    np.testing.assert_allclose(t["S1"], np.ravel(ref.first_order))
    within = noise.groupby("point")["fgt1_mean"].var(ddof=1).mean()
    assert t["noise_variance"].iloc[0] == pytest.approx(within)
    assert t["noise_share"].iloc[0] == pytest.approx(within / np.var(np.concatenate([f_a, f_b])))
    assert set(result.noise.columns) == {"output", "point", "mean", "sd", "replicates"}
    for name in ("sensitivity.csv", "noise.csv", "design.csv", "results.csv", "manifest.json"):
        assert (result.out / name).is_file()


def test_parallel_and_resumed_runs_give_the_same_indices(result, tmp_path):
    spec = write(tmp_path)
    parallel = sensitivity(spec, tmp_path / "out", n_jobs=2)
    assert (tmp_path / "out" / "sensitivity.csv").read_bytes() == (result.out / "sensitivity.csv").read_bytes()
    assert (tmp_path / "out" / "results.csv").read_bytes() == (result.out / "results.csv").read_bytes()
    for f in sorted((tmp_path / "out" / "runs").glob("*.json"))[::7]:
        f.unlink()
    resumed = sensitivity(spec, tmp_path / "out")
    assert 0 < resumed.manifest["execution"]["ran"] < 20
    pd.testing.assert_frame_equal(resumed.indices, parallel.indices)


@pytest.mark.slow
def test_sensitivity_needs_a_sobol_design_and_the_cli_prints_the_indices(tmp_path, capsys):
    bad = write(tmp_path, "grid.yaml", design={"type": "grid", "levels": 3})
    with pytest.raises(InputError) as err:
        sensitivity(bad, tmp_path / "bad")
    assert str(err.value) == f"{bad}: design.type: Sobol' indices need a Sobol' design (type: sobol), got 'grid'"
    few = write(tmp_path, "few.yaml", sensitivity={"noise_points": 40})
    with pytest.raises(InputError, match=r"sensitivity.noise_points: at most design.samples \(16\) points, got 40"):
        sensitivity(few, tmp_path / "bad")
    spec = write(tmp_path, sensitivity={"bootstrap": 50, "noise_points": 1, "noise_replicates": 2})
    assert main(["sensitivity", str(spec), "--out", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    assert "fgt1_mean (noise share " in printed and "income.wage_growth: S1 " in printed
