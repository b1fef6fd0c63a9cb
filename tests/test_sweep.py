import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import fupin_sim as fs
from fupin_sim.cli import main
from fupin_sim.experiments.seeds import replicate_seeds
from fupin_sim.errors import InputError
from fupin_sim.results import simulate
from fupin_sim.experiments.outputs import reduce_outputs
from fupin_sim.experiments.sweep import load_spec, run_sweep

ROOT = Path(__file__).resolve().parents[1]

SPEC = {
    "name": "tiny",
    "scenario": "baseline",
    "households": 300,
    "years": [2016, 2018],
    "seed": 3,
    "parameters": {
        "income.wage_growth": {"range": [0.03, 0.09]},
        "health.basic_rate": {"values": [0.5, 0.6, 0.7]},
    },
    "design": {"type": "latin_hypercube", "samples": 6},
    "replicates": 2,
    "outputs": {"registered_poor": "final", "exits": ["sum", "mean"], "poverty_gap_yuan": "sum"},
}


def write_spec(folder: Path, name: str = "spec.yaml", **changes) -> Path:
    spec = {**SPEC, **changes}
    spec = {k: v for k, v in spec.items() if v is not None}
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


def test_a_sweep_writes_one_row_per_run_and_n_jobs_does_not_change_it(tmp_path):
    spec = write_spec(tmp_path)
    one = run_sweep(spec, tmp_path / "one", n_jobs=1)
    two = run_sweep(spec, tmp_path / "two", n_jobs=2, batch_size=1)
    assert (tmp_path / "one" / "results.csv").read_bytes() == (tmp_path / "two" / "results.csv").read_bytes()
    table = pd.read_csv(tmp_path / "one" / "results.csv")
    assert list(table.columns) == ["run_id", "point", "replicate", "seed", "income.wage_growth", "health.basic_rate",
                                   "registered_poor_final", "exits_sum", "exits_mean", "poverty_gap_yuan_sum"]
    assert len(table) == 12 and table["run_id"].is_unique and table["seed"].nunique() == 12
    assert set(table["health.basic_rate"]) <= {0.5, 0.6, 0.7}
    assert table["income.wage_growth"].between(0.03, 0.09).all()
    assert len(list((tmp_path / "one" / "runs").glob("*.json"))) == 12
    assert one.manifest["execution"]["ran"] == 12 and two.manifest["execution"]["backend"] == "loky"
    assert json.loads((tmp_path / "one" / "sweep.json").read_text())["spec_hash"] == one.manifest["spec_hash"]


def test_a_run_of_the_sweep_is_the_engine_run_with_those_parameters(tmp_path):
    result = run_sweep(write_spec(tmp_path), tmp_path / "out")
    row = result.results.iloc[5]
    sc = fs.load_scenario("baseline").edit(
        households=300, years=(2016, 2018),
        parameters={"income.wage_growth": float(row["income.wage_growth"]),
                    "health.basic_rate": float(row["health.basic_rate"])})
    spec = load_spec(write_spec(tmp_path))
    expected = reduce_outputs(simulate(sc, seed=int(row["seed"])).summary, spec.outputs)
    assert {k: row[k] for k in expected} == expected


def test_resume_after_a_kill_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    spec = write_spec(tmp_path)
    clean = run_sweep(spec, tmp_path / "clean")

    # a kill after 5 runs were written: the exception stops the sweep like Ctrl-C would
    from fupin_sim.experiments.sweep.runs import RunStore

    real_save, written = RunStore.save, []

    def dying_save(self, task, record):
        if len(written) == 5:
            raise KeyboardInterrupt
        written.append(task.run_id)
        return real_save(self, task, record)

    monkeypatch.setattr(RunStore, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path / "killed")
    monkeypatch.undo()
    runs = tmp_path / "killed" / "runs"
    assert len(list(runs.glob("*.json"))) == 5 and not (tmp_path / "killed" / "results.csv").exists()
    # damage more: a truncated file, a file holding another run, a left-over temporary file
    files = sorted(runs.glob("*.json"))
    files[0].write_text(files[0].read_text()[:40])
    files[1].write_text(files[2].read_text())
    (runs / ".p000000_r000.json.123.tmp").write_text("{")

    resumed = run_sweep(spec, tmp_path / "killed", n_jobs=2)
    ex = resumed.manifest["execution"]
    assert (ex["reused"], ex["ran"], ex["redone_unreadable"]) == (3, 9, 2)
    assert (tmp_path / "killed" / "results.csv").read_bytes() == (tmp_path / "clean" / "results.csv").read_bytes()
    assert resumed.results["run_id"].is_unique and len(resumed.results) == len(clean.results)
    assert sorted(p.name for p in runs.iterdir()) == sorted(f"{r}.json" for r in clean.results["run_id"])

    again = run_sweep(spec, tmp_path / "killed")
    assert again.manifest["execution"]["ran"] == 0 and again.manifest["execution"]["reused"] == 12


def test_a_folder_holding_another_sweep_is_refused_before_any_run(tmp_path):
    run_sweep(write_spec(tmp_path), tmp_path / "out")
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "runs").iterdir()}
    other = write_spec(tmp_path, "other.yaml", replicates=3)
    with pytest.raises(InputError) as err:
        run_sweep(other, tmp_path / "out")
    held = load_spec(write_spec(tmp_path)).hash
    assert str(err.value) == (f"{tmp_path / 'out'}: holds a different sweep (spec hash {held}, from "
                              f"{tmp_path / 'spec.yaml'}); this spec's hash is {load_spec(other).hash}: use another "
                              f"output folder, or delete this one to start again")
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "runs").iterdir()} == before
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="exists and is not an empty folder from a sweep"):
        run_sweep(write_spec(tmp_path), tmp_path / "busy")


@pytest.mark.parametrize("changes, where, message", [
    ({"parameters": {"income.wage_grwth": {"range": [0.03, 0.09]}}}, "parameters.income.wage_grwth",
     "unknown parameter (did you mean 'income.wage_growth'?)"),
    ({"parameters": {"income.wage_growth": {"range": [0.09, 0.03]}}}, "parameters.income.wage_growth.range",
     "low 0.09 is above high 0.03"),
    ({"parameters": {"income.wage_growth": {"range": [0.05]}}}, "parameters.income.wage_growth.range",
     "expected [low, high], got [0.05]"),
    ({"parameters": {"income.wage_growth": {"rang": [0.03, 0.09]}}}, "parameters.income.wage_growth.rang",
     "unknown key (did you mean 'range'?); known keys: ['range', 'values', 'scale', 'integer']"),
    ({"parameters": {"shocks.drought_probability": {"range": [0.1, 1.5]}}},
     "parameters.shocks.drought_probability.range[1]",
     "high 1.5 is not allowed: 1.5 is outside [0, 1] for unit 'probability/year'"),
    ({"parameters": {"health.admission_rate": {"range": [0.1, 0.3]}}}, "parameters.health.admission_rate",
     "is a list ([0.131, 0.208]), not a single number: add 'scale: true' to multiply every number in it by the "
     "swept factor"),
    ({"parameters": {"status.line": {"values": [1, 2]}}}, "parameters.status.line",
     "is a text parameter ('national'), not a number: sweeps vary numbers only"),
    ({"parameters": {"health.basic_rate": {"values": [0.5, "high"]}}}, "parameters.health.basic_rate.values[1]",
     "expected a finite number, got 'high'"),
    ({"replicates": 0}, "replicates", "must be at least 1, got 0"),
    ({"design": {"type": "latin-hypercube", "samples": 6}}, "design.type",
     "unknown design 'latin-hypercube' (did you mean 'latin_hypercube'?); known: grid, latin_hypercube, sobol"),
    ({"design": {"type": "sobol", "samples": 6}}, "design.samples",
     "Sobol' designs need a power of 2 samples (e.g. 8), got 6"),
    ({"design": {"type": "grid", "samples": 6}}, "design.samples",
     "a grid takes levels: (points per range), not samples:"),
    ({"outputs": {"exit": "sum"}}, "outputs.exit", "unknown metric (did you mean 'exits'?)"),
    ({"outputs": {"exits": "total"}}, "outputs.exits",
     "unknown reduction 'total'; use one of ['final', 'first', 'sum', 'mean', 'min', 'max', 'change'] or a year"),
    ({"outputs": {"exits": 2030}}, "outputs.exits", "year 2030 is outside the simulated years 2016-2018"),
    ({"scenario": "baselin"}, "scenario", "scenario file not found (did you mean 'baseline'?)"),
    ({"replicate": 2}, "replicate", "unknown key (did you mean 'replicates'?)"),
])
def test_bad_specs_are_refused_with_the_file_and_key_path_before_any_run(tmp_path, changes, where, message):
    spec = write_spec(tmp_path, **changes)
    with pytest.raises(InputError) as err:
        run_sweep(spec, tmp_path / "out")
    assert str(err.value).startswith(f"{spec}: {where}: {message}")
    assert not (tmp_path / "out").exists()


def test_designs_grid_values_scale_and_integer(tmp_path):
    grid = load_spec(write_spec(tmp_path, parameters={
        "income.wage_growth": {"range": [0.03, 0.09]},
        "health.basic_rate": {"values": [0.5, 0.7]},
        "poverty_line.national": {"range": [0.9, 1.1], "scale": True},
        "health.admission_rate": {"values": [1.0, 1.5], "scale": True},
        "health.basic_deductible": {"range": [300, 700], "integer": True}},
        design={"type": "grid", "levels": 3}))
    table = grid.design_table()
    assert len(table) == 3 * 2 * 3 * 2 * 3
    assert sorted(set(table["income.wage_growth"])) == [0.03, 0.06, 0.09]
    assert sorted(set(table["health.basic_deductible"])) == [300, 500, 700]
    over = grid.overrides(table.iloc[-1].to_dict())
    base_line = grid.scenario.params["poverty_line.national"].value
    assert over["poverty_line.national"] == {y: v * 1.1 for y, v in base_line.items()}
    assert over["health.admission_rate"] == [0.131 * 1.5, 0.208 * 1.5]
    assert over["health.basic_deductible"] == 700 and isinstance(over["health.basic_deductible"], int)

    lhs = load_spec(write_spec(tmp_path, design={"type": "latin_hypercube", "samples": 10, "seed": 4})).design_table()
    strata = np.floor((lhs["income.wage_growth"] - 0.03) / 0.06 * 10).astype(int)
    assert sorted(strata) == list(range(10))  # one point in each tenth of the range
    sob = load_spec(write_spec(tmp_path, design={"type": "sobol", "samples": 8})).design_table()
    assert len(sob) == 8 and sob["income.wage_growth"].between(0.03, 0.09).all()
    assert load_spec(write_spec(tmp_path)).design_table().equals(load_spec(write_spec(tmp_path)).design_table())


def test_an_instruments_rule_is_swept_like_a_parameter(tmp_path):
    """`interventions.<label>.<rule>` varies an instrument's rule; a larger gain from firm
    linkage (带贫) means more people exiting by their incomes (the exit plan's quota fixes how
    many exit in all) and a poverty gap no wider, on common random numbers."""
    spec = load_spec(write_spec(tmp_path, parameters={
        "interventions.industry_linkage.annual_gain": {"values": [0, 1200, 4800]}},
        design={"type": "grid"}, replicates=1, households=2000, common_random_numbers=True,
        outputs={"exits_development_persons": "sum", "fgt1": "mean"}))
    result = run_sweep(spec, tmp_path / "out").results.sort_values("interventions.industry_linkage.annual_gain")
    developed = result["exits_development_persons_sum"]
    assert developed.is_monotonic_increasing and developed.nunique() == 3
    # the gap never widens, and narrows with a gain; beyond what lifts the linked poor to the line it may stay
    gap = result["fgt1_mean"].to_numpy()
    assert result["fgt1_mean"].is_monotonic_decreasing and gap[0] > gap[1]
    sc = spec.scenario.edit(parameters={"interventions.industry_linkage.annual_gain": 4800})
    assert sc.programme.items[[it.label for it in sc.programme.items].index("industry_linkage")].rules[
        "annual_gain"].value == 4800
    expected = reduce_outputs(simulate(sc, seed=int(result["seed"].iloc[-1])).summary, spec.outputs)
    assert result.iloc[-1][list(expected)].to_dict() == expected


def test_a_budget_line_is_swept_like_a_parameter(tmp_path):
    """`budgets.<line>.amounts` varies a limited line's yuan a year: the industry instruments
    it funds spend more as it grows until everyone eligible is served, never more than the
    line and the pool they may also draw on; an unlimited line has no amounts to vary."""
    industry = ["industry_menu", "industry_linkage", "collective_economy", "solar", "housing_renovation"]
    spec = load_spec(write_spec(tmp_path, parameters={
        "budgets.integrated_agriculture.amounts": {"values": [0, 10_000_000, 45_000_000]}},
        design={"type": "grid"}, replicates=1, households=2000, common_random_numbers=True,
        outputs={f"spending_{name}": "sum" for name in industry}))
    result = run_sweep(spec, tmp_path / "out").results.sort_values("budgets.integrated_agriculture.amounts")
    spent = result[[f"spending_{name}_sum" for name in industry]].sum(axis=1).to_numpy()
    assert spent[0] < spent[1] <= spent[2], spent
    for amount in (0, 10_000_000):
        run = simulate(spec.scenario.edit(parameters={"budgets.integrated_agriculture.amounts": amount}), seed=3)
        line = run.budget[run.budget["line"] == "integrated_agriculture"]
        assert (line["available"] == amount).all() and (line["spent"] <= amount + 1e-6).all()
    with pytest.raises(InputError, match="budget line 'civil_affairs' is unlimited"):
        spec.scenario.edit(parameters={"budgets.civil_affairs.amounts": 1.0})
    with pytest.raises(InputError, match="a budget cannot be negative, got -1"):
        spec.scenario.edit(parameters={"budgets.integrated_agriculture.amounts": -1})


def test_an_instruments_budget_is_swept_as_a_factor(tmp_path):
    """`instrument_scale.<instrument>` multiplies what the instrument may draw each year (the
    engine's instrument_scale): no loans at 0, more loans with more money, the unscaled run
    at 1, and each run equal to the engine run with that factor."""
    spec = load_spec(write_spec(tmp_path, parameters={"instrument_scale": {"microloan": {"values": [0, 0.5, 1]}}},
                                design={"type": "grid"}, replicates=1, households=2000,
                                common_random_numbers=True,
                                outputs={"loans_issued": "sum", "spending_microloan": "sum", "exits": "sum"}))
    result = run_sweep(spec, tmp_path / "out").results.sort_values("instrument_scale.microloan")
    loans = result["loans_issued_sum"].to_numpy()
    assert loans[0] == 0 and 0 < loans[1] < loans[2], loans
    assert loans[1] <= 0.5 * loans[2] * (1 + 1e-9)  # at most half of what it drew unscaled, each year
    seed = int(result["seed"].iloc[0])
    unscaled = reduce_outputs(simulate(spec.scenario, seed=seed).summary, spec.outputs)
    assert result.iloc[2][list(unscaled)].to_dict() == unscaled
    half = simulate(spec.scenario.edit(instrument_scale={"microloan": 0.5}), seed=seed)
    assert result.iloc[1][list(unscaled)].to_dict() == reduce_outputs(half.summary, spec.outputs)


def test_an_instruments_capacity_is_swept_like_a_parameter(tmp_path):
    """`interventions.<label>.capacity` (households per 10,000 a year) caps whom relocation
    serves each year: more capacity moves more households, and sooner; a scenario without
    one has no value to multiply."""
    spec = load_spec(write_spec(tmp_path, parameters={"interventions.relocation.capacity": {"values": [5, 20, 100]}},
                                design={"type": "grid"}, replicates=1, households=3000, years=[2016, 2020],
                                common_random_numbers=True,
                                outputs={"served_relocation": ["sum", 2016], "households": "first"}))
    result = run_sweep(spec, tmp_path / "out").results.sort_values("interventions.relocation.capacity")
    assert result["served_relocation_sum"].is_monotonic_increasing and result["served_relocation_sum"].nunique() == 3
    assert (result["served_relocation_2016"] <= result["interventions.relocation.capacity"]
            * result["households_first"] / 1e4 + 1e-9).all()
    assert spec.scenario.edit(parameters={"interventions.relocation.capacity": 20}).programme.items[
        [it.label for it in spec.scenario.programme.items].index("relocation")].capacity == 20
    bad = write_spec(tmp_path, name="bad.yaml", design={"type": "grid"},
                     parameters={"interventions.solar.capacity": {"values": [1, 2], "scale": True}})
    with pytest.raises(InputError, match="parameters.interventions.solar.capacity.scale: has no value in this "
                                         "scenario to multiply"):
        load_spec(bad)


@pytest.mark.parametrize("node, where, message", [
    ({"instrument_scale.microlon": {"values": [0, 1]}}, "parameters.instrument_scale.microlon",
     "unknown instrument 'microlon' (did you mean 'microloan'?); instruments with a budget to scale: "),
    ({"instrument_scale": {"microloan": {"values": [1, -1]}}}, "parameters.instrument_scale.microloan.values[1]",
     "value -1 is not allowed: expected a finite factor >= 0, got -1"),
    ({"instrument_scale.microloan": {"range": [0, 2], "scale": True}}, "parameters.instrument_scale.microloan.scale",
     "is a factor of the instrument's budget already: drop 'scale: true'"),
    ({"instrument_scale.dibao": {"values": [2]}}, "parameters.instrument_scale.dibao",
     "'dibao' cannot be scaled: it is an entitlement, paid whatever is due from unlimited line(s)"),
])
def test_bad_instrument_budget_factors_are_named(tmp_path, node, where, message):
    spec = write_spec(tmp_path, parameters=node, design={"type": "grid"})
    with pytest.raises(InputError) as err:
        run_sweep(spec, tmp_path / "out")
    assert str(err.value).startswith(f"{spec}: {where}: {message}")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path", ["interventions.industry_linkge.annual_gain",
                                  "interventions.industry_linkage.annual_gian"])
def test_an_unknown_instrument_or_rule_is_named(tmp_path, path):
    spec = write_spec(tmp_path, parameters={path: {"values": [1.0]}}, design={"type": "grid"})
    with pytest.raises(InputError) as err:
        run_sweep(spec, tmp_path / "out")
    assert str(err.value) == (f"{spec}: parameters.{path}: unknown parameter "
                              "(did you mean 'interventions.industry_linkage.annual_gain'?)")
    assert not (tmp_path / "out").exists()


def test_a_dated_parameter_swept_as_a_value_holds_in_every_year(tmp_path):
    spec = load_spec(write_spec(tmp_path, parameters={"poverty_line.national": {"values": [3500]}},
                                design={"type": "grid"}, replicates=1))
    result = run_sweep(spec, tmp_path / "out")
    sc = spec.scenario.edit(parameters={"poverty_line.national": 3500})
    assert sc.params.value("poverty_line.national", 2016) == sc.params.value("poverty_line.national", 2018) == 3500
    expected = reduce_outputs(simulate(sc, seed=int(result.results["seed"][0])).summary, spec.outputs)
    assert result.results.iloc[0][list(expected)].to_dict() == expected


def test_common_random_numbers_give_every_point_the_ensemble_seeds(tmp_path):
    result = run_sweep(write_spec(tmp_path, common_random_numbers=True), tmp_path / "out")
    seeds = result.results.groupby("replicate")["seed"].unique()
    assert [list(s) for s in seeds] == [[s] for s in replicate_seeds(3, 2)]


@pytest.mark.slow
def test_cli_sweep_and_its_errors(tmp_path, capsys):
    spec = write_spec(tmp_path)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--n-jobs", "1", "--no-progress"]) == 0
    assert "12 runs (6 points × 2 replicates): 12 run now, 0 already done" in capsys.readouterr().out
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 0
    assert "0 run now, 12 already done" in capsys.readouterr().out
    bad = write_spec(tmp_path, "bad.yaml", replicates=0)
    assert main(["sweep", str(bad), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert err == f"fupin-sim: error: {bad}: replicates: must be at least 1, got 0\n"


def test_the_bundled_example_specs_are_valid():
    for name in ("baseline_sweep.yaml", "baseline_sensitivity.yaml", "funding_sweep.yaml", "instrument_budgets.yaml"):
        path = ROOT / "scenarios" / "sweeps" / name
        spec = load_spec(path, kind="sensitivity" if "sensitivity" in name else "sweep")
        assert spec.parameters and spec.outputs and len(spec.design_table()) >= 8


@pytest.mark.slow
def test_a_script_without_a_main_guard_runs_a_parallel_sweep(tmp_path):
    """As on Windows or in a notebook: loky workers must not re-run the calling script."""
    spec = write_spec(tmp_path)
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        from fupin_sim.experiments.sweep import run_sweep
        print("started")
        result = run_sweep({str(spec)!r}, {str(tmp_path / 'out')!r}, n_jobs=2)
        print(len(result.results))
    """), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["started", "12"]


@pytest.mark.slow
def test_results_on_a_dask_cluster_equal_the_local_ones(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = write_spec(tmp_path)
    local = run_sweep(spec, tmp_path / "local", n_jobs=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = run_sweep(spec, tmp_path / "dask", scheduler=cluster.scheduler_address)
    assert on_dask.manifest["execution"]["backend"] == "dask"
    assert (tmp_path / "dask" / "results.csv").read_bytes() == (tmp_path / "local" / "results.csv").read_bytes()
    pd.testing.assert_frame_equal(on_dask.results, local.results)


def test_a_cluster_without_dask_installed_is_a_clear_error_before_any_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    spec = write_spec(tmp_path)
    assert main(["sweep", str(spec), "--scheduler", "tcp://127.0.0.1:8786", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == ("fupin-sim: error: scheduler: running on a Dask cluster needs Dask: pip install "
                                       "'fupin-sim[cluster]' (or: pip install \"dask[distributed]\")\n")
    assert not (tmp_path / "out").exists()


def test_the_progress_bar_counts_runs_with_tqdm_or_without(tmp_path, capsys, monkeypatch):
    spec = write_spec(tmp_path, design={"type": "latin_hypercube", "samples": 2}, replicates=1)
    run_sweep(spec, tmp_path / "a", progress=True)
    assert "2/2" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    run_sweep(spec, tmp_path / "b", progress=True)
    assert capsys.readouterr().err.rstrip().endswith("tiny: 2/2 runs")
    run_sweep(spec, tmp_path / "c")  # not a terminal: quiet
    assert capsys.readouterr().err == ""
