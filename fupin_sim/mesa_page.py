"""A Mesa SolaraViz page for planners: pick a scenario, move the budget sliders, press Reset
to rebuild, then Step or ▶ to watch poverty, exits, relapses and spending year by year.

    python3 -m pip install "fupin-sim[page]"      # solara, its front-end assets, altair, networkx
    solara run fupin_sim.mesa_page                # then open http://localhost:8765

Sliders take effect on Reset (the model is rebuilt with the new values).
Budget sliders multiply the scenario's finite budget amounts: "all budgets" every line,
and the per-source sliders the lines funded by that source (the two multiply).
'Unlimited' entitlement lines (dibao and the like) are not capped by any slider.
"Budget per instrument" (a collapsible panel) has one slider per instrument of the chosen
scenario that is paid from limited lines: × its budget, i.e. each year it may spend that
factor × what it spends with the line sliders as set and every instrument at × 1
(FupinModel's `instrument_scale`). The page is Mesa's SolaraViz layout with that panel
added (SolaraViz's parameter card cannot change with the chosen scenario).
"""
from __future__ import annotations

from functools import lru_cache

import solara
import solara.lab
from mesa.visualization.solara_viz import ComponentsView, ModelController, ModelCreator, ShowSteps

from fupin_sim.mesa_model import DEFAULT_METRICS, FupinModel
from fupin_sim.scenario import bundled_scenarios, load_scenario

SOURCE_SLIDERS = {  # model keyword -> funding source it scales
    "scale_central_special": "central_special",
    "scale_integrated_agriculture": "integrated_agriculture",
    "scale_provincial_special": "provincial_special",
    "scale_east_west": "east_west",
}


class PlannerModel(FupinModel):
    """FupinModel with one keyword per slider (the page passes sliders as keywords on Reset).
    `instrument_scale` is the instrument panel's {instrument: factor}; it may still hold
    instruments of a scenario picked before, so only this scenario's budgeted ones are used."""

    def __init__(self, scenario: str = "baseline", households: int = 2000, seed: int = 1,
                 budget_scale: float = 1.0, scale_central_special: float = 1.0,
                 scale_integrated_agriculture: float = 1.0, scale_provincial_special: float = 1.0,
                 scale_east_west: float = 1.0, instrument_scale: dict[str, float] | None = None, **kwargs):
        by_source = {"central_special": scale_central_special, "integrated_agriculture": scale_integrated_agriculture,
                     "provincial_special": scale_provincial_special, "east_west": scale_east_west}
        budgets = load_scenario(scenario).data.get("budgets") or {}
        lines = {name: by_source[entry.get("source", name)] for name, entry in budgets.items()
                 if isinstance(entry, dict) and entry.get("source", name) in by_source}
        # the panel keeps the values of every scenario picked so far: use this scenario's
        budgeted = budgeted_instruments(scenario)
        instruments = {k: float(v) for k, v in (instrument_scale or {}).items() if k in budgeted and v != 1}
        super().__init__(scenario, households=int(households), seed=int(seed), budget_scale=float(budget_scale),
                         **{f"budget_scale.{k}": v for k, v in lines.items()}, instrument_scale=instruments,
                         metrics=kwargs.pop("metrics", None) or [*DEFAULT_METRICS, *instrument_metrics(scenario)],
                         **kwargs)
        self.budget_settings = {"all budgets": float(budget_scale), **by_source, **instruments}  # shown on the page


@lru_cache(maxsize=None)
def budgeted_instruments(scenario: str) -> tuple[str, ...]:
    """The scenario's instruments with a budget to scale (not entitlements), in its order."""
    return tuple(load_scenario(scenario).programme.budgeted())


@lru_cache(maxsize=None)
def instrument_families(scenario: str) -> dict[str, str]:
    return {it.label: it.instrument.family for it in load_scenario(scenario).programme.items}


@lru_cache(maxsize=None)
def instrument_metrics(scenario: str) -> tuple[str, ...]:
    """What the instrument table shows: each instrument's spending, and loans issued if any."""
    items = load_scenario(scenario).programme.items
    loans = ("loans_issued",) if any(it.instrument.loan for it in items) else ()
    return (*(f"spending_{it.label}" for it in items), *loans)


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


@solara.component
def InstrumentTable(model):
    """Spending by instrument and year, to see what an instrument's slider did."""
    from mesa.visualization.utils import update_counter

    update_counter.get()
    frame = model.datacollector.get_model_vars_dataframe()
    solara.Text("Spending by instrument, million yuan", style={"font-weight": "bold"})
    if len(frame):
        solara.DataFrame(instrument_table(model, frame), items_per_page=25)
    else:
        solara.Text("press Step or Play")


def instrument_table(model, frame):
    """One row per instrument, one column per year, in million yuan; the budget column says
    "× f" for a scaled instrument and "entitlement" for one paid whatever is due."""
    import pandas as pd

    scaled = model.instrument_scale
    budgeted = set(model.sim.programme.budgeted())
    rows = []
    for it in model.sim.programme.items:
        column = f"spending_{it.label}"
        if column not in frame:
            continue
        budget = f"× {scaled[it.label]:g}" if it.label in scaled else ("× 1" if it.label in budgeted else "entitlement")
        rows.append({"instrument": it.label.replace("_", " "), "budget": budget,
                     **{f"{year:.0f}": f"{v / 1e6:,.2f}" for year, v in zip(frame["year"], frame[column])}})
    if "loans_issued" in frame:  # a microloan's public spending is its interest subsidy and defaults
        rows.append({"instrument": "loans issued", "budget": "bank credit",
                     **{f"{year:.0f}": f"{v / 1e6:,.2f}" for year, v in zip(frame["year"], frame["loans_issued"])}})
    return pd.DataFrame(rows)


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


GROUPS = {"industry and credit": ("industry", "credit"), "jobs": ("employment",),  # the panel's headings
          "relocation and housing": ("relocation", "housing"), "health and insurance": ("health", "insurance"),
          "assistance and monitoring": ("assistance", "monitoring")}  # any other family: under "other"


@solara.component
def InstrumentSliders(params: solara.Reactive):
    """One "× its budget" slider per budgeted instrument of the scenario picked (not yet
    built: the model follows on Reset), grouped by family, in a panel that opens on a click so
    a dozen or more sliders do not push the others away. Values go into the Reset keywords
    as `instrument_scale`."""
    scenario = params.value.get("scenario", MODEL_PARAMS["scenario"]["value"])
    names = budgeted_instruments(scenario)
    families = instrument_families(scenario)
    scales = params.value.get("instrument_scale") or {}

    def set_scale(name, value):
        now = params.value.get("instrument_scale") or {}
        params.value = {**params.value, "instrument_scale": {**now, name: float(value)}}

    if not names:
        solara.Text(f"{scenario}: no instrument is paid from a limited budget line")
        return
    with solara.Details(f"{len(names)} instruments of {scenario}", expand=False):
        with solara.Column(gap="0px"):
            solara.Text("× what each spends with every instrument at × 1; entitlements have no slider",
                        style={"font-size": "0.85em", "color": "grey"})
            known = {f for fams in GROUPS.values() for f in fams}
            for group, fams in [*GROUPS.items(), ("other", None)]:
                members = [n for n in names if (families[n] in fams if fams else families[n] not in known)]
                if not members:
                    continue
                solara.Text(group, style={"font-weight": "bold", "margin-top": "6px"})
                for name in members:
                    solara.SliderFloat(f"{name.replace('_', ' ')} ×", value=scales.get(name, 1.0),
                                       on_value=lambda v, name=name: set_scale(name, v),
                                       min=0.0, max=3.0, step=0.1)
            solara.Button("All × 1", text=True, on_click=lambda: params.set(
                {**params.value, "instrument_scale": {}}))


@solara.component
def PlannerPage(model: FupinModel, components: list, name: str, play_interval: int = 300):
    """Mesa's SolaraViz layout (controls, parameters, the charts' grid) with the instrument
    panel under the parameters; Mesa's own controller and parameter card do the rest."""
    reactive_model = solara.use_reactive(model)
    params = solara.use_reactive({})  # the keywords Reset builds the model with
    play = solara.use_reactive(play_interval)
    render_every, threads = solara.use_reactive(1), solara.use_reactive(False)
    with solara.AppBar():
        solara.AppBarTitle(name)
        solara.lab.ThemeToggle()
    with solara.Sidebar(), solara.Column():
        with solara.Card("Controls"):
            solara.SliderInt(label="Play Interval (ms)", value=play, min=1, max=500, step=10)
            ModelController(reactive_model, model_parameters=params, play_interval=play,
                            render_interval=render_every, use_threads=threads)
        with solara.Card("Model Parameters"):
            ModelCreator(reactive_model, MODEL_PARAMS, model_parameters=params)
        with solara.Card("Budget per instrument"):
            InstrumentSliders(params)
        with solara.Card("Information"):
            ShowSteps(reactive_model.value)
    ComponentsView(list(components), reactive_model.value)


def make_page(model: FupinModel | None = None):
    model = model or PlannerModel()
    components = [(year_plot(*plot), 0) for plot in PLOTS] + [(YearTable, 0), (InstrumentTable, 0)]
    return PlannerPage(model, components, name="fupin_sim: 扶贫 planner", play_interval=300)


page = make_page()
