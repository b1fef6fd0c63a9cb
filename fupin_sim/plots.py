"""Figures (matplotlib): each function returns a Figure, for notebooks and for files.

Labels are English for now; Chinese labels need a CJK font and come with the report layer."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg") if matplotlib.get_backend().lower() in ("", "agg") else None
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

LABELS = {
    "registered_poor_persons": "Registered poor (persons)",
    "income_poor_persons": "Persons below the line",
    "exits": "Exits (households)",
    "relapses": "Relapses (households)",
    "new_poor": "Newly poor (households)",
    "monitored": "Monitored (households)",
}


def trajectory(summary: pd.DataFrame, bands: pd.DataFrame | None = None, title: str = "") -> plt.Figure:
    """Poverty over time: stocks on the left, yearly flows on the right; quantile bands if given."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for ax, metrics, ylabel in ((left, ("registered_poor_persons", "income_poor_persons"), "persons"),
                                (right, ("exits", "relapses", "new_poor"), "households per year")):
        for m in metrics:
            line, = ax.plot(summary["year"], summary[m], marker="o", ms=3, label=LABELS[m])
            if bands is not None:
                b = bands[bands["metric"] == m].sort_values("year")
                ax.fill_between(b["year"], b["q05"], b["q95"], color=line.get_color(), alpha=0.15, lw=0)
                ax.fill_between(b["year"], b["q25"], b["q75"], color=line.get_color(), alpha=0.3, lw=0)
        ax.set_xlabel("year")
        ax.set_ylabel(ylabel)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8)
    left.set_title("Poverty stock")
    right.set_title("Yearly flows")
    if bands is not None:
        fig.text(0.99, 0.01, "bands: 50% and 90% of replicates", ha="right", fontsize=7, color="grey")
    fig.suptitle(title or "Poverty trajectory")
    return fig
