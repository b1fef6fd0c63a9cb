"""Figures and reports: the elements a reader relies on (axes labels, legend entries, lines and
bars), both languages with a real CJK font, the fallback without one, and the HTML page and
Excel workbook of every result kind."""
import html
import json
import os
import pickle
import re
import warnings
from pathlib import Path

import matplotlib.text
import numpy as np
import pandas as pd
import pytest
import yaml
from openpyxl import load_workbook

import fupin_sim as fs
from fupin_sim import plots
from fupin_sim.cli import main
from fupin_sim.errors import InputError
from fupin_sim.notes import NOTES, Note, note_text, read_notes
from fupin_sim.plots import style
from fupin_sim.plots.text import label, table_title, text
from fupin_sim.report import open_folder, report
from fupin_sim.report.folder import about
from fupin_sim.report.tables import cell

CJK = re.compile(r"[\u3400-\u9fff]")


@pytest.fixture()
def cjk():
    """For a test that reads Chinese (or 返贫 in English) off a figure: it needs a CJK font, so
    without one it is skipped, unless FUPIN_SIM_REQUIRE_CJK=1 asks for the font (CI, whose
    .ci/run installs fonts-wqy-microhei), where a missing font fails it."""
    if style.cjk_font() is None:
        if os.environ.get("FUPIN_SIM_REQUIRE_CJK") == "1":
            pytest.fail("no CJK font found, though FUPIN_SIM_REQUIRE_CJK=1 asks for one")
        pytest.skip("no CJK font installed here (apt-get install fonts-noto-cjk or fonts-wqy-microhei)")


def texts(fig) -> list[str]:
    return [t.get_text() for t in fig.findobj(matplotlib.text.Text) if t.get_text()]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One small result folder of every kind, written by the command line."""
    root = tmp_path_factory.mktemp("results")
    sweep = {"name": "tiny", "scenario": "baseline", "households": 200, "years": [2016, 2018], "seed": 3,
             "parameters": {"income.wage_growth": {"range": [0.03, 0.09]},
                            "income.sd_transitory": {"range": [0.15, 0.35]}},
             "design": {"type": "latin_hypercube", "samples": 8}, "replicates": 1,
             "outputs": {"registered_poor": "final", "exits": "sum", "poverty_gap_yuan": "sum"}}
    (root / "sweep.yaml").write_text(yaml.safe_dump(sweep), encoding="utf-8")
    sens = {**sweep, "design": {"type": "sobol", "samples": 8, "seed": 1}, "replicates": 1,
            "sensitivity": {"bootstrap": 49, "noise_points": 2, "noise_replicates": 2}}
    (root / "sens.yaml").write_text(yaml.safe_dump(sens), encoding="utf-8")
    (root / "t.csv").write_text("year,metric,value,sd\n2017,income_wage_per_capita,1500,300\n"
                                "2018,registered_persons_share,0.1,0.05\n", encoding="utf-8")
    cal = {"name": "cal", "scenario": "baseline", "households": 200, "years": [2016, 2018], "targets": ["t.csv"],
           "parameters": {"income.wage_growth": {"range": [0.0, 0.2]}}, "replicates": 1, "seed": 3,
           "optimizer": {"popsize": 4, "maxiter": 2, "seed": 1, "polish": "none"},
           "abc": {"samples": 8, "quantile": 0.5, "seed": 1, "rounds": 2}}
    (root / "cal.yaml").write_text(yaml.safe_dump(cal), encoding="utf-8")
    commands = {
        "run": ["run", "consolidation", "--households", "600", "--years", "2016-2022"],
        "bands": ["run", "baseline", "--households", "300", "--reps", "3"],
        "compare": ["compare", "consolidation", "health_heavy", "withdrawn", "--households", "500", "--reps", "4"],
        "sweep": ["sweep", str(root / "sweep.yaml"), "--no-progress"],
        "sensitivity": ["sensitivity", str(root / "sens.yaml"), "--no-progress"],
        "calibrate": ["calibrate", str(root / "cal.yaml")],
        "backtest": ["backtest", "--households", "800", "--reps", "10"],
    }
    for name, argv in commands.items():
        assert main([*argv, "--out", str(root / name)]) == 0, name
    return root


def test_every_command_draws_its_figures(folders):
    expected = {"run": ["spending.png", "trajectory.png"], "bands": ["trajectory.png"],
                "compare": ["comparison.png", "cost_effectiveness.png"],
                "sweep": ["surface_exits_sum.png", "sweep_exits_sum.png", "sweep_poverty_gap_yuan_sum.png",
                          "sweep_registered_poor_final.png"],
                "sensitivity": ["sensitivity.png"], "calibrate": ["draws.png", "fit.png"],
                "backtest": ["reliability.png", "risk.png"]}
    for name, pngs in expected.items():
        found = sorted(p.name for p in (folders / name).glob("*.png"))
        assert found == pngs, name
        for p in pngs:
            assert (folders / name / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trajectory_has_its_lines_labels_and_bands(folders, cjk):
    summary = pd.read_csv(folders / "bands" / "summary.csv")
    bands = pd.read_csv(folders / "bands" / "bands.csv")
    fig = plots.trajectory(summary, bands)
    left, right = fig.axes
    assert [line.get_label() for line in left.get_lines()] == [label("registered_poor_persons"),
                                                                label("income_poor_persons")]
    assert [t.get_text() for t in right.get_legend().get_texts()] == ["Exits (households)",
                                                                      "Relapses, 返贫 (households)",
                                                                      "Newly poor (households)"]
    assert left.get_xlabel() == right.get_xlabel() == "Year"
    assert len(left.collections) == 4 and len(right.collections) == 6  # 50% and 90% band per line
    np.testing.assert_allclose(right.get_lines()[0].get_ydata(), summary["exits"])
    zh = plots.trajectory(summary, lang="zh")
    assert zh.axes[0].get_xlabel() == "年份" and zh.axes[1].get_title() == "年度流量"
    assert [t.get_text() for t in zh.axes[1].get_legend().get_texts()] == ["脱贫户数", "返贫户数", "新致贫户数"]


def test_spending_stacks_the_ledger_by_instrument_and_source(folders, cjk):
    ledger = pd.read_csv(folders / "run" / "ledger.csv")
    fig = plots.spending(ledger, top=5)
    by_instrument, by_source = fig.axes
    years = ledger["year"].nunique()
    instruments = ledger[ledger["category"] != "loan"].groupby("instrument")["amount"].sum()
    kept = min(5, int((instruments > 0).sum())) + (int((instruments > 0).sum()) > 5)
    assert len(by_instrument.patches) == years * kept
    assert by_instrument.get_legend().get_texts()[-1].get_text() == "Other"
    heights = np.zeros(years)
    for bar in by_source.patches:
        heights[round((bar.get_x() + bar.get_width() / 2) - ledger["year"].min())] += bar.get_height()
    spent = ledger[ledger["category"] != "loan"].groupby("year")["amount"].sum().to_numpy() / 1e6
    np.testing.assert_allclose(heights, spent, rtol=1e-9)  # every yuan spent is drawn, in million yuan
    assert by_source.get_ylabel() == "spending (million yuan)"
    assert plots.spending(ledger, lang="zh").axes[0].get_ylabel() == "支出(万元)"


def test_comparison_and_cost_effectiveness_panels(folders):
    table = pd.read_csv(folders / "compare" / "comparison.csv")
    fig = plots.comparison(table, reps=4)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 4
    assert all(len(ax.containers) == 2 for ax in panels)  # one errorbar series per alternative
    assert panels[0].get_title() == "Registered poor households: scenario − baseline"
    first = min(int(line.get_xdata().min().round()) for ax in panels for line in ax.get_lines()[1:2] or [])
    assert first >= 2021  # identical campaign years (2016-2020) are left out
    ce = plots.cost_effectiveness(table)
    assert [ax.get_ylabel() for ax in ce.axes] == ["Extra exits (households)", "Relapses averted (households)"]
    legend = [t.get_text() for t in ce.legends[0].get_texts()]
    assert {"health_heavy", "withdrawn", "Baseline"} <= set(legend)


def test_frontier_drops_dominated_and_extended_dominated_points():
    cost = np.array([0.0, 10, 20, 30, 25, 40])
    effect = np.array([0.0, 5, 6, 20, 4, 21])
    # 20 -> 6 is beaten by a mix of 0 and 30 (extended dominance); 25 -> 4 costs more than 10 -> 5 for less
    assert list(plots.frontier(cost, effect)) == [0, 3, 5]
    assert list(plots.frontier(np.array([5.0, 1.0]), np.array([1.0, 1.0]))) == [1]


def test_sweep_sensitivity_calibration_and_risk_figures(folders, cjk):
    results = pd.read_csv(folders / "sweep" / "results.csv")
    fig = plots.sweep_response(results, ["income.wage_growth", "income.sd_transitory"], "exits_sum")
    assert [ax.get_xlabel() for ax in fig.axes] == ["income.wage_growth", "income.sd_transitory"]
    assert all(len(ax.collections[0].get_offsets()) == len(results) for ax in fig.axes)
    assert fig.axes[0].get_ylabel() == "Exits (households), sum over years"
    indices = pd.read_csv(folders / "sensitivity" / "sensitivity.csv")
    fig = plots.sensitivity(indices)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == indices["output"].nunique()
    assert all(len(ax.patches) == 2 * indices["parameter"].nunique() for ax in panels)
    fit = pd.read_csv(folders / "calibrate" / "fit.csv")
    fig = plots.calibration_fit(fit, lang="zh")
    assert [ax.get_title() for ax in fig.axes if ax.get_visible()] == [label(m, "zh") for m in
                                                                       dict.fromkeys(fit["metric"])]
    every = pd.read_csv(folders / "calibrate" / "abc_draws.csv")
    fig = plots.calibration_draws(every, {"income.wage_growth": 0.05}, {"income.wage_growth": [0.0, 0.2]})
    ax = fig.axes[0]
    assert ax.get_xlim() == (0.0, 0.2) and ax.get_title() == "income.wage_growth"
    kept = every[every["accepted"]]
    assert sum(len(line.get_xdata()) for line in ax.lines[:-1]) == len(kept)  # every kept draw, then the best
    risk = pd.read_csv(folders / "backtest" / "forecast" / "risk.csv")
    fig = plots.risk_distribution(risk, pd.read_csv(folders / "backtest" / "forecast" / "aggregate.csv"))
    assert fig.axes[0].get_xlabel() == "P(below the line within 3 years)"
    total = sum(p.get_height() for p in fig.axes[0].patches)
    assert total == pytest.approx(risk["weight"].sum())  # every household (weighted) is in a bar


def test_chinese_renders_with_a_real_cjk_font(folders, cjk):
    """In CI (a CJK font, FUPIN_SIM_REQUIRE_CJK=1) a missing glyph fails this test rather than
    drawing empty boxes."""
    summary = pd.read_csv(folders / "run" / "summary.csv")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Glyph .* missing")
        for lang in ("zh", "en"):
            fig = plots.trajectory(summary, lang=lang)
            fig.savefig(Path(os.devnull), format="png")
    assert any(CJK.search(t) for t in texts(fig))  # English keeps 返贫 beside "Relapses"


def test_without_a_cjk_font_chinese_falls_back_to_english_and_says_how_to_install(folders, monkeypatch):
    monkeypatch.setattr(style, "cjk_font", lambda: None)
    summary = pd.read_csv(folders / "run" / "summary.csv")
    with pytest.warns(plots.FontWarning, match="apt-get install fonts-noto-cjk"):
        fig = plots.trajectory(summary, lang="zh")
    assert fig.axes[0].get_xlabel() == "Year"
    assert not any(CJK.search(t) for t in texts(fig))  # no empty boxes, not even for 返贫
    assert "Relapses (households)" in texts(fig)


@pytest.mark.slow
def test_report_of_every_kind_in_both_languages(folders):
    sheets = {"run": ["Yearly summary", "Budgets and spending", "Cost ledger"],
              "bands": ["Yearly summary", "Uncertainty bands", "Replicates"],
              "compare": ["Paired differences", "Replicates"], "sweep": ["Runs", "Design"],
              "sensitivity": ["Sobol' indices", "Stochastic noise", "Runs", "Design"],
              "calibrate": ["Fit against targets", "Fitted parameters", "Parameter draws (ABC)"],
              "backtest": ["Forecast scores", "Monitoring rules compared", "Reliability by decile",
                           "Forecast, below the line"]}
    for name, expected in sheets.items():
        folder = open_folder(folders / name)
        for lang in ("en", "zh"):
            rep = report(folders / name, lang=lang)
            page = rep.html.read_text(encoding="utf-8")
            assert page.count("data:image/png;base64,") == len(folder.figures) >= 1
            assert not re.search(r"(src|href)=\"?https?:", page)  # self-contained: nothing from the network
            assert text("kind_" + folder.kind, lang) in page and text("assumptions", lang) in page
            seed = dict(about(folder))["seed"]
            assert isinstance(seed, int) and f"<td>{seed}</td>" in page and f"<td>{fs.__version__}</td>" in page
            book = load_workbook(rep.workbook)
            titles = [table_title(t, "zh") for t in folder.tables] if lang == "zh" else expected
            assert book.sheetnames[0] == text("sheet_about", lang)
            assert set(titles) <= set(book.sheetnames), (name, lang, book.sheetnames)


def test_notes_on_a_result_are_given_in_the_readers_language(folders):
    # the backtest always notes that its rules read the true state; a Chinese report says so in Chinese
    manifest = json.loads((folders / "backtest" / "manifest.json").read_text(encoding="utf-8"))
    english = NOTES["backtest_in_sample"][0]
    assert manifest["notes"] == [english] and manifest["note_keys"] == [{"key": "backtest_in_sample", "values": {}}]
    for lang, expected in (("en", english), ("zh", NOTES["backtest_in_sample"][1])):
        rep = report(folders / "backtest", lang=lang)
        assert html.escape(expected) in rep.html.read_text(encoding="utf-8")
        sheet = load_workbook(rep.workbook)[text("sheet_about", lang)]
        assert expected in [c.value for c in sheet["B"]]
    # notes from an older manifest (text only), or with a key this version does not know, stay as written
    assert read_notes({"notes": ["as written"]}) == ["as written"]
    kept = read_notes({"notes": ["as written"], "note_keys": [{"key": "no_such_note", "values": {}}]})
    assert [note_text(n, "zh") for n in kept] == ["as written"]
    note = Note("unbounded_ratio", name="jobs", metric="cost_per_extra_exit")
    assert pickle.loads(pickle.dumps(note)) == note and note_text(pickle.loads(pickle.dumps(note)), "zh") == (
        "jobs:cost_per_extra_exit 没有有界的95%置信区间(其分母的区间包含零),故 ci_low 和 ci_high 留空")


def test_workbook_values_match_the_tables(folders):
    rep = report(folders / "run", lang="zh")
    book = load_workbook(rep.workbook)
    summary = pd.read_csv(folders / "run" / "summary.csv")
    sheet = book["年度汇总"]
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["年份", label(summary.columns[1], "zh"), label(summary.columns[2], "zh")]
    col = header.index(label("registered_poor_persons", "zh")) + 1
    values = [sheet.cell(row=r, column=col).value for r in range(2, len(summary) + 2)]
    np.testing.assert_allclose(values, summary["registered_poor_persons"])
    assert sheet.cell(row=2, column=col).number_format == "#,##0"
    ledger = book["资金台账"]
    instruments = {c.value for c in ledger["B"][1:]}
    assert "最低生活保障(低保)" in instruments and "dibao" not in instruments
    about = book["说明"]
    assert about["A2"].value == "情景" and about["B2"].value == "consolidation"
    page = rep.html.read_text(encoding="utf-8")
    assert 'lang="zh-CN"' in page and "贫困发生率" in page


def test_assumptions_state_sources_and_what_a_scenario_changed(folders):
    from fupin_sim.report.folder import assumptions

    table = assumptions(open_folder(folders / "compare"))
    assert {"status.line", "income.wage_growth"} <= set(table["parameter"])
    assert table["source"].str.len().gt(10).all()
    fitted = assumptions(open_folder(folders / "calibrate"))
    row = fitted.set_index("parameter").loc["income.wage_growth"]
    assert row["changed"] and str(row["source"]).startswith("calibrated")


def test_an_instruments_budget_factor_is_named_in_both_languages():
    # a sweep's design column `instrument_scale.<instrument>`; other parameter paths stay raw
    assert label("instrument_scale.microloan") == "Microloans: budget ×"
    assert label("instrument_scale.microloan", "zh") == "扶贫小额信贷预算倍数"
    assert label("instrument_scale.no_such_instrument", "zh") == "instrument_scale.no_such_instrument"
    assert label("income.wage_growth", "zh") == "income.wage_growth"


def test_numbers_are_written_for_people():
    assert plots.number(1234567.891) == "1,234,568"
    assert plots.number(12.345) == "12.3" and plots.number(0.12345) == "0.123" and plots.number(3.0) == "3"
    assert plots.number(float("nan")) == "–" and plots.number(0.0004) == "4.00e-04"
    assert cell(2016, "year") == "2016" and cell(2016, "exits") == "2,016" and cell(True, "within_1sd") == "✓"


def test_report_refuses_what_is_not_a_finished_result(tmp_path, capsys):
    with pytest.raises(InputError, match="no manifest.json"):
        report(tmp_path)
    (tmp_path / "calibration.json").write_text("{}")
    with pytest.raises(InputError, match="unfinished calibration"):
        report(tmp_path)
    assert main(["report", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such result folder" in err
    with pytest.raises(ValueError, match="choose one of en, zh"):
        text("about", "fr")
