"""Rewrite the stored regression summaries (tests/regression/*.csv) from the current code.

Run it only when a change in the numbers is deliberate; the diff of the CSV files then shows
what moved, for review:

    PYTHONPATH=. python3 scripts/update_regression.py
"""
from __future__ import annotations

from pathlib import Path

import fupin_sim as fs
from fupin_sim.scenario import bundled_scenarios

FOLDER = Path(__file__).resolve().parents[1] / "tests" / "regression"
HOUSEHOLDS, SEED = 1000, 7


def summary(name: str):
    return fs.run(name, households=HOUSEHOLDS, seed=SEED).summary


if __name__ == "__main__":
    FOLDER.mkdir(parents=True, exist_ok=True)
    for name in bundled_scenarios():
        summary(name).to_csv(FOLDER / f"{name}.csv", index=False, float_format="%.10g")
        print(f"wrote {FOLDER / name}.csv")
