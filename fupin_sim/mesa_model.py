"""fupin_sim as a Mesa model (Mesa 3.3): `FupinModel` wraps one `fupin_sim.Simulation`.

    from fupin_sim.mesa_model import FupinModel
    model = FupinModel("baseline", households=2000, years=(2016, 2020), seed=5)
    while model.running:
        model.step()                                   # one simulated year of the vectorised engine
    model.datacollector.get_model_vars_dataframe()     # one row per year

    import mesa
    rows = mesa.batch_run(FupinModel, parameters={"scenario": "baseline", "households": 2000,
                                                  "budget_scale": [0.5, 1.0, 2.0], "seed": range(5)},
                          number_processes=2, max_steps=100)

The engine stays vectorised: no Python object is made per household to run it. For small
populations `household_agents()` gives lightweight `mesa.Agent` views whose attributes
read the engine's arrays, to inspect households or place them in a Mesa space.

This module imports `mesa`; `import fupin_sim` never imports this module (importing
`mesa` switches multiprocessing to the spawn start method for the whole process).

Seeds. The engine's seed is derived from Mesa's `seed`/`rng` arguments:

- `seed` a whole number in [0, 2**63 - 1] (or a float equal to one): it *is* the engine seed,
  so `FupinModel(sc, seed=5)` gives the same numbers as `fupin_sim.run(sc, seed=5)`;
- any other `seed` (a fraction, a text, a number above 2**63 - 1), or `rng` instead of `seed`:
  the engine seed is drawn from the model's `rng` (which Mesa seeds from that value), so it
  is reproducible (Mesa itself rejects negative seeds);
- neither: Mesa seeds its `rng` from the operating system's entropy, and the engine seed
  is drawn from it: every model differs (as Mesa users expect of unseeded runs).

The seed used is `model.fupin_seed`, and is collected as the `fupin_seed` column, so any
run (a batch_run row too) can be repeated with `FupinModel(..., seed=row["fupin_seed"])`.
The scenario file's own `seed:` is not used: pass `seed=scenario.seed` for that.
"""
from __future__ import annotations

import numbers
from functools import partial
from pathlib import Path
from typing import Any

import mesa
import numpy as np
import pandas as pd

from fupin_sim.errors import InputError, close_match
from fupin_sim.population import schema as S
from fupin_sim.scenario import Scenario, load_scenario
from fupin_sim.results import Result
from fupin_sim.simulation import METRICS, Simulation

DEFAULT_METRICS = ("year", "registered_poor", "exits", "relapses", "new_poor", "headcount_ratio", "fgt1",
                   "spending", "monitored")
AGENT_LIMIT = 5000
_MAX_SEED = 2**63 - 1


def _metric(name: str, model: "FupinModel"):
    value = model.metrics[name]
    return value.item() if isinstance(value, np.generic) else value


class FupinModel(mesa.Model):
    """One fupin_sim run as a Mesa model: `step()` simulates one year.

    Args:
        scenario: a bundled scenario name, a scenario file, or a `fupin_sim.Scenario`.
        households: simulated households (default: the scenario's).
        years: (first, last), "2016-2020" or one year (default: the scenario's).
        budget_scale: multiplies every finite budget amount (a number), or some lines
            ({line name: factor}); 'unlimited' lines stay unlimited. One line's factor can
            also be a keyword, `**{"budget_scale.central_special": 0.5}` (or
            `budget_scale__central_special=0.5`), multiplied with a numeric `budget_scale`.
        instrument_scale: {instrument: factor}, each instrument's budget × factor: every year
            it may spend factor × what it spent from each limited line in the same run with no
            instrument scaled (a second run simulated alongside); the part above 1 is added to
            its lines, the part below taken out, so other instruments keep their money. Only
            instruments paid from limited lines (`Programme.budgeted()`); entitlements are
            refused. Also as keywords, `**{"instrument_scale.microloan": 0.5}` (or
            `instrument_scale__microloan=0.5`). Applied after `budget_scale`.
        parameters: parameter overrides by dotted path, e.g. {"income.wage_growth": 0.08}.
        metrics: the yearly metrics the DataCollector reports (default `DEFAULT_METRICS`);
            any metric of the engine's registry (`fupin_sim.simulation.METRICS`: each with its
            kind, unit and labels) that the scenario reports.
        agent_limit: the most households `household_agents()` will build (default 5000).
        seed, rng: Mesa's; see the module docstring for how the engine seed follows them.
        **overrides: more parameter overrides, by dotted path (`**{"income.wage_growth": 0.08}`,
            which is how `mesa.batch_run` passes a grid over them) or with `__` for the dots
            (`income__wage_growth=0.08`); `budget_scale.<line>` keys scale one budget line,
            `instrument_scale.<instrument>` keys one instrument's budget.
    """

    def __init__(self, scenario: str | Path | Scenario = "baseline", *, households: int | None = None,
                 years: tuple[int, int] | str | int | None = None, budget_scale: float | dict = 1.0,
                 instrument_scale: dict[str, float] | None = None, parameters: dict | None = None, metrics: tuple[str, ...] | list[str] | None = None,
                 agent_limit: int = AGENT_LIMIT, seed: Any = None, rng: Any = None, **overrides: Any):
        seed = _plain(seed)  # np.int64 from np.arange: Mesa's random.Random refuses numpy scalars
        super().__init__(seed=seed, rng=rng)
        params, line_scales = dict(parameters or {}), {}
        if instrument_scale is not None and not isinstance(instrument_scale, dict):
            raise InputError(f"expected {{instrument: factor}}, got {instrument_scale!r}", where="instrument_scale")
        instrument_scales = {k: _plain(v) for k, v in (instrument_scale or {}).items()}
        for key, value in overrides.items():
            if key.replace("__", ".").startswith("budget_scale."):
                line_scales[key.replace("__", ".").split(".", 1)[1]] = _plain(value)
            elif key.replace("__", ".").startswith("instrument_scale."):
                instrument_scales[key.replace("__", ".").split(".", 1)[1]] = _plain(value)
            elif "." in key or "__" in key:
                params[key.replace("__", ".")] = value
            else:
                raise TypeError(f"FupinModel() got an unexpected keyword argument {key!r}; parameter overrides "
                                f"are dotted paths (**{{'income.wage_growth': 0.08}}) or use '__' for the dots "
                                f"(income__wage_growth=0.08)")
        self.fupin_seed = self._engine_seed(seed)
        base = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if years is not None and not isinstance(years, str) and not isinstance(years, numbers.Integral):
            years = tuple(int(y) for y in years)
        elif isinstance(years, numbers.Integral):
            years = int(years)
        sc = base.edit(households=None if households is None else int(households), years=years,
                       seed=self.fupin_seed, parameters={k: _plain(v) for k, v in params.items()})
        budget_scale = _plain(budget_scale)
        every = sc.budget_factors(1.0 if isinstance(budget_scale, dict) else budget_scale)
        lines = sc.budget_factors({**budget_scale, **line_scales} if isinstance(budget_scale, dict) else line_scales)
        self.scenario = sc.edit(budget_scale={name: every[name] * lines[name] for name in every},
                                instrument_scale=instrument_scales, where="")
        self.sim = Simulation(self.scenario, seed=self.fupin_seed)
        self.instrument_scale = self.scenario.instrument_scale  # validated, factors of 1 dropped
        while self.sim.year < self.scenario.years[0] - 1:  # a register from before the first year: burn in
            self.sim.step()
        self.metric_names = tuple(DEFAULT_METRICS if metrics is None else metrics)
        unknown = [m for m in self.metric_names if m != "year" and m not in METRICS]
        if unknown:
            raise KeyError(f"unknown metrics {unknown}{close_match(unknown[0], [m.name for m in METRICS])}; "
                           f"the engine's metrics: {sorted(m.name for m in METRICS)}")
        self.metrics: dict[str, Any] = {}
        self.agent_limit = int(agent_limit)
        self._household_agents: mesa.agent.AgentSet | None = None
        self.datacollector = mesa.DataCollector(
            model_reporters={**{m: partial(_metric, m) for m in self.metric_names}, "fupin_seed": "fupin_seed"})
        self.running = not self.sim.done

    def _engine_seed(self, seed: Any) -> int:
        if isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and 0 <= seed <= _MAX_SEED:
            return int(seed)
        if isinstance(seed, float) and seed.is_integer() and 0 <= seed <= _MAX_SEED:
            return int(seed)
        return int(self.rng.integers(0, 2**31 - 1))  # Mesa seeded rng from seed/rng, or from entropy

    # ------------------------------------------------------------------ stepping
    @property
    def year(self) -> int:
        """The last simulated year (the year before the first, before any step)."""
        return self.sim.year

    def step(self) -> None:
        """Simulate one year, then collect its metrics. Stepping a finished model does nothing."""
        if self.sim.done:
            self.running = False
            self.steps -= 1  # Mesa counted a step that did not happen
            return
        row = self.sim.step()
        if self._household_agents is not None:  # households formed this year (分户) join as agents
            for r in range(len(self._household_agents), self.sim.state.n):
                self._household_agents.add(HouseholdAgent(self, r))
        if not self.metrics:
            missing = [m for m in self.metric_names if m not in row]
            if missing:
                raise KeyError(f"metrics {missing} are not reported by {self.scenario.name!r}; it reports: {sorted(row)}")
        self.metrics = row
        self.datacollector.collect(self)
        self.running = not self.sim.done

    def run_model(self) -> None:
        while self.running:
            self.step()

    @property
    def summary(self) -> pd.DataFrame:
        """Every metric of the years simulated so far (as `fupin_sim.run(...).summary`)."""
        return pd.DataFrame(self.sim.rows)

    def result(self):
        """The run so far as a `fupin_sim` Result (summary, manifest, ledger, budget)."""
        return Result.of(self.sim)

    # ------------------------------------------------------------------ households
    @property
    def n_households(self) -> int:
        return self.sim.state.n

    def households_frame(self, decode: bool = True) -> pd.DataFrame:
        """The current household table (one row per household, any size): the vectorised view."""
        h = self.sim.state.h
        frame = pd.DataFrame({k: v.copy() for k, v in h.items()})
        if decode:
            for name, cats in S.CATEGORIES.items():
                if name in frame:
                    frame[name] = pd.Categorical.from_codes(frame[name].astype(int), categories=list(cats))
        return frame

    def household_agents(self, limit: int | None = None) -> mesa.agent.AgentSet:
        """One `HouseholdAgent` per household, built on the first call and reused after;
        their attributes read the engine's arrays, so they are current after every step, and
        households formed in a step (分户) join the set.
        Refused above `limit` households (default `self.agent_limit`)."""
        limit = self.agent_limit if limit is None else int(limit)
        n = self.n_households
        if self._household_agents is None:
            if n > limit:
                raise ValueError(
                    f"household_agents() builds one Python object per household; this model has {n} households, "
                    f"above the limit of {limit}. Raise it with household_agents(limit={n}) or "
                    f"FupinModel(..., agent_limit={n}), or use model.households_frame() (a DataFrame of "
                    f"every household, any size)")
            self._household_agents = mesa.agent.AgentSet([HouseholdAgent(self, row) for row in range(n)],
                                                         random=self.random)
        return self._household_agents


class HouseholdAgent(mesa.Agent):
    """A view of one household (row `row` of the engine's arrays). It holds no data of its
    own: attributes are read from `model.sim.state.h` when asked, so they follow the engine.
    Any household column is an attribute (`agent.income_wage`, `agent.land_mu`, ...);
    categories are codes, with names in `status_name`, `region_name`, `cause_name`."""

    def __init__(self, model: FupinModel, row: int):
        super().__init__(model)
        self.row = int(row)

    def _get(self, name: str):
        value = self.model.sim.state.h[name][self.row]
        return value.item() if isinstance(value, np.generic) else value

    def __getattr__(self, name: str):  # only for names not found normally
        if name.startswith("_") or name in ("model", "row"):
            raise AttributeError(name)
        h = self.model.sim.state.h
        if name in h:
            return self._get(name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}; household columns: {sorted(h)}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.model.sim.state.h))

    household_id = property(lambda self: self._get("household_id"))
    status = property(lambda self: self._get("status"), doc="0 nonpoor, 1 registered poor, 2 exited")
    size = property(lambda self: self._get("size"))
    village = property(lambda self: self._get("village"))
    monitored = property(lambda self: self._get("monitored"))

    @property
    def status_name(self) -> str:
        return S.CATEGORIES["status"][self._get("status")]

    @property
    def region_name(self) -> str:
        return S.CATEGORIES["region_type"][self._get("region_type")]

    @property
    def cause_name(self) -> str:
        return S.CATEGORIES["cause"][self._get("cause")]

    @property
    def income(self) -> float:
        """Total household income this year, yuan (wage + operating + property + transfer)."""
        return sum(self._get(f"income_{s}") for s in S.INCOME_SOURCES)

    @property
    def income_per_capita(self) -> float:
        size = self._get("size")
        return self.income / size if size else 0.0

    @property
    def alive(self) -> bool:
        """False once every member has died (the row stays, empty)."""
        return self._get("size") > 0

    def persons(self) -> pd.DataFrame:
        """This household's members (rows of the person table)."""
        p = self.model.sim.state.p
        rows = np.flatnonzero(p["hh"] == self.row)
        return pd.DataFrame({k: v[rows] for k, v in p.items()})

    def __repr__(self) -> str:
        return (f"HouseholdAgent(row={self.row}, household_id={self.household_id}, status={self.status_name}, "
                f"size={self.size})")


def _plain(value):
    """numpy scalars from a batch_run grid (np.linspace, np.arange) as Python numbers."""
    return value.item() if isinstance(value, np.generic) else value
