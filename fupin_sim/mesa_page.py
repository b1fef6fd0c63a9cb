"""A Mesa SolaraViz page for planners: pick a scenario, move the budget sliders, press Reset
to rebuild, then Step or ▶ to watch poverty, exits, relapses and spending year by year.

    python3 -m pip install "solara>=1.30" altair      # Mesa's visualisation needs both
    solara run fupin_sim/mesa_page.py                   # then open http://localhost:8765

Sliders take effect on Reset (Mesa's SolaraViz rebuilds the model with the new values).
Budget sliders multiply the scenario's finite budget amounts: "all budgets" every line,
and the per-source sliders the lines funded by that source (the two multiply).
'Unlimited' entitlement lines (dibao and the like) are not capped by any slider.
"""
from __future__ import annotations

import solara
from mesa.visualization import SolaraViz, make_plot_component

from fupin_sim.mesa_model import FupinModel
from fupin_sim.scenario import bundled_scenarios

SOURCE_SLIDERS = {  # model keyword -> funding source it scales
    "scale_central_special": "central_special",
    "scale_integrated_agriculture": "integrated_agriculture",
    "scale_provincial_special": "provincial_special",
    "scale_east_west": "east_west",
}


class PlannerModel(FupinModel):
    """FupinModel with one keyword per slider (SolaraViz passes sliders as keywords)."""

    def __init__(self, scenario: str = "baseline", households: int = 2000, seed: int = 1,
                 budget_scale: float = 1.0, scale_central_special: float = 1.0,
                 scale_integrated_agriculture: float = 1.0, scale_provincial_special: float = 1.0,
                 scale_east_west: float = 1.0, **kwargs):
        from fupin_sim.scenario import load_scenario

        by_source = {"central_special": scale_central_special, "integrated_agriculture": scale_integrated_agriculture,
                     "provincial_special": scale_provincial_special, "east_west": scale_east_west}
        budgets = load_scenario(scenario).data.get("budgets") or {}
        lines = {name: by_source[entry.get("source", name)] for name, entry in budgets.items()
                 if isinstance(entry, dict) and entry.get("source", name) in by_source}
        super().__init__(scenario, households=int(households), seed=int(seed), budget_scale=float(budget_scale),
                         **{f"budget_scale.{k}": v for k, v in lines.items()}, **kwargs)


def _slider(label, value=1.0):
    return {"type": "SliderFloat", "value": value, "label": label, "min": 0.0, "max": 3.0, "step": 0.1}


MODEL_PARAMS = {
    "scenario": {"type": "Select", "value": "baseline", "label": "Scenario",
                 "values": [s for s in bundled_scenarios()]},
    "households": {"type": "SliderInt", "value": 2000, "label": "Simulated households", "min": 500,
                   "max": 20000, "step": 500},
    "seed": {"type": "SliderInt", "value": 1, "label": "Seed", "min": 0, "max": 99, "step": 1},
    "budget_scale": _slider("All budgets ×"),
    **{key: _slider(f"{source.replace('_', ' ')} ×") for key, source in SOURCE_SLIDERS.items()},
}


@solara.component
def YearTable(model):
    """The year reached and the metrics so far, as a table."""
    from mesa.visualization.utils import update_counter

    update_counter.get()
    frame = model.datacollector.get_model_vars_dataframe()
    solara.Markdown(f"**{model.scenario.name}**, {model.n_households} households, seed {model.fupin_seed}: "
                    f"year {model.year} of {model.scenario.years[0]}–{model.scenario.years[1]}"
                    + ("" if model.running else " (finished)"))
    if len(frame):
        solara.DataFrame(frame.drop(columns=["fupin_seed"]).round(4), items_per_page=20)


def make_page(model: FupinModel | None = None):
    model = model or PlannerModel()
    components = [  # make_plot_component returns (component, page) pairs already
        make_plot_component({"registered_poor": "tab:red", "monitored": "tab:orange"}),
        make_plot_component({"exits": "tab:green", "relapses": "tab:red", "new_poor": "tab:purple"}),
        make_plot_component({"headcount_ratio": "tab:blue", "fgt1": "tab:cyan"}),
        make_plot_component({"spending": "tab:brown"}),
        (YearTable, 0),
    ]
    return SolaraViz(model, components=components, model_params=MODEL_PARAMS, name="fupin_sim: 扶贫 planner",
                     play_interval=300)


page = make_page()
