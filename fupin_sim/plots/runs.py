"""Figures of one scenario run: the poverty trajectory with bands, and where the money went."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fupin_sim.plots.style import integer_years, localised, plt, scale, thousands
from fupin_sim.plots.text import label, text

STOCKS = ("registered_poor_persons", "income_poor_persons")
FLOWS = ("exits", "relapses", "new_poor")


@localised
def trajectory(summary: pd.DataFrame, bands: pd.DataFrame | None = None, title: str = "", *,
               lang: str = "en") -> plt.Figure:
    """Poverty over time: stocks (persons) on the left, yearly flows (households) on the
    right; 50% and 90% bands over replicates when `bands` is given."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4), constrained_layout=True)
    stock_values = np.concatenate([summary[m].to_numpy(float) for m in STOCKS if m in summary])
    div, unit = scale(stock_values, "persons", lang)
    for ax, metrics, d, ylabel in ((left, STOCKS, div, unit), (right, FLOWS, 1.0, text("households_per_year", lang))):
        for m in metrics:
            if m not in summary:
                continue
            line, = ax.plot(summary["year"], summary[m] / d, marker="o", ms=3, label=label(m, lang))
            if bands is not None and (bands["metric"] == m).any():
                b = bands[bands["metric"] == m].sort_values("year")
                ax.fill_between(b["year"], b["q05"] / d, b["q95"] / d, color=line.get_color(), alpha=0.15, lw=0)
                ax.fill_between(b["year"], b["q25"] / d, b["q75"] / d, color=line.get_color(), alpha=0.3, lw=0)
        ax.set_xlabel(label("year", lang))
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        thousands(ax)
        integer_years(ax)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8)
    left.set_title(text("stock", lang))
    right.set_title(text("flows", lang))
    if bands is not None:
        fig.text(0.99, 0.005, text("bands_note", lang), ha="right", va="bottom", fontsize=7, color="grey")
    fig.suptitle(title or text("trajectory", lang))
    return fig


@localised
def spending(ledger: pd.DataFrame, title: str = "", *, top: int = 9, lang: str = "en") -> plt.Figure:
    """Yearly spending as stacked bars, by instrument (left) and by funding source (right);
    beyond the `top` largest, the rest are pooled as 'Other'. Loan principal (bank credit) is
    left out: it is lent, not spent."""
    spent = ledger[ledger["category"] != "loan"]
    years = sorted(spent["year"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    div, unit = scale(spent.groupby("year")["amount"].sum(), "yuan", lang)
    for ax, by, heading in ((axes[0], "instrument", "by_instrument"), (axes[1], "source", "by_source")):
        table = spent.pivot_table(index="year", columns=by, values="amount", aggfunc="sum", fill_value=0.0)
        table = table.reindex(years, fill_value=0.0)
        order = table.sum()[lambda total: total > 0].sort_values(ascending=False).index
        kept, rest = list(order[:top]), list(order[top:])
        if rest:
            table[text("other", lang)] = table[rest].sum(axis=1)
            kept.append(text("other", lang))
        bottom = np.zeros(len(years))
        colors = plt.get_cmap("tab10" if len(kept) <= 10 else "tab20")
        for k, col in enumerate(kept):
            vals = table[col].to_numpy() / div
            ax.bar(years, vals, bottom=bottom, color=colors(k), label=label(col, lang), width=0.7)
            bottom += vals
        ax.set_ylim(0, max(bottom.max(), 1e-9) * 1.06)  # zero-height bars would pin the top otherwise
        ax.set_title(text(heading, lang))
        ax.set_xlabel(label("year", lang))
        ax.set_ylabel(text("spending_axis", lang, unit=unit))
        thousands(ax)
        integer_years(ax)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title or text("spending_title", lang))
    return fig
