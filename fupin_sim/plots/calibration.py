"""The calibration fit: each target's observed value with its sd, against the fitted moment."""
from __future__ import annotations

import pandas as pd

from fupin_sim.plots.style import localised, plt, thousands
from fupin_sim.plots.text import label, text


@localised
def calibration_fit(fit: pd.DataFrame, title: str = "", *, lang: str = "en") -> plt.Figure:
    """One panel per target metric: observed ± sd (black) and the fitted moment (red) by year."""
    metrics = list(dict.fromkeys(fit["metric"]))
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.3 * rows + 0.5), constrained_layout=True,
                             squeeze=False)
    for ax, m in zip(axes.flat, metrics):
        f = fit[fit["metric"] == m].sort_values("year")
        ax.errorbar(f["year"], f["observed"], yerr=f["sd"], fmt="o", color="black", capsize=3,
                    label=text("observed_sd", lang))
        ax.plot(f["year"], f["fitted"], "s--", color="tab:red", label=text("fitted", lang))
        bounds = sorted(set(f["bound"]) - {"point"}) if "bound" in f else []
        ax.set_title(label(m, lang) + "".join(text(f"{b}_bound", lang) for b in bounds), fontsize=9)
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
