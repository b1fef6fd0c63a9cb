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
6. record     — the year's aggregates; observers (`Observer`: the panel, calibration moments,
                forecasts) see the year.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import replace

import pandas as pd

from fupin_sim import interventions, status
from fupin_sim.errors import InputError
from fupin_sim.metrics import Metrics
from fupin_sim.params import NotInForce
from fupin_sim.population import Population
from fupin_sim.population.register import read_register
from fupin_sim.population.state import State
from fupin_sim.population.synthetic import generate
from fupin_sim.processes import demography, income, shocks
from fupin_sim.rng import RandomStreams
from fupin_sim.scenario import Scenario

STEPS: tuple[tuple[str, Callable | None], ...] = (
    ("demography", demography.step),
    ("income", income.step),
    ("shocks", shocks.step),
    ("interventions", None),  # bound to the scenario's programme by each Simulation
    ("status", status.step),
)
# what the steps keep in the state beside the register's columns (`population.state.Carried`);
# the instruments declare theirs as the programme is prepared
CARRIED = (("processes.income", income.STATE), ("processes.shocks", shocks.STATE), ("status", status.STATE))
# the yearly metrics the steps report, each declared by the step that produces it
METRICS = Metrics(demography.METRICS, income.METRICS, shocks.METRICS, interventions.METRICS, status.METRICS)


MOST_SIMULATED = 5_000_000  # households simulated by default, at most (10^6 take about 1 GB); more only when asked


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
        households = scenario.households
        total = int(scenario.params.value("population.households"))
        if households is None and total > MOST_SIMULATED:
            raise InputError(f"the preset stands for {total:,} households, too many to simulate one by one: "
                             f"give the households to simulate (population.households, or --households), each "
                             f"then weighted to the preset's total", file=scenario.file, where="population.households")
        pop = generate(scenario.params, households, seed=seed, year=first - 1)
    if pop.year >= first:
        raise InputError(f"the register describes the end of {pop.year}, so the run must start after it "
                         f"(years start at {first})", file=scenario.file, where="years")
    return pop


@contextmanager
def located(scenario: Scenario):
    """A dated parameter read for a year before its first value is an error naming the
    scenario file and the key path where the value belongs."""
    try:
        yield
    except NotInForce as e:
        where = e.path if e.path.startswith("interventions.") else f"parameters.{e.path}"
        raise InputError(e.detail, file=scenario.file, where=where) from None


class Observer:
    """What watches a run (an analyzer in starsim's sense): the panel, calibration moments,
    forecasts and backtests see every simulated year through these hooks instead of driving
    the loop themselves. Override the ones you need; each gets the `Simulation`, whose state
    it reads and must not change."""

    def start(self, sim: "Simulation") -> None:
        """Before the first step: the state is the starting snapshot."""

    def observe(self, sim: "Simulation", year: int, row: dict) -> None:
        """After each simulated year, burn-in years before the scenario's first included
        (`year` < `sim.scenario.years[0]`); `row` holds the year's metrics."""

    def finish(self, sim: "Simulation") -> None:
        """After the last year."""


class Simulation:
    """One run of a scenario with one seed. `step()` advances a year; `run()` does them all.

    The scenario's `instrument_scale` ({instrument: factor}, `Scenario.edit`) multiplies
    instruments' budgets: each year an instrument may spend factor × its budget on each
    limited line (what it drew, or its share of a shared line) in the same run with no instrument scaled
    (`fupin_sim.interventions.funding.earmark`). That reference run is simulated alongside, a
    year ahead of each step, so it costs a second run; factors of 1 change nothing and need none.
    """

    def __init__(self, scenario: Scenario, *, seed: int | None = None, population: Population | None = None,
                 observers: Iterable[Observer] = ()):
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else int(seed)
        scale = scenario.instrument_scale
        with located(scenario):
            pop = build_population(scenario, self.seed) if population is None else population
            self.state = State(pop, scenario.params, CARRIED)
        self.population_origin = pop.origin
        self.params = scenario.params
        self.programme = scenario.programme.fresh()
        self.programme.prepare(self.state)
        self.reference = Simulation(replace(scenario, instrument_scale={}), seed=self.seed,
                                    population=pop) if scale else None
        self.programme.scale = scale
        self.steps = [process or self.programme.step for _, process in STEPS]
        self.rs = RandomStreams(self.seed)
        self.rows: list[dict] = []  # the yearly metrics of the scenario's years: the summary
        self.observers = list(observers)
        for observer in self.observers:
            observer.start(self)

    @property
    def year(self) -> int:
        """The last year simulated (the snapshot's year before the first step)."""
        return self.state.year

    @property
    def done(self) -> bool:
        return self.state.year >= self.scenario.years[1]

    @property
    def summary(self) -> pd.DataFrame:
        """One row of metrics per year simulated so far (of the scenario's years)."""
        return pd.DataFrame(self.rows)

    def step(self) -> dict:
        """Simulate one year; return its metrics (also kept for the summary)."""
        if self.done:
            raise RuntimeError(f"the run already reached its last year, {self.scenario.years[1]}")
        year = self.state.year + 1
        if self.reference is not None:  # the unscaled run's draws this year set the scaled budgets
            self.reference.step()
            self.programme.reference[year] = self.reference.programme.accounts[year]
        p = self.params.at(year)
        row: dict = {"year": year}
        with located(self.scenario):
            for process in self.steps:
                row.update(process(self.state, p, self.rs, year))
        self.state.year = year
        if year >= self.scenario.years[0]:
            self.rows.append(row)
        for observer in self.observers:
            observer.observe(self, year, row)
        if self.done:
            for observer in self.observers:
                observer.finish(self)
        return row

    def run(self) -> pd.DataFrame:
        """Simulate the remaining years; return the summary."""
        while not self.done:
            self.step()
        return self.summary
