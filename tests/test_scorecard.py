"""The scorecard: published figures against the bundled scenarios."""
import json

import pandas as pd
import pytest

from fupin_sim.experiments import scorecard as card
from fupin_sim.cli import main
from fupin_sim.errors import InputError


def table(tmp_path, rows: list[dict]):
    base = {"id": "x", "scenario": "baseline", "metric": "headcount_ratio", "year": "2018", "base_year": "",
            "value": "0.01", "tolerance": "0.01", "bound": "point", "role": "check", "measure": "survey",
            "unit": "share", "definition": "a definition", "source": "a source"}
    path = tmp_path / "history.csv"
    pd.DataFrame([{**base, **r} for r in rows]).to_csv(path, index=False)
    return path


def test_every_bad_row_is_named_in_one_error(tmp_path):
    path = table(tmp_path, [
        {"id": "no_source", "source": ""},
        {"id": "unknown_metric", "metric": "headcount_rati"},
        {"id": "too_early", "year": "2012"},
        {"id": "wrong_measure", "measure": "register"},
        {"id": "no_base", "metric": "headcount_relative"},
        {"id": "bad_role", "role": "fitted"},
    ])
    with pytest.raises(InputError) as err:
        card.read_history(path)
    text = str(err.value)
    assert text.startswith(f"{path}: row 2 (no_source), column source: empty; every figure needs its source")
    for part in ("row 3 (unknown_metric), column metric: unknown metric 'headcount_rati' (did you mean "
                 "'headcount_ratio'?)",
                 "row 4 (too_early), column year: 2012 is outside the years 2016-2020 that scenario 'baseline' can "
                 "measure headcount_ratio in",
                 "row 5 (wrong_measure), column measure: headcount_ratio is a survey measure, not register",
                 "row 6 (no_base), column base_year: a relative metric needs the year it is relative to",
                 "row 7 (bad_role), column role: 'fitted' is not one of ['fit', 'check']"):
        assert part in text


def test_an_unknown_scenario_is_named_with_its_row(tmp_path):
    with pytest.raises(InputError, match=r"row 2 \(x\), column scenario: unknown scenario 'basline'"):
        card.read_history(table(tmp_path, [{"scenario": "basline"}]))


@pytest.mark.parametrize("bound, model, result", [("point", 0.019, "pass"), ("point", 0.021, "miss"),
                                                  ("upper", 0.0, "pass"), ("upper", 0.021, "miss"),
                                                  ("lower", 0.5, "pass"), ("lower", -0.001, "miss")])
def test_a_figure_passes_within_its_tolerance_of_a_point_or_on_the_right_side_of_a_bound(bound, model, result):
    row = pd.Series({"bound": bound, "value": 0.01, "tolerance": 0.01})
    assert card._result(model, row) == result


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    """The reduced card CI runs: every bundled row, at 10,000 households and 2 replicates."""
    out = tmp_path_factory.mktemp("scorecard")
    assert main(["scorecard", "--households", "10000", "--reps", "2", "--out", str(out)]) == 0
    return out


def test_the_reduced_scorecard_writes_its_table_and_a_page_in_each_language(reduced):
    t = pd.read_csv(reduced / "scorecard.csv")
    history = card.read_history()
    assert list(t["id"]) == list(history["id"])
    assert set(t["result"]) <= {"pass", "miss"} and set(t["role"]) == {"fit", "check"}
    assert (t["model_low"] <= t["model"] + 1e-9).all() and (t["model"] <= t["model_high"] + 1e-9).all()
    manifest = json.loads((reduced / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "scorecard" and manifest["replicates"] == 2
    english, chinese = ((reduced / name).read_text(encoding="utf-8") for name in ("report.html", "report-zh.html"))
    assert "used for fitting" in english and "held out for checking" in english
    assert "用于拟合" in chinese and "留作检验" in chinese
    for row in t.itertuples():
        assert row.id in english and row.id in chinese


def test_every_figure_marked_for_fitting_passes(reduced):
    t = pd.read_csv(reduced / "scorecard.csv")
    fit = t[t["role"] == "fit"]
    assert len(fit) >= 10
    assert (fit["result"] == "pass").all(), fit.loc[fit["result"] != "pass", ["id", "model", "value", "tolerance"]]


def test_the_register_clears_by_the_deadline_through_the_modelled_process(reduced):
    t = pd.read_csv(reduced / "scorecard.csv").set_index("id")
    assert t.loc["im_register_cleared_2020", "result"] == "pass"
