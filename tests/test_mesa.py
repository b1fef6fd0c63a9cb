"""The Mesa adapter (fupin_sim/mesa_model.py): stepping, seeds, overrides, batch_run and the
household agents view. Tiny populations and 2-3 years keep the file fast.

Importing mesa forces multiprocessing's spawn start method for the whole process, so mesa
is imported inside the tests, and a module fixture puts the start method back afterwards
for the rest of the test session.
"""
from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fupin_sim as fs

ROOT = Path(__file__).resolve().parents[1]
HH, YEARS = 400, (2016, 2018)



def times(amount, f):
    """A line's amounts, one number or dated by year, times f ('unlimited' stays so)."""
    if isinstance(amount, dict):
        return {y: times(v, f) for y, v in amount.items()}
    return amount if amount == "unlimited" else amount * f


@pytest.fixture(scope="module", autouse=True)
def restore_start_method():
    before = multiprocessing.get_start_method(allow_none=True)
    yield
    if multiprocessing.get_start_method(allow_none=True) != before:
        multiprocessing.set_start_method(before, force=True)


@pytest.fixture(scope="module")
def mm():
    from fupin_sim import mesa_model

    return mesa_model


def _run_model(model):
    while model.running:
        model.step()
    return model.datacollector.get_model_vars_dataframe()


def _reference(scenario="baseline", seed=1, **kw):
    return fs.run(scenario, households=HH, years=YEARS, seed=seed, **kw).summary


def _same(frame: pd.DataFrame, ref: pd.DataFrame, metrics) -> None:
    """Exactly the engine's numbers, year by year."""
    assert list(frame["year"]) == list(ref["year"])
    for m in metrics:
        np.testing.assert_array_equal(np.asarray(frame[m], float), np.asarray(ref[m], float), err_msg=m)


@pytest.mark.slow
def test_import_fupin_sim_does_not_import_mesa():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", "import fupin_sim, sys; print('mesa' in sys.modules)"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_step_is_one_year_and_collects_the_engine_metrics(mm):
    model = mm.FupinModel("baseline", households=HH, years=YEARS, seed=1)
    assert model.running and model.year == 2015 and model.steps == 0
    assert len(model.agents) == 0  # no per-household objects to run the engine
    model.step()
    assert model.year == 2016 and model.steps == 1 and model.running
    frame = _run_model(model)
    assert not model.running and model.steps == 3 and model.year == 2018
    assert list(frame.columns) == [*mm.DEFAULT_METRICS, "fupin_seed"]
    _same(frame, _reference(seed=1), mm.DEFAULT_METRICS)
    assert (frame["fupin_seed"] == 1).all()
    pd.testing.assert_frame_equal(model.summary, _reference(seed=1))
    model.step()  # a finished model stays finished
    assert model.steps == 3 and len(model.datacollector.get_model_vars_dataframe()) == 3


def test_seed_mapping(mm):
    def seed_of(**kw):
        return mm.FupinModel("no_policy", households=50, years=2016, **kw).fupin_seed

    assert seed_of(seed=5) == 5 and seed_of(seed=5.0) == 5 and seed_of(seed=np.int64(7)) == 7
    assert seed_of(seed=2.5) == seed_of(seed=2.5) != 2
    assert seed_of(seed="county A") == seed_of(seed="county A")
    assert seed_of(rng=4) == seed_of(rng=4)
    unseeded = mm.FupinModel("no_policy", households=HH, years=YEARS)
    assert unseeded.fupin_seed != seed_of()  # fresh entropy (equal with probability 2**-31)
    again = mm.FupinModel("no_policy", households=HH, years=YEARS, seed=unseeded.fupin_seed)
    pd.testing.assert_frame_equal(_run_model(unseeded), _run_model(again))


def test_metrics_choice(mm):
    frame = _run_model(mm.FupinModel("no_policy", households=HH, years=YEARS, seed=2,
                                     metrics=["year", "fgt0", "fgt2", "deaths"]))
    _same(frame, _reference("no_policy", seed=2), ["fgt0", "fgt2", "deaths"])
    with pytest.raises(KeyError, match="unknown metrics \\['povrety'\\] \\(did you mean 'poverty_line'\\?\\)"):
        mm.FupinModel("no_policy", households=HH, years=YEARS, seed=2, metrics=["year", "povrety"])
    model = mm.FupinModel("no_policy", households=HH, years=YEARS, seed=2, metrics=["year", "spending_microloan"])
    with pytest.raises(KeyError, match="not reported by 'no_policy'"):  # declared, but no microloans here
        model.step()


def test_parameter_overrides_every_spelling(mm):
    ref = _reference(seed=3, parameters={"income.wage_growth": 0.2})
    assert not np.array_equal(ref["fgt1"], _reference(seed=3)["fgt1"])
    for kw in ({"parameters": {"income.wage_growth": 0.2}}, {"income.wage_growth": 0.2},
               {"income__wage_growth": np.float64(0.2)}):
        frame = _run_model(mm.FupinModel("baseline", households=HH, years=YEARS, seed=3, **kw))
        _same(frame, ref, mm.DEFAULT_METRICS)
    with pytest.raises(fs.InputError, match="did you mean 'income.wage_growth'"):
        mm.FupinModel("baseline", households=HH, seed=3, income__wage_growt=0.2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'housholds'"):
        mm.FupinModel("baseline", housholds=HH, seed=3)


def test_budget_scale(mm):
    def amounts(model):
        return {k: v["amounts"] for k, v in model.scenario.data["budgets"].items()}

    base = mm.FupinModel("baseline", households=HH, years=YEARS, seed=1)
    half = mm.FupinModel("baseline", households=HH, years=YEARS, seed=1, budget_scale=0.5)
    one_line = mm.FupinModel("baseline", households=HH, years=YEARS, seed=1,
                             budget_scale={"central_special": 0.0})
    for name, amount in amounts(base).items():
        if amount == "unlimited":
            assert amounts(half)[name] == "unlimited"
        else:
            assert amounts(half)[name] == times(amount, 0.5)
            assert amounts(one_line)[name] == (times(amount, 0.0) if name == "central_special" else amount)
    assert half.scenario.declared_years == base.scenario.declared_years
    for kw in ({"budget_scale.central_special": 0.0}, {"budget_scale__central_special": 0}):
        assert amounts(mm.FupinModel("baseline", households=HH, years=YEARS, seed=1, **kw)) == amounts(one_line)
    both = mm.FupinModel("baseline", households=HH, years=YEARS, seed=1, budget_scale=0.5,
                         budget_scale__east_west=3)
    assert amounts(both)["east_west"] == times(amounts(base)["east_west"], 1.5)
    assert amounts(both)["central_special"] == times(amounts(base)["central_special"], 0.5)
    def limited_spending(model):  # entitlements (unlimited lines) may grow when development money shrinks
        _run_model(model)
        rows = pd.DataFrame(model.sim.programme.budget_rows)
        return rows.loc[rows["available"].notna(), "spent"].sum()

    spent = limited_spending(base)
    assert limited_spending(half) < spent and limited_spending(one_line) < spent
    # year-by-year amounts scale too
    cons = mm.FupinModel("consolidation", households=HH, years=YEARS, seed=1, budget_scale=2)
    line = cons.scenario.data["budgets"]["integrated_agriculture"]["amounts"]
    assert line[2016] == 2 * fs.load_scenario("consolidation").data["budgets"]["integrated_agriculture"]["amounts"][2016]
    with pytest.raises(fs.InputError, match="unknown budget line 'central_specal'.*did you mean 'central_special'"):
        mm.FupinModel("baseline", households=HH, budget_scale={"central_specal": 2})
    with pytest.raises(fs.InputError, match="factor >= 0"):
        mm.FupinModel("baseline", households=HH, budget_scale=-1)


def test_instrument_scale(mm):
    """Each instrument's budget × its factor, in every spelling, the same as the engine's
    Simulation with those scales; 0 spends nothing; bad input named."""
    from fupin_sim.simulation import Simulation

    sc = fs.load_scenario("baseline").edit(households=1000, years=YEARS, seed=2)
    kw = dict(households=1000, years=YEARS, seed=2)

    def engine(**scale):
        return Simulation(sc.edit(instrument_scale=scale), seed=2).run()

    spent = {}
    for factor in (0.0, 0.5, 1.0, 2.0):
        model = mm.FupinModel("baseline", instrument_scale={"microloan": factor},
                              metrics=[*mm.DEFAULT_METRICS, "spending_microloan", "loans_issued"], **kw)
        frame = _run_model(model)
        _same(frame, engine(microloan=factor), [*mm.DEFAULT_METRICS, "spending_microloan", "loans_issued"])
        spent[factor] = (frame["spending_microloan"].sum(), frame["loans_issued"].sum())
        assert model.instrument_scale == ({} if factor == 1 else {"microloan": factor})
    assert spent[0.0] == (0.0, 0.0)
    assert spent[0.5][1] < spent[1.0][1] < spent[2.0][1]  # loans issued follow the microloan budget
    for kw2 in ({"instrument_scale.microloan": 0.5}, {"instrument_scale__microloan": np.float64(0.5)}):
        model = mm.FupinModel("baseline", **kw, **kw2)
        _same(_run_model(model), engine(microloan=0.5), mm.DEFAULT_METRICS)
    both = mm.FupinModel("baseline", budget_scale=0.5, instrument_scale={"solar": 2}, **kw)
    _same(_run_model(both), Simulation(sc.edit(budget_scale=0.5, instrument_scale={"solar": 2}), seed=2).run(),
          mm.DEFAULT_METRICS)
    assert both.result().manifest["instrument_scale"] == {"solar": 2.0}
    with pytest.raises(fs.InputError, match=r"instrument_scale.microlon: unknown instrument 'microlon' "
                                            r"\(did you mean 'microloan'\?\)"):
        mm.FupinModel("baseline", households=HH, instrument_scale={"microlon": 0.5})
    with pytest.raises(fs.InputError, match=r"instrument_scale.solar: expected a finite factor >= 0, got -1"):
        mm.FupinModel("baseline", households=HH, instrument_scale__solar=-1)
    with pytest.raises(fs.InputError, match="'dibao' cannot be scaled: it is an entitlement"):
        mm.FupinModel("baseline", households=HH, instrument_scale={"dibao": 2})
    with pytest.raises(fs.InputError, match=r"instrument_scale: expected \{instrument: factor\}, got 0.5"):
        mm.FupinModel("baseline", households=HH, instrument_scale=0.5)


@pytest.mark.slow
def test_batch_run_matches_fupin_runs_with_one_and_two_processes(mm):
    import mesa

    grid = {"scenario": ["baseline", "no_policy"], "households": HH, "years": [YEARS], "seed": [1, 2]}
    kw = dict(iterations=1, max_steps=100, data_collection_period=1, display_progress=False)
    one = pd.DataFrame(mesa.batch_run(mm.FupinModel, parameters=grid, number_processes=1, **kw))
    two = pd.DataFrame(mesa.batch_run(mm.FupinModel, parameters=grid, number_processes=2, **kw))
    assert len(one) == 2 * 2 * 3  # scenarios x seeds x years
    key = ["scenario", "seed", "Step"]
    cols = [*key, "year", *mm.DEFAULT_METRICS[1:], "fupin_seed"]
    pd.testing.assert_frame_equal(one.sort_values(key)[cols].reset_index(drop=True),
                                  two.sort_values(key)[cols].reset_index(drop=True))
    for (scenario, seed), rows in one.groupby(["scenario", "seed"]):
        rows = rows.sort_values("Step")
        assert list(rows["Step"]) == [0, 1, 2] and list(rows["year"]) == [2016, 2017, 2018]
        _same(rows.reset_index(drop=True), _reference(scenario, seed=seed), mm.DEFAULT_METRICS)
    # the default collection period: the last year only
    last = mesa.batch_run(mm.FupinModel, parameters={"scenario": "baseline", "households": HH, "years": [YEARS],
                                                     "seed": 1}, display_progress=False)
    assert len(last) == 1 and last[0]["year"] == 2018
    assert last[0]["registered_poor"] == _reference(seed=1)["registered_poor"].iloc[-1]


def test_batch_run_iterations_without_a_seed_are_distinct_and_repeatable(mm):
    import mesa

    rows = pd.DataFrame(mesa.batch_run(mm.FupinModel, parameters={"scenario": "no_policy", "households": HH,
                                                                  "years": [YEARS]},
                                       iterations=3, display_progress=False))
    assert rows["fupin_seed"].nunique() == 3
    for _, row in rows.iterrows():
        ref = _reference("no_policy", seed=int(row["fupin_seed"]))
        assert row["registered_poor"] == ref["registered_poor"].iloc[-1]


def test_batch_run_over_budget_scale_and_a_parameter(mm):
    import mesa

    rows = pd.DataFrame(mesa.batch_run(
        mm.FupinModel, parameters={"scenario": "baseline", "households": HH, "years": [YEARS], "seed": 4,
                                   "budget_scale": np.linspace(0.5, 1.0, 2), "income.wage_growth": [0.02, 0.2]},
        display_progress=False))
    assert len(rows) == 4 and rows["spending"].nunique() == 4
    row = rows[(rows["budget_scale"] == 1.0) & (rows["income.wage_growth"] == 0.2)].iloc[0]
    ref = _reference(seed=4, parameters={"income.wage_growth": 0.2})
    assert row["fgt1"] == ref["fgt1"].iloc[-1] and row["spending"] == ref["spending"].iloc[-1]


def test_register_before_the_first_year_is_burnt_in(mm, tmp_path):
    from fupin_sim.scenario import Scenario

    sc = fs.load_scenario("no_policy")
    pop = fs.generate(sc.params, HH, seed=6, year=2013)
    fs.write_register(pop, tmp_path / "reg")
    data = dict(sc.data, population={"register": str(tmp_path / "reg")}, years=[2016, 2020])
    register_sc = Scenario.from_data(data, sc.file)
    model = mm.FupinModel(register_sc, years=YEARS, seed=6)
    assert model.year == 2015 and model.steps == 0
    frame = _run_model(model)
    _same(frame, fs.run(register_sc, years=YEARS, seed=6).summary, mm.DEFAULT_METRICS)


def test_household_agents_read_the_engine_arrays(mm):
    import mesa

    model = mm.FupinModel("baseline", households=300, years=YEARS, seed=1)
    agents = model.household_agents()
    assert len(agents) == 300 and model.household_agents() is agents and len(model.agents) == 300
    h = model.sim.state.h
    a = agents[7]
    assert isinstance(a, mesa.Agent) and a.row == 7 and a.model is model
    assert a.household_id == h["household_id"][7] and a.size == h["size"][7]
    assert a.status_name == ("nonpoor", "poor", "exited")[h["status"][7]]
    assert a.land_mu == h["land_mu"][7]  # any household column
    assert a.income == pytest.approx(sum(h[f"income_{s}"][7] for s in ("wage", "operating", "property",
                                                                         "transfer")))
    assert len(a.persons()) == a.size
    with pytest.raises(AttributeError, match="household columns"):
        a.no_such_column
    model.step()  # views follow the engine, and households formed in the year (分户) join
    assert len(agents) == model.sim.state.n > 300 and agents[model.sim.state.n - 1].row == model.sim.state.n - 1
    assert [x.income_wage for x in agents] == list(model.sim.state.h["income_wage"])
    assert [x.status for x in agents] == list(model.sim.state.h["status"])
    poor = agents.select(lambda x: x.status == 1)
    assert len(poor) == int((model.sim.state.h["status"] == 1).sum())
    # a Mesa space: villages on a grid
    n = model.sim.state.n
    villages = sorted(set(model.sim.state.h["village"].tolist()))
    grid = mesa.space.MultiGrid(len(villages), 1, torus=False)
    for x in agents:
        grid.place_agent(x, (villages.index(x.village), 0))
    assert sum(len(grid.get_cell_list_contents([(i, 0)])) for i in range(len(villages))) == n
    frame = model.households_frame()
    assert len(frame) == n and frame["status"].dtype == "category"


def test_household_agents_refused_above_the_limit(mm):
    model = mm.FupinModel("no_policy", households=300, years=2016, seed=1, agent_limit=100)
    with pytest.raises(ValueError, match=r"300 households, above the limit of 100.*limit=300.*agent_limit=300"):
        model.household_agents()
    assert len(model.agents) == 0
    assert len(model.household_agents(limit=300)) == 300


@pytest.mark.filterwarnings("ignore::UserWarning")  # solara's hook check on mesa's own SolaraViz code
def _render_controls(model, *panels):
    """The page's model creator, `panels` (each built from the model parameters) and controls
    around `model`, rendered without a browser: (the reactive model, its parameters, the
    rendered context)."""
    import solara
    from mesa.visualization.solara_viz import ModelController, ModelCreator

    from fupin_sim import mesa_page

    reactive, params, r = solara.reactive(model), solara.reactive({}), solara.reactive
    _, rc = solara.render(solara.Column(children=[
        ModelCreator(reactive, mesa_page.MODEL_PARAMS, model_parameters=params),
        *(panel(params) for panel in panels),
        ModelController(reactive, model_parameters=params, play_interval=r(100), render_interval=r(1),
                        use_threads=r(False))]), handle_error=False)
    return reactive, params, rc


def test_planner_page_renders_steps_and_resets():
    """The SolaraViz page (optional: needs solara and altair), rendered without a browser."""
    pytest.importorskip("solara")
    pytest.importorskip("altair")
    import ipyvuetify as v
    import solara

    from fupin_sim import mesa_page

    model = mesa_page.PlannerModel(households=500)
    box, _ = solara.render(mesa_page.make_page(model), handle_error=False)

    def widgets(w):
        yield w
        for attr in ("children", "items"):
            for child in getattr(w, attr, None) or ():
                if hasattr(child, "keys"):  # a widget, not text
                    yield from widgets(child)

    assert sum(type(w).__name__ == "Image" for w in widgets(box)) == 4  # the four plots
    texts = [c for w in widgets(box) for c in getattr(w, "children", None) or () if isinstance(c, str)]
    assert any("baseline, 500 households, seed 1: not started, runs 2016–2020" in t for t in texts), texts
    assert any("all budgets × 1, central special × 1" in t for t in texts), texts

    reactive, params, rc = _render_controls(model)
    rc.find(v.Btn, children=["Step"]).widget.click()
    assert reactive.value.year == 2016 == reactive.value.datacollector.get_model_vars_dataframe()["year"].iloc[-1]
    sliders = {w.label: w for w in rc.find(v.Slider).widgets}
    sliders["Simulated households"].v_model = 500
    sliders["All budgets ×"].v_model = 0.5
    sliders["central special ×"].v_model = 2.0
    rc.find(v.Btn, children=["Reset"]).widget.click()
    new = reactive.value
    assert new is not model and new.year == 2015 and new.n_households == 500
    base = fs.load_scenario("baseline").data["budgets"]
    got = new.scenario.data["budgets"]
    assert got["east_west"]["amounts"] == times(base["east_west"]["amounts"], 0.5)
    assert got["central_special"]["amounts"] == times(base["central_special"]["amounts"], 0.5 * 2.0)
    assert got["grassland_subsidy"]["amounts"] == "unlimited"  # central_special source, but an entitlement


@pytest.mark.filterwarnings("ignore::UserWarning")  # solara's hook check on mesa's own SolaraViz code
def test_planner_page_instrument_panel_follows_the_scenario():
    """One slider per budgeted instrument of the scenario picked; Reset builds the model with
    them; the spending table shows each instrument's scale; no_policy has none."""
    pytest.importorskip("solara")
    pytest.importorskip("altair")
    import ipyvuetify as v

    from fupin_sim import mesa_page

    model = mesa_page.PlannerModel(households=500)
    reactive, params, rc = _render_controls(model, mesa_page.InstrumentSliders)

    def instrument_sliders():
        return [w.label for w in rc.find(v.Slider).widgets
                if w.label not in {x["label"] for x in mesa_page.MODEL_PARAMS.values()}]

    budgeted = fs.load_scenario("baseline").programme.budgeted()
    assert sorted(instrument_sliders()) == sorted(f"{n.replace('_', ' ')} ×" for n in budgeted)
    assert "dibao ×" not in instrument_sliders()  # an entitlement: no budget to scale
    sliders = {w.label: w for w in rc.find(v.Slider).widgets}
    sliders["solar ×"].v_model = 0.0  # kept for baseline only: jiangsu has no solar
    rc.find(v.Select).widget.v_model = "jiangsu"
    assert sorted(instrument_sliders()) == sorted(f"{n.replace('_', ' ')} ×"
                                                  for n in fs.load_scenario("jiangsu").programme.budgeted())
    sliders = {w.label: w for w in rc.find(v.Slider).widgets}
    sliders["Simulated households"].v_model = 500
    sliders["microloan ×"].v_model = 0.5
    sliders["industry menu ×"].v_model = 0.0
    rc.find(v.Btn, children=["Reset"]).widget.click()
    new = reactive.value
    assert new.scenario.name == "jiangsu" and new.instrument_scale == {"microloan": 0.5, "industry_menu": 0.0}
    assert new.budget_settings["microloan"] == 0.5
    rc.find(v.Btn, children=["Step"]).widget.click()
    frame = new.datacollector.get_model_vars_dataframe()
    table = mesa_page.instrument_table(new, frame).set_index("instrument")
    assert table.loc["microloan", "budget"] == "× 0.5" and table.loc["dibao", "budget"] == "entitlement"
    assert table.loc["industry menu", "2016"] == "0.00" and table.loc["education subsidy", "budget"] == "× 1"
    assert "loans issued" in table.index
    rc.find(v.Btn, children=["All × 1"]).widget.click()
    assert params.value["instrument_scale"] == {}
    rc.find(v.Select).widget.v_model = "no_policy"
    texts = [c for w in rc.find(v.Html).widgets for c in (w.children or []) if isinstance(c, str)]
    assert instrument_sliders() == [] and any("no_policy: no instrument is paid from a limited budget line" in t
                                              for t in texts), texts
