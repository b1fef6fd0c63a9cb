"""Results of a run: the yearly summary, the opt-in panel, and the manifest that says
exactly what produced them (package version, seed, scenario hash, parameters)."""
from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


def package_version() -> str:
    from fupin_sim import __version__

    return __version__


def manifest(scenario, seed: int, origin: str, households: int, **extra) -> dict:
    return {
        "fupin_sim": package_version(),
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

    def write(self, out: str | Path, figure: bool = True) -> Path:
        """Write summary.csv, manifest.json, parameters.csv, the trajectory figure, and when
        present ledger.csv, budget.csv, replicates.csv, bands.csv and the panel (Parquet, or
        CSV without pyarrow)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        self.summary.to_csv(out / "summary.csv", index=False)
        (out / "manifest.json").write_text(json.dumps(self.manifest, indent=1, ensure_ascii=False, default=str),
                                           encoding="utf-8")
        if self.params is not None:
            self.params.table().to_csv(out / "parameters.csv", index=False)
        if self.panel is not None:
            write_table(self.panel, out / "panel")
        if self.ledger is not None:
            self.ledger.to_csv(out / "ledger.csv", index=False)
        if self.budget is not None:
            self.budget.to_csv(out / "budget.csv", index=False)
        if self.replicates is not None:
            self.replicates.to_csv(out / "replicates.csv", index=False)
        if self.bands is not None:
            self.bands.to_csv(out / "bands.csv", index=False)
        if figure:
            from fupin_sim.plots import trajectory

            fig = trajectory(self.summary, self.bands, title=self.manifest.get("scenario", ""))
            fig.savefig(out / "trajectory.png", dpi=120)
            import matplotlib.pyplot as plt

            plt.close(fig)
        return out


def write_table(frame: pd.DataFrame, stem: Path) -> Path:
    """Parquet when pyarrow is there (compact, typed), CSV otherwise."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        path = stem.with_suffix(".csv")
        frame.to_csv(path, index=False)
        return path
    path = stem.with_suffix(".parquet")
    frame.to_parquet(path, index=False)
    return path
