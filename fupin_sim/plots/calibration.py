"""The calibration: each target's observed value with its sd against the fitted moment, and
the parameter draws each ABC round kept."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fupin_sim.plots.style import localised, plt, thousands
from fupin_sim.plots.text import label, text


@localised
def calibration_fit(fit: pd.DataFrame, title: str = "", *, lang: str = "en") -> plt.Figure:
    """One panel per target metric: observed ± sd (black; hollow for a comparison figure, one
    with weight 0 that was shown but not fitted) and the fitted moment (red) by year."""
    metrics = list(dict.fromkeys(fit["metric"]))
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.3 * rows + 0.5), constrained_layout=True,
                             squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        f = fit[fit["metric"] == m].sort_values("year")
        compared = "weight" in f and bool((f["weight"] == 0).all())
        ax.errorbar(f["year"], f["observed"], yerr=f["sd"], fmt="o", color="black", capsize=3,
                    mfc="white" if compared else "black", label=text("observed_sd", lang))
        ax.plot(f["year"], f["fitted"], "s--", color="tab:red", label=text("fitted", lang))
        bounds = sorted(set(f["bound"]) - {"point"}) if "bound" in f else []
        ax.set_title(label(m, lang) + "".join(text(f"{b}_bound", lang) for b in bounds)
                     + (text("comparison_only", lang) if compared else ""), fontsize=9)
        years = sorted(f["year"].unique())
        ax.set_xticks(years, [str(y) for y in years])
        ax.set_xlim(years[0] - 0.6, years[-1] + 0.6)
        thousands(ax)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    axes.flat[0].legend(frameon=False, fontsize=8)
    fig.suptitle(title or text("fit_title", lang))
    return fig


@localised
def calibration_draws(every: pd.DataFrame, best: dict, bounds: dict | None = None, *, lang: str = "en") -> plt.Figure:
    """One panel per fitted parameter: the draws each ABC round kept (grey; the last round's,
    which `draws.csv` resamples, in black), the best fit (red line) and the search bounds."""
    labels = list(best)
    cols = min(3, len(labels))
    rows = -(-len(labels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 2.2 + 0.35 * every["round"].max() + 0.8 * (rows - 1)),
                             constrained_layout=True, squeeze=False)
    kept = every[every["accepted"]]
    last = kept["round"].max()
    for ax, name in zip(axes.flat, labels):
        for r, group in kept.groupby("round"):
            ax.plot(group[name], np.full(len(group), r), "|", ms=10, color="black" if r == last else "0.6")
        ax.axvline(best[name], color="tab:red", label=text("best_fit", lang))
        if bounds and name in bounds:
            ax.set_xlim(*bounds[name])
        ax.locator_params(axis="x", nbins=5)
        ax.set_yticks(sorted(kept["round"].unique()))
        ax.set_ylim(every["round"].max() + 0.5, -0.5)
        ax.set_ylabel(text("abc_round", lang))
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    for ax in list(axes.flat)[len(labels):]:
        ax.set_visible(False)
    axes.flat[0].legend(frameon=False, fontsize=8)
    fig.suptitle(text("draws_title", lang))
    return fig
