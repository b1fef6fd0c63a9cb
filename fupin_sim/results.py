"""Results of a run: the yearly summary, the opt-in panel, and the manifest that says
exactly what produced them (package version, seed, scenario hash, parameters)."""
from __future__ import annotations

import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fupin_sim.files import commit_files, write_atomic
from fupin_sim.metrics import Metric
from fupin_sim.population import Population
from fupin_sim.scenario import Scenario
from fupin_sim.simulation import METRICS as ENGINE_METRICS
from fupin_sim.simulation import Observer, Simulation
from fupin_sim.status import test_income
from fupin_sim.version import __version__

PANEL_COLUMNS = ("household_id", "lineage", "status", "size", "income_wage", "income_operating", "income_property",
                 "income_transfer", "oop", "school_cost", "monitored")
BUDGET_COLUMNS = ["year", "line", "source", "available", "spent", "unspent", "carried", "pooled", "returned"]
# every column of a run's summary: what the engine's steps report, and what `add_derived` adds
METRICS = ENGINE_METRICS | (Metric("poverty_gap_yuan", "flow", "yuan", "Poverty gap (yuan)", "贫困缺口(元)",
                                   about="fgt1 × persons × poverty_line: the yearly aggregate poverty gap in yuan"),)


def package_version() -> str:
    return __version__


def manifest(scenario, seed: int, origin: str, households: int, **extra) -> dict:
    return {
        "fupin_sim": package_version(),
        "kind": "run",
        "scenario": scenario.name,
        "scenario_file": scenario.file,
        "scenario_hash": scenario.hash,
        "seed": int(seed),
        "years": list(scenario.years),
        "population": {"preset": scenario.preset, "origin": origin, "households_simulated": int(households),
                       "seed": scenario.population_seed if scenario.population_seed is not None else int(seed)},
        "python": platform.python_version(),
        "numpy": np.__version__,
        **extra,
        "parameters": scenario.params.to_dict(),
    }


@dataclass
class Result:
    summary: pd.DataFrame
    manifest: dict
    panel: pd.DataFrame | None = None
    params: object = None
    replicates: pd.DataFrame | None = None
    bands: pd.DataFrame | None = None
    ledger: pd.DataFrame | None = None
    budget: pd.DataFrame | None = None

    @classmethod
    def of(cls, sim: Simulation, panel: pd.DataFrame | None = None) -> "Result":
        """The result of a run so far: its summary, manifest, ledger and budget (and `panel`)."""
        scale = sim.scenario.instrument_scale
        return cls(summary=sim.summary, manifest=manifest(sim.scenario, sim.seed, sim.population_origin,
                                                          households=len(sim.state.h["size"]),
                                                          **({"instrument_scale": scale} if scale else {})),
                   panel=panel, params=sim.params, ledger=sim.programme.ledger.frame(),
                   budget=pd.DataFrame(sim.programme.budget_rows, columns=BUDGET_COLUMNS))

    def write(self, out: str | Path) -> Path:
        """Write summary.csv, manifest.json, parameters.csv, and when present ledger.csv,
        budget.csv, replicates.csv, bands.csv and the panel (Parquet, or CSV without pyarrow).
        Figures are drawn from these files by `fupin_sim.report`."""
        files: dict[str, Callable[[Path], object]] = {}
        tables = {"summary": self.summary, "parameters": None if self.params is None else self.params.table(),
                  "ledger": self.ledger, "budget": self.budget, "replicates": self.replicates, "bands": self.bands}
        for name, frame in tables.items():
            if frame is not None:
                files[f"{name}.csv"] = lambda tmp, frame=frame: frame.to_csv(tmp, index=False)
        if self.panel is not None:
            name, write = table_writer(self.panel)
            files[f"panel.{name}"] = write
        text = json.dumps(self.manifest, indent=1, ensure_ascii=False, default=str)
        files["manifest.json"] = lambda tmp: tmp.write_text(text, encoding="utf-8")
        # the manifest last: a folder with a manifest holds a complete result
        return commit_files(Path(out), files, marker="manifest.json")


class Panel(Observer):
    """The per-household panel: one row per household and year of the scenario's years, with
    the poverty test's per-capita income."""

    def __init__(self):
        self.frames: list[pd.DataFrame] = []

    def observe(self, sim: Simulation, year: int, row: dict) -> None:
        if year < sim.scenario.years[0]:
            return
        h = sim.state.h
        frame = pd.DataFrame({k: h[k].copy() for k in PANEL_COLUMNS})
        frame.insert(0, "year", year)
        frame["test_income_per_capita"] = test_income(sim.state, sim.params.at(year))
        self.frames.append(frame)

    @property
    def frame(self) -> pd.DataFrame | None:
        return pd.concat(self.frames, ignore_index=True) if self.frames else None


def add_derived(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with the metrics derived from its columns (`poverty_gap_yuan`: fgt1 ×
    persons × poverty_line, the yearly aggregate poverty gap in yuan) when their inputs exist."""
    if {"fgt1", "persons", "poverty_line"} <= set(summary.columns) and "poverty_gap_yuan" not in summary:
        summary = summary.assign(poverty_gap_yuan=summary["fgt1"] * summary["persons"] * summary["poverty_line"])
    return summary


def summary_columns(scenario: Scenario, derived: bool = True) -> list[str]:
    """Metrics a run of this scenario reports, and those `add_derived` adds when `derived`
    (a probe run on a few households)."""
    summary = simulate(scenario.edit(households=min(scenario.households or 50, 50))).summary
    return [c for c in (add_derived(summary) if derived else summary).columns if c != "year"]


def simulate(scenario: Scenario, seed: int | None = None, panel: bool = False,
             population: Population | None = None) -> Result:
    """One run of `scenario` (with its seed, or `seed`; from its population, or `population`),
    with the panel when asked for."""
    watch = Panel() if panel else None
    sim = Simulation(scenario, seed=seed, population=population, observers=[watch] if watch else ())
    sim.run()
    return Result.of(sim, panel=watch.frame if watch else None)


def table_writer(frame: pd.DataFrame) -> tuple[str, Callable[[Path], object]]:
    """(suffix, writer): Parquet when pyarrow is there (compact, typed), CSV otherwise."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return "csv", lambda tmp: frame.to_csv(tmp, index=False)
    return "parquet", lambda tmp: frame.to_parquet(tmp, index=False)


def write_table(frame: pd.DataFrame, stem: Path) -> Path:
    """Parquet when pyarrow is there, CSV otherwise; written atomically."""
    suffix, write = table_writer(frame)
    return write_atomic(stem.with_suffix(f".{suffix}"), write)
