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


def package_version() -> str:
    from fupin_sim import __version__

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
