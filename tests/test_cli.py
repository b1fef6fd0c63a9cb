import json

import pandas as pd
import pytest

from fupin_sim.cli import main


def test_run_writes_summary_manifest_and_figure(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "baseline", "--households", "800", "--years", "2016-2019", "--seed", "5", "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["year"]) == [2016, 2017, 2018, 2019]
    for column in ("registered_poor", "headcount_ratio", "fgt1", "exits", "relapses", "relapse_rate", "new_poor",
                   "monitored", "income_wage_per_capita", "income_transfer_per_capita"):
        assert column in summary
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["seed"] == 5 and manifest["scenario"] == "baseline" and len(manifest["scenario_hash"]) == 16
    assert manifest["fupin_sim"] and manifest["parameters"]["poverty_line.national"]["2019"] == 3218
    assert (out / "trajectory.png").stat().st_size > 10_000
    assert "written to" in capsys.readouterr().out


def test_reps_add_quantile_bands(tmp_path):
    out = tmp_path / "reps"
    assert main(["run", "baseline", "--households", "500", "--years", "2016-2018", "--reps", "4", "--out", str(out)]) == 0
    bands = pd.read_csv(out / "bands.csv")
    assert set(bands.columns) == {"year", "metric", "q05", "q25", "q50", "q75", "q95"}
    assert ((bands["q05"] <= bands["q50"]) & (bands["q50"] <= bands["q95"])).all()
    assert pd.read_csv(out / "replicates.csv")["rep"].nunique() == 4


def test_generate_then_run_from_the_register(tmp_path):
    reg = tmp_path / "reg"
    assert main(["generate", "--households", "600", "--seed", "2", "--out", str(reg)]) == 0
    scenario = tmp_path / "from_register.yaml"
    scenario.write_text(f"name: mine\npopulation: {{register: {reg.name}}}\nyears: [2016, 2018]\n", encoding="utf-8")
    assert main(["run", str(scenario), "--out", str(tmp_path / "out")]) == 0
    assert len(pd.read_csv(tmp_path / "out" / "summary.csv")) == 3


def test_a_register_after_the_first_year_is_refused(tmp_path, capsys):
    reg = tmp_path / "reg"
    main(["generate", "--households", "100", "--year", "2018", "--out", str(reg)])
    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: s\npopulation: {{register: {reg.name}}}\nyears: [2018, 2020]\n", encoding="utf-8")
    assert main(["run", str(scenario), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "the register describes the end of 2018, so the run must start after it" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, message", [
    (["run", "baselin", "--out", "x"], "did you mean 'baseline'"),
    (["run", "baseline", "--years", "2020-2016", "--out", "x"], "years: first year 2020 is after last year 2016"),
    (["run", "baseline", "--years", "soon", "--out", "x"], "expected years as 'A-B' or [A, B]"),
    (["run", "baseline", "--instrument-scale", "microlon=2", "--out", "x"],
     "instrument_scale.microlon: unknown instrument 'microlon' (did you mean 'microloan'?)"),
    (["run", "baseline", "--instrument-scale", "dibao=2", "--reps", "2", "--out", "x"],
     "instrument_scale.dibao: 'dibao' cannot be scaled: it is an entitlement"),
])
def test_input_errors_are_one_line_with_exit_status_2(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("fupin-sim: error: ") and message in err and "Traceback" not in err


def test_validate_reports_the_key_path(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nyears: [2016, 2020]\nparameters: {health: {basic_rat: 0.7}}\n", encoding="utf-8")
    assert main(["validate", str(bad)]) == 2
    assert f"{bad}: parameters.health.basic_rat: unknown parameter (did you mean 'health.basic_rate'?)" in capsys.readouterr().err
    assert main(["validate", "baseline"]) == 0


@pytest.mark.slow
def test_run_scales_an_instruments_budget(tmp_path, capsys):
    """`--instrument-scale microloan=0` is the engine's instrument_scale: no loans, the
    factor in the manifest and the printed line, and every replicate scaled."""
    import fupin_sim as fs
    from fupin_sim.results import simulate

    out = tmp_path / "run"
    args = ["run", "baseline", "--households", "800", "--years", "2016-2018", "--seed", "5"]
    assert main([*args, "--instrument-scale", "microloan=0", "--out", str(out)]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert (summary["loans_issued"] == 0).all() and json.loads(
        (out / "manifest.json").read_text(encoding="utf-8"))["instrument_scale"] == {"microloan": 0.0}
    assert "microloan budget × 0:" in capsys.readouterr().out
    sc = fs.load_scenario("baseline").edit(households=800, years=(2016, 2018), seed=5)
    expected = simulate(sc.edit(instrument_scale={"microloan": 0.0})).summary
    pd.testing.assert_frame_equal(summary, expected, check_dtype=False)
    assert simulate(sc).summary["loans_issued"].sum() > 0  # unscaled, it lends
    assert main([*args, "--reps", "2", "--instrument-scale", "microloan=0", "--out", str(tmp_path / "reps")]) == 0
    assert (pd.read_csv(tmp_path / "reps" / "replicates.csv")["loans_issued"] == 0).all()
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--instrument-scale", "microloan", "--out", "x"])
    assert exit_.value.code == 2 and "expected INSTRUMENT=FACTOR (e.g. microloan=0.5), got 'microloan'" in \
        capsys.readouterr().err


def test_bad_numbers_on_the_command_line_are_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["run", "baseline", "--households", "0", "--out", "x"])
    assert exit_.value.code == 2 and "must be at least 1" in capsys.readouterr().err


def test_diff_lists_what_two_scenarios_change(capsys):
    assert main(["diff", "consolidation", "withdrawn"]) == 0
    out = capsys.readouterr().out
    assert "parameters.policy.support_until  2025  ->  2020" in out
    assert main(["diff", "baseline", "baseline"]) == 0
    assert "do not differ" in capsys.readouterr().out


def test_outputs_are_written_atomically_and_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import fupin_sim as fs
    from fupin_sim import results

    result = fs.run("no_policy", households=200, years=(2016, 2017), seed=1)
    out = result.write(tmp_path / "ok")
    assert sorted(p.name for p in out.iterdir()) == ["budget.csv", "ledger.csv", "manifest.json", "parameters.csv",
                                                     "summary.csv"]

    def broken(frame, path, **kw):
        Path(path).write_text("partial")
        raise OSError(28, "No space left on device", str(path))

    from pathlib import Path

    monkeypatch.setattr(results.pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError):
        result.write(tmp_path / "full")
    assert list((tmp_path / "full").iterdir()) == []  # no partial file under a real name, no manifest


def test_a_full_disk_is_one_clear_line(tmp_path, capsys, monkeypatch):
    """The message names the file the user asked for (not a temporary name) and the cause.
    A real full disk and a real read-only folder are in tests/test_faults.py."""
    from fupin_sim import results

    def full(frame, path, **kw):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(results.pd.DataFrame, "to_csv", full)
    assert main(["run", "no_policy", "--households", "100", "--years", "2016-2016", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"fupin-sim: error: {tmp_path / 'out' / 'summary.csv'}: No space left on device\n"


@pytest.mark.slow
def test_python_m_fupin_sim_is_the_command(tmp_path):
    """`python -m fupin_sim` runs the `fupin-sim` command: its exit status and its one-line errors."""
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, "-m", "fupin_sim", "validate", "baseline"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("baseline: ok (baseline, 2016-2020")
    bad = subprocess.run([sys.executable, "-m", "fupin_sim", "run", "baseline", "--years", "soon", "--out",
                          str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "expected years as 'A-B' or [A, B]" in bad.stderr and "Traceback" not in bad.stderr
