"""Figures of relapse-risk (返贫风险) forecasts: who is at risk, and whether the risks held."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fupin_sim.plots.style import integer_years, localised, plt, thousands
from fupin_sim.plots.text import label, text

TIER_COLORS = {"high": "tab:red", "medium": "tab:orange", "low": "tab:green"}


@localised
def risk_distribution(risk: pd.DataFrame, aggregate: pd.DataFrame | None = None, horizon: int | None = None, *,
                      lang: str = "en") -> plt.Figure:
    """Left: households by forecast risk of falling below the line within the horizon,
    stacked by register status. Right, when the aggregate table is given: households below
    the line each year with the 10-90% interval over replicates."""
    h = horizon or max(int(c.rsplit("_", 1)[1]) for c in risk.columns if c.startswith("p_within_"))
    p = f"p_within_{h}"
    fig, axes = plt.subplots(1, 2 if aggregate is not None else 1, figsize=(11 if aggregate is not None else 6, 4.4),
                             squeeze=False, constrained_layout=True)
    ax = axes[0, 0]
    bins = np.linspace(0, 1, 21)
    statuses = [s for s in ("poor", "exited", "nonpoor") if (risk["status"] == s).any()]
    ax.hist([risk.loc[risk["status"] == s, p] for s in statuses], bins=bins, stacked=True,
            weights=[risk.loc[risk["status"] == s, "weight"] for s in statuses],
            label=[label(s, lang) for s in statuses])
    ax.set_yscale("symlog", linthresh=10)
    thousands(ax)
    ax.set_xlabel(text("risk_axis", lang, h=h))
    ax.set_ylabel(text("households_axis", lang))
    ax.set_title(text("risk_title", lang, h=h))
    ax.legend(frameon=False, fontsize=8)
    ax.grid(alpha=0.3)
    if aggregate is not None:
        ax = axes[0, 1]
        rows = aggregate[(aggregate["by"] == "all") & (aggregate["metric"] == "below_line")].sort_values("year")
        ax.fill_between(rows["year"], rows["q10"], rows["q90"], alpha=0.25, lw=0)
        ax.plot(rows["year"], rows["mean"], marker="o")
        ax.set_ylim(bottom=0)
        ax.set_xlabel(label("year", lang))
        ax.set_ylabel(text("households_axis", lang))
        ax.set_title(text("expected_count", lang))
        thousands(ax)
        integer_years(ax)
        ax.grid(alpha=0.3)
    return fig


def roc_curve(score: np.ndarray, outcome: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold (highest score first)."""
    outcome = np.asarray(outcome, bool)
    order = np.argsort(-score, kind="stable")
    s, o = score[order], outcome[order]
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]  # end of each run of tied scores
    tp, fp = np.cumsum(o)[last], np.cumsum(~o)[last]
    return np.r_[0.0, fp / max((~o).sum(), 1)], np.r_[0.0, tp / max(o.sum(), 1)]


@localised
def reliability(rel: pd.DataFrame, scores: pd.DataFrame, households: pd.DataFrame | None = None,
                rules=(), *, lang: str = "en") -> plt.Figure:
    """Left: the reliability diagram (deciles of predicted risk against the observed share).
    Right, when the backtest's households are given: ROC curves on the monitoring population,
    with each monitoring rule (`rules`, columns rule_<name>) as a point."""
    panels = 2 if households is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.6), squeeze=False, constrained_layout=True)
    ax = axes[0, 0]
    top = 0.0
    for pop, marker in (("all", "o"), ("monitoring", "s")):
        r = rel[rel["population"] == pop]
        if r.empty:
            continue
        s = scores[scores["population"] == pop].set_index("method").loc["forecast"]
        ax.plot(r["mean_predicted"], r["observed"], marker=marker,
                label=f"{label(pop, lang)}: AUC {s['auc']:.2f}, Brier {s['brier']:.3f}")
        top = max(top, r["mean_predicted"].max(), r["observed"].max())
    top = min(1.0, 1.15 * top) or 1.0
    ax.plot([0, top], [0, top], color="grey", lw=1, ls="--", label=text("perfect", lang))
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel(text("predicted_axis", lang))
    ax.set_ylabel(text("observed_axis", lang))
    ax.set_title(text("reliability_title", lang))
    ax.legend(fontsize=8, loc="upper left", frameon=False)
    ax.grid(alpha=0.3)
    if households is not None:
        roc = axes[0, 1]
        mon = households[households["status"] != "poor"]
        o = mon["fell_below"].to_numpy().astype(bool)
        sc = scores[scores["population"] == "monitoring"].set_index("method")
        for name, score in (("forecast", mon["p_forecast"].to_numpy()),
                            ("income_rank", -mon["income_pc_t"].to_numpy())):
            fpr, tpr = roc_curve(score, o)
            roc.plot(fpr, tpr, label=f"{label(name, lang)}: AUC {sc.loc[name, 'auc']:.2f}")
        for rule, marker in zip(rules, ("s", "^", "v", "D", "P", "X")):
            flag = mon[f"rule_{rule}"].to_numpy().astype(bool)
            roc.scatter([(flag & ~o).sum() / max((~o).sum(), 1)], [(flag & o).sum() / max(o.sum(), 1)],
                        marker=marker, zorder=3, label=f"{label(rule, lang)}: AUC {sc.loc[rule, 'auc']:.2f}")
        roc.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
        roc.set_xlabel(text("fpr", lang))
        roc.set_ylabel(text("tpr", lang))
        roc.set_title(text("roc_title", lang))
        roc.legend(fontsize=8, loc="lower right", frameon=False)
        roc.grid(alpha=0.3)
    return fig
