"""Persons and households as column tables with stable ids."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fupin_sim.population.table import Table


@dataclass
class Population:
    """A register snapshot: a household table and a person table, in the schema of `schema.py`.

    `persons["household_id"]` links each person to a household; `household_index()` turns
    that link into row numbers for vectorised person → household reductions.
    """

    households: Table
    persons: Table
    year: int
    origin: str = "synthetic"
    meta: dict = field(default_factory=dict)

    def household_index(self) -> np.ndarray:
        """Row of each person's household in the household table."""
        hid = self.households["household_id"]
        order = np.argsort(hid, kind="stable")
        pos = np.searchsorted(hid, self.persons["household_id"], sorter=order)
        return order[np.minimum(pos, len(hid) - 1)].astype(np.int32)

    def sizes(self) -> np.ndarray:
        return np.bincount(self.household_index(), minlength=len(self.households)).astype(np.int32)

    def copy(self) -> "Population":
        return Population(self.households.copy(), self.persons.copy(), self.year, self.origin, dict(self.meta))

    def sample(self, n: int, seed: int) -> "Population":
        """`n` households drawn without replacement, keeping their ids; weights rescaled."""
        from fupin_sim.rng import RandomStreams

        u = RandomStreams(seed).uniform("population.sample", self.year, self.households["household_id"])
        rows = np.sort(np.argsort(u, kind="stable")[:n])
        hh = self.households.take(rows)
        hh["weight"] = hh["weight"] * (self.households["weight"].sum() / max(hh["weight"].sum(), 1e-300))
        keep = np.isin(self.persons["household_id"], hh["household_id"])
        return Population(hh, self.persons.take(np.flatnonzero(keep)), self.year, self.origin, dict(self.meta))
