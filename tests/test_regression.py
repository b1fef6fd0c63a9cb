"""Stored summaries of the bundled scenarios (1000 households, seed 7): any change in the
numbers must be deliberate. If it is, run `PYTHONPATH=. python3 scripts/update_regression.py`
and commit the CSV diff with the change that caused it."""
from pathlib import Path

import pandas as pd
import pytest

from fupin_sim.scenario import bundled_scenarios

FOLDER = Path(__file__).resolve().parent / "regression"


def test_every_bundled_scenario_has_a_stored_summary():
    assert sorted(p.stem for p in FOLDER.glob("*.csv")) == bundled_scenarios()


@pytest.mark.parametrize("name", bundled_scenarios())
def test_numbers_match_the_stored_summary(name):
    import sys

    sys.path.insert(0, str(FOLDER.parents[1] / "scripts"))
    from update_regression import summary

    stored = pd.read_csv(FOLDER / f"{name}.csv")
    now = summary(name)
    assert list(now.columns) == list(stored.columns), "metrics were added or removed: update the baseline"
    pd.testing.assert_frame_equal(now, stored, check_dtype=False, rtol=1e-8, atol=1e-6,
                                  obj=f"{name}: numbers changed; if deliberate, run scripts/update_regression.py")
