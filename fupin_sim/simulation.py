"""The yearly loop.

Each simulated year runs these steps in this order, each vectorised over all households
and persons (no Python loop over either):

1. demography — ageing, deaths, births, school stages, labour capacity;
2. income     — wage, operating, property and transfer income, covariate shocks;
3. shocks     — illness and its costs through the reimbursement chain, chronic illness
                and disability onset, schooling costs;
4. interventions — the scenario's instruments, in its order: support from earlier years
                carried on, then eligibility, priority, rationing by budget, the ledger,
                and the change to each served household (`fupin_sim.interventions`);
5. status     — the poverty test, "两不愁三保障", register transitions, monitoring;
6. record     — the year's aggregates, and the per-household panel when asked for.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pandas as pd

from fupin_sim import status
from fupin_sim.errors import InputError
from fupin_sim.population import Population
from fupin_sim.population.register import read_register
from fupin_sim.population.state import State
from fupin_sim.population.synthetic import generate
from fupin_sim.processes import demography, income, shocks
from fupin_sim.results import Result, manifest
from fupin_sim.rng import RandomStreams
from fupin_sim.scenario import Scenario

STEPS: tuple[tuple[str, Callable | None], ...] = (
    ("demography", demography.step),
    ("income", income.step),
    ("shocks", shocks.step),
    ("interventions", None),  # bound to the scenario's programme by each Simulation
    ("status", status.step),
)
PANEL_COLUMNS = ("household_id", "status", "size", "income_wage", "income_operating", "income_property",
                 "income_transfer", "oop", "school_cost", "monitored")


def build_population(scenario: Scenario, seed: int) -> Population:
    """The scenario's starting snapshot: its register, or a synthetic population at first year − 1,
    drawn with the scenario's population seed when it fixes one, else with the run's seed."""
    first = scenario.years[0]
    seed = seed if scenario.population_seed is None else scenario.population_seed
    if scenario.register:
        pop = read_register(scenario.register)
        if scenario.households is not None and scenario.households < len(pop.households):
            pop = pop.sample(scenario.households, seed)
    else:
        pop = generate(scenario.params, scenario.households, seed=seed, year=first - 1)
    if pop.year >= first:
        raise InputError(f"the register describes the end of {pop.year}, so the run must start after it "
                         f"(years start at {first})", file=scenario.file, where="years")
    return pop


class Simulation:
    """One run of a scenario with one seed. `step()` advances a year; `run()` does them all.

    The scenario's `instrument_scale` ({instrument: factor}, `Scenario.edit`) multiplies
    instruments' budgets: each year an instrument may spend factor × what it drew from each
    limited line in the same run with no instrument scaled
    (`fupin_sim.interventions.funding.earmark`). That reference run is simulated alongside, a
    year ahead of each step, so it costs a second run; factors of 1 change nothing and need none.
    """

    def __init__(self, scenario: Scenario, *, seed: int | None = None, population: Population | None = None,
                 panel: bool = False):
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else int(seed)
        scale = scenario.instrument_scale
        pop = build_population(scenario, self.seed) if population is None else population
        self.population_origin = pop.origin
        self.params = scenario.params
        self.state = State(pop, self.params)
        self.programme = scenario.programme.fresh()
        self.programme.prepare(self.state)
        self.reference = Simulation(replace(scenario, instrument_scale={}), seed=self.seed,
                                    population=pop) if scale else None
        self.programme.scale = scale
        self.steps = [process or self.programme.step for _, process in STEPS]
        self.rs = RandomStreams(self.seed)
        self.rows: list[dict] = []
        self.panel_frames: list[pd.DataFrame] | None = [] if panel else None

    @property
    def year(self) -> int:
        """The last year simulated (the snapshot's year before the first step)."""
        return self.state.year

    @property
    def done(self) -> bool:
        return self.state.year >= self.scenario.years[1]

    def step(self) -> dict:
        """Simulate one year; return its metrics (also kept for the summary)."""
        if self.done:
            raise RuntimeError(f"the run already reached its last year, {self.scenario.years[1]}")
        year = self.state.year + 1
        if self.reference is not None:  # the unscaled run's draws this year set the scaled budgets
            self.reference.step()
            self.programme.reference[year] = self.reference.programme.drawn[year]
        p = self.params.at(year)
        row: dict = {"year": year}
        for process in self.steps:
            row.update(process(self.state, p, self.rs, year))
        self.state.year = year
        if year >= self.scenario.years[0]:
            self.rows.append(row)
            if self.panel_frames is not None:
                self.panel_frames.append(self._panel(year))
        return row

    def _panel(self, year: int) -> pd.DataFrame:
        h = self.state.h
        frame = pd.DataFrame({k: h[k].copy() for k in PANEL_COLUMNS})
        frame.insert(0, "year", year)
        frame["test_income_per_capita"] = status.test_income(self.state, self.params.at(year))
        return frame

    def run(self) -> Result:
        while not self.done:
            self.step()
        return self.result()

    def result(self) -> Result:
        summary = pd.DataFrame(self.rows)
        panel = pd.concat(self.panel_frames, ignore_index=True) if self.panel_frames else None
        extra = {"instrument_scale": self.scenario.instrument_scale} if self.scenario.instrument_scale else {}
        return Result(summary=summary, manifest=manifest(self.scenario, self.seed, self.population_origin,
                                                         households=len(self.state.h["size"]), **extra),
                      panel=panel, params=self.params, ledger=self.programme.ledger.frame(),
                      budget=pd.DataFrame(self.programme.budget_rows,
                                          columns=["year", "line", "source", "available", "spent", "unspent"]))


def simulate(scenario: Scenario, seed: int | None = None, panel: bool = False) -> Result:
    return Simulation(scenario, seed=seed, panel=panel).run()
