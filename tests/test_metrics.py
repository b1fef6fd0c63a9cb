"""The one registry of metrics (fupin_sim.metrics): every column a run reports is declared
where it is produced, and comparisons, figures, reports and the Mesa adapter read it."""
import numpy as np
import pandas as pd
import pytest

import fupin_sim as fs
from fupin_sim.experiments.compare import paired_table
from fupin_sim.metrics import Metric, Metrics
from fupin_sim.plots.text import CATEGORIES
from fupin_sim.plots.text import METRICS as CATALOGUE
from fupin_sim.plots.text import label
from fupin_sim.results import METRICS, add_derived
from fupin_sim.scenario import bundled_scenarios


@pytest.mark.parametrize("name", bundled_scenarios())
def test_every_summary_column_is_declared(name):
    summary = add_derived(fs.run(name, households=60, seed=1).summary)
    undeclared = [c for c in summary.columns if c != "year" and c not in METRICS]
    assert not undeclared, f"{name}: declare {undeclared} where they are produced (fupin_sim.metrics.Metric)"


def test_declarations_are_complete_and_aggregate_by_kind():
    for metric in CATALOGUE:
        assert metric.unit and metric.en and metric.zh, metric
        assert metric.years == ("sum" if metric.kind == "flow" else "mean") and metric.replicates == "mean"
        if metric.pattern is None and metric.name not in CATEGORIES:  # a category's name comes first ('exited')
            assert label(metric.name) == metric.en and label(metric.name, "zh") == metric.zh
    assert METRICS["served_dibao"].name == "served_{instrument}" and "served_" not in METRICS
    assert label("spending_microloan") == "Microloans: spending (yuan)"
    assert label("served_deadline_backstop") == "served_deadline_backstop"  # a label without a name of its own
    with pytest.raises(ValueError, match="declared twice"):
        Metrics(METRICS, [Metric("exits", "flow", "households", "Exits", "脱贫户数")])
    with pytest.raises(ValueError, match="kind one of"):
        Metric("x", "level", "yuan", "X", "X")


def test_a_comparison_aggregates_years_as_declared_and_refuses_an_undeclared_column():
    years = [2016, 2017]
    base = pd.DataFrame({"year": years, "exits": [1.0, 2.0], "registered_poor": [10.0, 8.0]})
    table = paired_table([base, base], {"alt": [base.assign(exits=[2.0, 4.0])] * 2}, [])
    total = table[table["year"].isin(["total", "mean"])].set_index("metric")
    assert total.loc["exits", "year"] == "total" and total.loc["exits", "mean_diff"] == 3.0
    assert total.loc["registered_poor", "year"] == "mean"
    mystery = base.assign(mystery=np.zeros(2))
    with pytest.raises(KeyError, match="'mystery' is declared nowhere"):
        paired_table([mystery], {"alt": [mystery]}, [])
