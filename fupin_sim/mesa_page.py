"""A Mesa SolaraViz page for planners: pick a scenario, move the budget sliders, press Reset
to rebuild, then Step or ▶ to watch poverty, exits, relapses and spending year by year.

    python3 -m pip install "fupin-sim[page]"      # solara, its front-end assets, altair, networkx
    solara run fupin_sim.mesa_page                # then open http://localhost:8765

Sliders take effect on Reset (Mesa's SolaraViz rebuilds the model with the new values).
Budget sliders multiply the scenario's finite budget amounts: "all budgets" every line,
and the per-source sliders the lines funded by that source (the two multiply).
'Unlimited' entitlement lines (dibao and the like) are not capped by any slider.
"""
from __future__ import annotations

import solara
from mesa.visualization import SolaraViz

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
        self.budget_settings = {"all budgets": float(budget_scale), **by_source}  # shown on the page


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
    """The settings the model was built with, the year reached and the metrics so far.

    Plain Text, not solara.Markdown: Markdown fetches KaTeX from the CDN on every render,
    which an offline machine cannot reach (solara-assets does not ship KaTeX).
    """
    from mesa.visualization.utils import update_counter

    update_counter.get()
    frame = model.datacollector.get_model_vars_dataframe()
    first, last = model.scenario.years
    where = f"not started, runs {first}–{last}" if model.year < first else f"year {model.year} of {first}–{last}"
    solara.Text(f"{model.scenario.name}, {model.n_households} households, seed {model.fupin_seed}: {where}"
                + ("" if model.running else " (finished)"), style={"font-weight": "bold"})
    settings = getattr(model, "budget_settings", None)
    if settings:
        solara.Text("Budgets: " + ", ".join(f"{k.replace('_', ' ')} × {v:g}" for k, v in settings.items()))
    if len(frame):
        solara.DataFrame(year_table(frame), items_per_page=20)


TABLE = {  # DataCollector column -> (heading, format): short, to fit half the page's width
    "year": ("year", "{:.0f}"), "registered_poor": ("poor", "{:,.0f}"), "exits": ("exits", "{:,.0f}"),
    "relapses": ("relapses", "{:,.0f}"), "new_poor": ("new poor", "{:,.0f}"),
    "monitored": ("monitored", "{:,.0f}"), "headcount_ratio": ("headcount", "{:.1%}"),
    "fgt1": ("FGT1", "{:.1%}"), "spending": ("spent m¥", "{:,.1f}"),
}


def year_table(frame):
    """The yearly metrics as the page shows them: whole households, ratios in %, money in
    millions (the browser test formats its own run with this to compare)."""
    import pandas as pd

    scaled = frame.assign(spending=frame["spending"] / 1e6)
    return pd.DataFrame({heading: [fmt.format(v) for v in scaled[column]] for column, (heading, fmt) in TABLE.items()})


PLOTS = [  # (title, {column: (label, colour)}, factor): one chart each, against the year
    ("Households on the register", {"registered_poor": ("registered poor", "tab:red"),
                                    "monitored": ("monitored (at risk)", "tab:orange")}, 1.0),
    ("Exits, relapses and newly poor in the year", {"exits": ("exits", "tab:green"),
                                                    "relapses": ("relapses", "tab:red"),
                                                    "new_poor": ("newly poor", "tab:purple")}, 1.0),
    ("Poverty against the line, %", {"headcount_ratio": ("headcount ratio", "tab:blue"),
                                     "fgt1": ("poverty gap (FGT1)", "tab:cyan")}, 100.0),
    ("Spending, million yuan", {"spending": ("spending", "tab:brown")}, 1e-6),
]


def year_plot(title, series, factor=1.0):
    """A chart of some DataCollector columns against the year (Mesa's own plots put the step
    number on the x axis, which means nothing to a planner)."""

    @solara.component
    def YearPlot(model):
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
        from mesa.visualization.utils import update_counter

        update_counter.get()
        frame = model.datacollector.get_model_vars_dataframe()
        fig = Figure(figsize=(6, 4))
        ax = fig.subplots()
        for column, (label, colour) in series.items():
            ax.plot(frame["year"], frame[column] * factor, label=label, color=colour, marker="o")
        if frame.empty:  # not an empty 0-0.05 axis: say what to do
            ax.text(0.5, 0.5, "press Step or Play", transform=ax.transAxes, ha="center", color="grey")
            ax.set_yticks([])
        first, last = model.scenario.years
        ax.set_xlim(first - 0.5, last + 0.5)
        ax.set_ylim(bottom=0)  # every series is a count, a ratio or money: from zero, not zoomed in
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.set_xlabel("year")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        solara.FigureMatplotlib(fig, format="png", bbox_inches="tight", dependencies=[update_counter.value, model])

    YearPlot.__name__ = YearPlot.__qualname__ = "YearPlot_" + "_".join(series)
    return YearPlot


def make_page(model: FupinModel | None = None):
    model = model or PlannerModel()
    components = [(year_plot(*plot), 0) for plot in PLOTS] + [(YearTable, 0)]
    return SolaraViz(model, components=components, model_params=MODEL_PARAMS, name="fupin_sim: 扶贫 planner",
                     play_interval=300)


page = make_page()
