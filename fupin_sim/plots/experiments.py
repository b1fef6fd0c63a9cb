"""Figures of experiments: paired scenario differences, the cost-effectiveness plane, sweep
responses and Sobol' indices."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fupin_sim.plots.style import integer_years, localised, number, plt, scale, thousands
from fupin_sim.plots.text import label, text

KEY_METRICS = ("registered_poor", "exits", "relapses", "poverty_gap_yuan")


def _yearly(table: pd.DataFrame) -> pd.DataFrame:
    yearly = table[pd.to_numeric(table["year"], errors="coerce").notna()].copy()
    yearly["year"] = yearly["year"].astype(int)
    return yearly


@localised
def comparison(table: pd.DataFrame, reps: int | None = None, *, metrics=KEY_METRICS, lang: str = "en") -> plt.Figure:
    """Paired differences (scenario − baseline) by year with 95% confidence bars, one panel
    per metric, one colour per scenario."""
    yearly = _yearly(table)
    moved = yearly.loc[(yearly["mean_diff"] != 0) | (yearly["ci_high"] != yearly["ci_low"]), "year"]
    if len(moved):  # years before the scenarios diverge (all differences exactly 0) say nothing
        yearly = yearly[yearly["year"] >= moved.min()]
    present = set(yearly["metric"])
    keys = [m for m in metrics if m in present]
    names = list(dict.fromkeys(yearly["alternative"]))
    cols = 2 if len(keys) > 1 else 1
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.6 * cols, 3.6 * rows + 0.6), squeeze=False, constrained_layout=True)
    width = 0.7 / max(len(names), 1)
    for ax, metric in zip(axes.flat, keys):
        div, unit = scale(yearly.loc[yearly["metric"] == metric, "ci_high"].abs(), "yuan", lang) \
            if metric.endswith("_yuan") else (1.0, "")
        for k, name in enumerate(names):
            t = yearly[(yearly["alternative"] == name) & (yearly["metric"] == metric)]
            x = t["year"].to_numpy() + (k - (len(names) - 1) / 2) * width
            err = np.vstack([t["mean_diff"] - t["ci_low"], t["ci_high"] - t["mean_diff"]]) / div
            ax.errorbar(x, t["mean_diff"] / div, yerr=np.where(np.isfinite(err), err, 0.0), fmt="o", capsize=3,
                        ms=4, label=name)
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(text("minus_baseline", lang, metric=label(metric, lang)), fontsize=10)
        if unit:
            ax.set_ylabel(unit)
        ax.set_xlabel(label("year", lang))
        thousands(ax)
        integer_years(ax)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8, frameon=False)
    fig.suptitle(text("comparison_title", lang, reps=reps or "?"))
    return fig


def frontier(cost: np.ndarray, effect: np.ndarray) -> np.ndarray:
    """Indices of the cost-effectiveness frontier, cheapest first: the upper convex hull of
    effect against cost, where each step buys less extra effect per extra yuan than the one
    before. Points dominated by another point, or by a mix of two (extended dominance), are
    left out."""
    order = np.lexsort((-effect, cost))
    hull: list[int] = []
    for i in order:
        if hull and effect[i] <= effect[hull[-1]]:
            continue  # costs at least as much for no more effect: dominated
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b if it lies on or below the segment a→i (extended dominance)
            if (effect[b] - effect[a]) * (cost[i] - cost[a]) <= (effect[i] - effect[a]) * (cost[b] - cost[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    return np.array(hull, dtype=int)


@localised
def cost_effectiveness(table: pd.DataFrame, *, effects=("extra_exits", "relapses_averted"),
                       lang: str = "en") -> plt.Figure:
    """The cost-effectiveness plane: extra spending against each effect (totals over the
    run, 95% intervals both ways), the baseline at the origin, and the frontier through
    the scenarios that no cheaper mix of scenarios beats."""
    total = table[table["year"].astype(str) == "total"]
    names = list(dict.fromkeys(total["alternative"]))

    def get(name, metric, col="mean_diff"):
        row = total[(total["alternative"] == name) & (total["metric"] == metric)]
        return float(row[col].iloc[0]) if len(row) else np.nan

    effects = [e for e in effects if (total["metric"] == e).any()]
    fig, axes = plt.subplots(1, len(effects), figsize=(5.8 * len(effects), 5.0), squeeze=False, layout="constrained")
    cost = np.array([0.0] + [get(n, "extra_spending") for n in names])
    div, unit = scale(np.r_[cost, [get(n, "extra_spending", "ci_high") for n in names]], "yuan", lang)
    for ax, effect in zip(axes.flat, effects):
        eff = np.array([0.0] + [get(n, effect) for n in names])
        for k, name in enumerate(names, start=1):
            xerr = [[(cost[k] - get(name, "extra_spending", "ci_low")) / div],
                    [(get(name, "extra_spending", "ci_high") - cost[k]) / div]]
            yerr = [[eff[k] - get(name, effect, "ci_low")], [get(name, effect, "ci_high") - eff[k]]]
            ax.errorbar(cost[k] / div, eff[k], xerr=np.nan_to_num(xerr), yerr=np.nan_to_num(yerr), fmt="o", ms=6,
                        capsize=3, label=name, color=f"C{(k - 1) % 10}")
        ax.scatter([0], [0], marker="*", s=160, color="black", zorder=3, label=text("baseline", lang))
        ok = np.isfinite(cost) & np.isfinite(eff)
        idx = np.flatnonzero(ok)[frontier(cost[ok], eff[ok])]
        if len(idx) > 1:
            ax.plot(cost[idx] / div, eff[idx], "--", color="grey", lw=1.2, label=text("frontier", lang))
        ax.axhline(0, color="grey", lw=0.6)
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_xlabel(text("extra_spending_axis", lang, unit=unit))
        ax.set_ylabel(label(effect, lang))
        thousands(ax, "x")
        thousands(ax)
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6), fontsize=8, frameon=False)
    fig.suptitle(text("ce_title", lang))
    return fig


@localised
def sweep_response(results: pd.DataFrame, parameters: list[str], output: str, *, lang: str = "en") -> plt.Figure:
    """One output against each swept parameter: every run as a dot, and the mean by decile
    of the parameter as a line (the main effect, averaged over the other parameters)."""
    cols = min(3, len(parameters))
    rows = -(-len(parameters) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.4 * rows + 0.5), squeeze=False,
                             constrained_layout=True, sharey=True)
    y = results[output].to_numpy(float)
    unit = "yuan" if output.split("_")[-2:-1] == ["yuan"] else None
    div, name = scale(y, unit, lang) if unit else (1.0, "")
    for ax, p in zip(axes.flat, parameters):
        x = results[p].to_numpy(float)
        ax.scatter(x, y / div, s=8, alpha=0.45, lw=0)
        if len(np.unique(x)) > 1:
            edges = np.unique(np.quantile(x, np.linspace(0, 1, 11)))
            bins = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
            frame = pd.DataFrame({"bin": bins, "x": x, "y": y / div}).groupby("bin").mean()
            ax.plot(frame["x"], frame["y"], color="tab:red", lw=2, label=text("binned_mean", lang))
        ax.set_xlabel(label(p, lang))
        ax.grid(alpha=0.3)
        thousands(ax)
    for ax in list(axes.flat)[len(parameters):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{label(output, lang)}" + (f" ({name})" if name else ""), fontsize=8)
    axes.flat[0].legend(fontsize=7, frameon=False)
    fig.suptitle(text("sweep_title", lang, output=label(output, lang)))
    return fig


def _quadratic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones_like(x), x, y, x * x, x * y, y * y])


@localised
def response_surface(results: pd.DataFrame, x: str, y: str, output: str, *, lang: str = "en") -> plt.Figure:
    """An output over two swept parameters: a quadratic surface fitted by least squares to
    every run (the other parameters averaged out), with the runs drawn in the same colours,
    and the share of the runs' variance the surface explains (R²) in the title. A smooth
    fit, not an interpolation, so replicate noise does not draw false ridges."""
    data = results[[x, y, output]].dropna()
    px, py, z = (data[c].to_numpy(float) for c in (x, y, output))
    lo, hi = np.array([px.min(), py.min()]), np.array([px.max(), py.max()])
    span = np.where(hi > lo, hi - lo, 1.0)
    ux, uy = (px - lo[0]) / span[0], (py - lo[1]) / span[1]  # unit square: a well-conditioned fit
    coef, *_ = np.linalg.lstsq(_quadratic(ux, uy), z, rcond=None)
    r2 = 1 - np.sum((z - _quadratic(ux, uy) @ coef) ** 2) / max(np.sum((z - z.mean()) ** 2), 1e-300)
    gx, gy = np.meshgrid(np.linspace(0, 1, 60), np.linspace(0, 1, 60))
    gz = (_quadratic(gx.ravel(), gy.ravel()) @ coef).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(6.6, 5), constrained_layout=True)
    levels = np.linspace(min(gz.min(), z.min()), max(gz.max(), z.max()), 13)
    surface = ax.contourf(lo[0] + gx * span[0], lo[1] + gy * span[1], gz, levels=levels, cmap="viridis")
    ax.scatter(px, py, c=z, cmap="viridis", vmin=levels[0], vmax=levels[-1], s=16, edgecolor="white", lw=0.5)
    bar = fig.colorbar(surface, ax=ax)
    bar.set_label(label(output, lang))
    bar.formatter = plt.matplotlib.ticker.FuncFormatter(lambda v, _: number(v))
    bar.update_ticks()
    ax.set_xlabel(label(x, lang))
    ax.set_ylabel(label(y, lang))
    ax.set_title(text("surface_title", lang, output=label(output, lang), r2=f"{r2:.2f}"), fontsize=10)
    return fig


@localised
def sensitivity(indices: pd.DataFrame, level: float = 0.95, *, lang: str = "en") -> plt.Figure:
    """One panel per output: first-order and total Sobol' indices per parameter with
    bootstrap intervals, and the share of output variance that is stochastic noise."""
    outputs = list(dict.fromkeys(indices["output"]))
    cols = min(3, len(outputs))
    nrows = -(-len(outputs) // cols)
    params = list(dict.fromkeys(indices["parameter"]))
    fig, axes = plt.subplots(nrows, cols, figsize=(4.4 * cols + 1, 3.8 * nrows + 0.8), squeeze=False,
                             constrained_layout=True)
    x = np.arange(len(params))
    for ax, name in zip(axes.flat, outputs):
        t = indices[indices["output"] == name].set_index("parameter").loc[params]
        for k, (col, key, color) in enumerate((("S1", "s1", "tab:blue"), ("ST", "st", "tab:orange"))):
            lo = (t[col] - t[f"{col}_low"]).clip(lower=0).fillna(0)
            hi = (t[f"{col}_high"] - t[col]).clip(lower=0).fillna(0)
            ax.bar(x + (k - 0.5) * 0.38, t[col], width=0.38, yerr=[lo, hi], capsize=3, label=text(key, lang),
                   color=color)
        top = max(1.05, float(np.nanmax(np.r_[t["S1_high"], t["ST_high"], t["S1"], t["ST"]])) * 1.1)
        bottom = min(0.0, float(np.nanmin(np.r_[t["S1_low"], t["ST_low"], t["S1"]])) * 1.1)
        ax.set_ylim(bottom, top)
        share = t["noise_share"].iloc[0]
        if np.isfinite(share):
            shown = text("noise_share", lang, share=number(share))
            if share <= top:
                ax.axhline(share, ls="--", color="black", lw=1, label=shown)
            else:
                ax.plot([], [], ls="--", color="black", lw=1, label=f"{shown} ↑")
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_xticks(x, [label(p, lang) for p in params], rotation=30, ha="right", fontsize=8)
        ax.set_title(label(name, lang), fontsize=10)
        ax.set_ylabel(text("sobol_index", lang))
        ax.legend(fontsize=7, frameon=False)
    for ax in list(axes.flat)[len(outputs):]:
        ax.set_visible(False)
    fig.suptitle(text("sensitivity_title", lang, level=f"{level:.0%}"))
    return fig
