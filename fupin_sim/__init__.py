"""fupin_sim: vectorised microsimulation of poverty alleviation (扶贫) — exits, relapses
(返贫) and policy scenarios, over households and persons in yearly steps.

    import fupin_sim as fs
    result = fs.run("baseline", households=20_000, seed=1)
    result.summary[["year", "registered_poor", "exits", "relapses"]]
"""
from __future__ import annotations

from fupin_sim.version import __version__
from fupin_sim.api import run
from fupin_sim.errors import InputError
from fupin_sim.params import Params
from fupin_sim.population import Population
from fupin_sim.population.register import read_register, write_register
from fupin_sim.population.synthetic import generate
from fupin_sim.scenario import Scenario, load_scenario
from fupin_sim.simulation import Simulation

__all__ = ["run", "InputError", "Params", "Population", "read_register", "write_register", "generate",
           "Scenario", "load_scenario", "Simulation", "__version__"]
