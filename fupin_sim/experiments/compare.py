"""Paired comparison of scenarios against a baseline, with common random numbers.

Every alternative runs with the baseline's replicate seeds (replicate r of every scenario
uses seed `replicate_seeds(baseline seed, reps)[r]`). The engine draws every random
decision from a stream keyed by (seed, decision, year) and indexed by stable ids, so two
scenarios run with one seed start from the same population and differ only where the
change made them differ: the paired difference alt − base of replicate r is free of most
of the noise of either run, and a no-op alternative differs by exactly zero.

For each alternative, metric and year, over the replicates: the mean paired difference,
its standard error and a 95% confidence interval from Student's t with reps − 1 degrees
of freedom. Over the years each metric aggregates as its declaration says
(`fupin_sim.metrics`): flows are summed (`year` = "total": exits, relapses, new poor, costs,
`poverty_gap_yuan`), levels and ratios averaged (`year` = "mean").
Headline rows: `extra_exits`, `relapses_averted`, `new_poor_averted`,
`poverty_gap_change_yuan` (the yearly aggregate poverty gap fgt1 × persons × line, summed
over the years; negative means the gap closed). When the summary reports `spending` (yuan
spent by interventions each year), value for money: `extra_spending`,
`extra_exits_per_million_yuan`, `relapses_averted_per_million_yuan`,
`cost_per_extra_exit`, `cost_per_relapse_averted`, `poverty_gap_closed_per_yuan` (yuan
of yearly poverty gap closed, summed over the years, per extra yuan spent): ratios of
mean paired totals, with a delta-method standard error and Fieller's confidence interval
(empty when the denominator's interval contains zero: the ratio is then unbounded).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fupin_sim.errors import InputError
from fupin_sim.experiments.draws import read_draws, scenarios_over
from fupin_sim.experiments.executor import execute
from fupin_sim.experiments.outputs import reduce_metric
from fupin_sim.experiments.seeds import derived_seed, replicate_seeds
from fupin_sim.metrics import Metric
from fupin_sim.notes import Note, note_fields
from fupin_sim.results import METRICS as SUMMARY_METRICS
from fupin_sim.results import add_derived, package_version, simulate
from fupin_sim.scenario import Scenario, load_scenario

LEVEL = 0.95
COLUMNS = ["alternative", "year", "metric", "mean_diff", "se", "ci_low", "ci_high", "base_mean", "alt_mean",
           "p_value", "reps"]
# the headline rows, totals over the years (alternative − baseline, or ratios of them)
METRICS = (
    Metric("extra_exits", "flow", "households", "Extra exits (households)", "增加脱贫户数"),
    Metric("relapses_averted", "flow", "households", "Relapses averted (households)", "减少返贫户数"),
    Metric("new_poor_averted", "flow", "households", "New poor averted (households)", "减少新致贫户数"),
    Metric("poverty_gap_change_yuan", "flow", "yuan", "Change in the poverty gap (yuan)", "贫困缺口变化(元)"),
    Metric("extra_spending", "flow", "yuan", "Extra spending (yuan)", "增加支出(元)"),
    Metric("extra_exits_per_million_yuan", "ratio", "households per million yuan", "Extra exits per million yuan",
           "每百万元增加脱贫户数"),
    Metric("relapses_averted_per_million_yuan", "ratio", "households per million yuan",
           "Relapses averted per million yuan", "每百万元减少返贫户数"),
    Metric("cost_per_extra_exit", "ratio", "yuan per household", "Cost per extra exit (yuan)", "每增加一户脱贫的成本(元)"),
    Metric("cost_per_relapse_averted", "ratio", "yuan per household", "Cost per relapse averted (yuan)",
           "每减少一户返贫的成本(元)"),
    Metric("poverty_gap_closed_per_yuan", "ratio", "yuan per yuan", "Poverty gap closed per yuan spent",
           "每元支出缩小的贫困缺口(元)"))


def run_summary(task: tuple[Scenario, int]) -> pd.DataFrame:
    """Worker: the yearly summary of one (scenario, seed), derived metrics included."""
    return add_derived(simulate(*task).summary)


def _alternative(ref, where: str) -> tuple[object, dict]:
    """An alternative as (scenario reference, instrument scales): a name, file or `Scenario`, or
    {"scenario": ..., "instrument_scale": {instrument: factor}}."""
    if not isinstance(ref, dict):
        return ref, {}
    unknown = set(ref) - {"scenario", "instrument_scale"}
    if unknown or "scenario" not in ref:
        raise InputError(f"expected {{scenario: ..., instrument_scale: {{instrument: factor}}}}, got {ref!r}",
                         where=where)
    return ref["scenario"], ref.get("instrument_scale") or {}


def _prepare(baseline, alternatives, households, years, seed) -> tuple[Scenario, dict[str, Scenario], list[str]]:
    """Apply the options to every scenario (and its instrument scales to an alternative), name
    the alternatives, and check they can be paired."""
    base = load_scenario(baseline).edit(households=households, years=years, seed=seed)
    if isinstance(alternatives, (str, Path, Scenario)):
        alternatives = [alternatives]
    items = list(alternatives.items()) if isinstance(alternatives, dict) else [(None, a) for a in alternatives]
    if not items:
        raise InputError("give at least one alternative scenario to compare with the baseline", where="alternatives")
    alts: dict[str, Scenario] = {}
    notes: list[str] = []
    for i, (label, ref) in enumerate(items):
        where = f"alternatives.{label if label is not None else i}"
        ref, scale = _alternative(ref, where)
        sc = load_scenario(ref).edit(households=households, years=years).edit(instrument_scale=scale, where=where)
        name = label or sc.name + "".join(f", {k} × {v:g}" for k, v in sc.instrument_scale.items())
        unique, k = name, 2
        while unique in alts or unique == base.name:
            unique, k = f"{name} [{k}]", k + 1
        if sc.years != base.years:
            raise InputError(f"simulates {sc.years[0]}-{sc.years[1]} but the baseline {base.name!r} simulates "
                             f"{base.years[0]}-{base.years[1]}: a paired comparison needs the same years "
                             f"(set them with years= / --years)", file=sc.file, where="years")
        if sc.households != base.households:
            raise InputError(f"simulates {sc.households or 'the preset’s'} households but the baseline "
                             f"{base.name!r} simulates {base.households or 'the preset’s'}: a paired comparison "
                             f"needs the same population (set it with households= / --households)",
                             file=sc.file, where="population.households")
        if (sc.preset, sc.register) != (base.preset, base.register):
            notes.append(Note("population_differs", name=unique, alt=str(sc.register or sc.preset),
                              base=str(base.register or base.preset)))
        alts[unique] = sc
    return base, alts, notes


def _t_stats(d: np.ndarray) -> tuple[float, float, float, float, float]:
    """mean, standard error, CI low, CI high, two-sided p-value of paired differences (axis 0)."""
    from scipy import stats

    n = len(d)
    mean = float(np.mean(d))
    if n < 2:
        return mean, np.nan, np.nan, np.nan, np.nan
    se = float(np.std(d, ddof=1) / np.sqrt(n))
    if se == 0.0:
        return mean, 0.0, mean, mean, (1.0 if mean == 0.0 else 0.0)
    t = stats.t.ppf(0.5 + LEVEL / 2, n - 1)
    p = float(2 * stats.t.sf(abs(mean) / se, n - 1))
    return mean, se, mean - t * se, mean + t * se, p


def ratio_interval(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """Ratio of means mean(a) / mean(b) over paired replicates: estimate, delta-method
    standard error, and Fieller's 95% interval (NaN when it is unbounded)."""
    from scipy import stats

    n = len(a)
    ma, mb = float(np.mean(a)), float(np.mean(b))
    if mb == 0.0:
        return np.nan, np.nan, np.nan, np.nan
    r = ma / mb
    if n < 2:
        return r, np.nan, np.nan, np.nan
    cov = np.cov(np.vstack([a, b]), ddof=1) / n
    vaa, vbb, vab = cov[0, 0], cov[1, 1], cov[0, 1]
    se = float(abs(r) * np.sqrt(max(vaa / ma ** 2 + vbb / mb ** 2 - 2 * vab / (ma * mb), 0.0))) if ma else \
        float(np.sqrt(vaa) / abs(mb))
    t2 = stats.t.ppf(0.5 + LEVEL / 2, n - 1) ** 2
    qa = mb ** 2 - t2 * vbb
    qb = ma * mb - t2 * vab
    qc = ma ** 2 - t2 * vaa
    disc = qb ** 2 - qa * qc
    if qa <= 0 or disc < 0:
        return r, se, np.nan, np.nan
    root = np.sqrt(disc)
    return r, se, float((qb - root) / qa), float((qb + root) / qa)


@dataclass
class Comparison:
    """The paired comparison: `table` (long: alternative, year, metric, mean_diff, se,
    ci_low, ci_high, base_mean, alt_mean, p_value, reps), `replicates` (every run's yearly
    summary), `manifest` and `notes`."""
    table: pd.DataFrame
    replicates: pd.DataFrame
    manifest: dict
    notes: list[str] = field(default_factory=list)

    def headline(self) -> pd.DataFrame:
        """The cumulative rows (year == 'total') of the headline metrics, one block per alternative."""
        keys = ["extra_exits", "relapses_averted", "new_poor_averted", "poverty_gap_change_yuan", "extra_spending",
                "extra_exits_per_million_yuan", "relapses_averted_per_million_yuan", "cost_per_extra_exit",
                "cost_per_relapse_averted", "poverty_gap_closed_per_yuan"]
        t = self.table[(self.table["year"] == "total") & self.table["metric"].isin(keys)]
        alternatives = list(dict.fromkeys(self.table["alternative"]))
        order = {**{k: i for i, k in enumerate(keys)}, **{a: i for i, a in enumerate(alternatives)}}
        return t.sort_values(["alternative", "metric"], key=lambda col: col.map(order), ignore_index=True)

    def write(self, out: str | Path) -> Path:
        """Write comparison.csv, replicates.csv and manifest.json, the manifest last
        (figures: `fupin_sim.report`)."""
        from fupin_sim.files import commit_files

        table, replicates = self.table, self.replicates
        text = json.dumps({**self.manifest, **note_fields(self.notes)}, indent=1, ensure_ascii=False, default=str)
        files = {"comparison.csv": lambda tmp: table.to_csv(tmp, index=False),
                 "replicates.csv": lambda tmp: replicates.to_csv(tmp, index=False),
                 "manifest.json": lambda tmp: tmp.write_text(text, encoding="utf-8")}
        return commit_files(Path(out), files)  # every file in full first, the manifest last


def _rows(name: str, metric: str, year, d: np.ndarray, b: np.ndarray, a: np.ndarray) -> dict:
    mean, se, lo, hi, p = _t_stats(d)
    return {"alternative": name, "year": year, "metric": metric, "mean_diff": mean, "se": se, "ci_low": lo,
            "ci_high": hi, "base_mean": float(np.mean(b)), "alt_mean": float(np.mean(a)), "p_value": p,
            "reps": len(d)}


def paired_table(base_runs: list[pd.DataFrame], alt_runs: dict[str, list[pd.DataFrame]],
                 notes: list[str]) -> pd.DataFrame:
    """The long table of paired differences from the runs (replicate r of each list paired)."""
    base_runs = [add_derived(f) for f in base_runs]
    alt_runs = {k: [add_derived(f) for f in v] for k, v in alt_runs.items()}
    metrics = [c for c in base_runs[0].columns if c != "year" and pd.api.types.is_numeric_dtype(base_runs[0][c])]
    years = base_runs[0]["year"].to_numpy()
    summed = {m: SUMMARY_METRICS[m].years == "sum" for m in metrics}  # flows add up over years; levels average
    B = np.stack([f[metrics].to_numpy(dtype=float) for f in base_runs])  # reps × years × metrics
    rows = []
    has_spending = "spending" in metrics
    if not has_spending:
        notes.append(Note("no_spending"))
    for name, runs in alt_runs.items():
        A = np.stack([f[metrics].to_numpy(dtype=float) for f in runs])
        D = A - B
        for j, m in enumerate(metrics):
            for i, y in enumerate(years):
                rows.append(_rows(name, m, int(y), D[:, i, j], B[:, i, j], A[:, i, j]))
            reducer, label = (np.sum, "total") if summed[m] else (np.mean, "mean")
            rows.append(_rows(name, m, label, reducer(D[:, :, j], axis=1), reducer(B[:, :, j], axis=1),
                              reducer(A[:, :, j], axis=1)))
        tot = {m: (A[:, :, j].sum(axis=1), B[:, :, j].sum(axis=1)) for j, m in enumerate(metrics) if summed[m]}

        def head(metric, source, sign):
            if source in tot:
                a, b = tot[source]
                rows.append(_rows(name, metric, "total", sign * (a - b), b, a))

        head("extra_exits", "exits", 1)
        head("relapses_averted", "relapses", -1)
        head("new_poor_averted", "new_poor", -1)
        head("poverty_gap_change_yuan", "poverty_gap_yuan", 1)
        if has_spending:
            a_sp, b_sp = tot["spending"]
            cost = a_sp - b_sp
            head("extra_spending", "spending", 1)
            if np.all(cost == 0):
                notes.append(Note("same_spending", name=name))
            elif cost.mean() < 0:
                notes.append(Note("less_spending", name=name))
            effects = {"extra_exits": tot["exits"][0] - tot["exits"][1],
                       "relapses_averted": tot["relapses"][1] - tot["relapses"][0]}
            ratios = [("extra_exits_per_million_yuan", effects["extra_exits"], cost, 1e6),
                      ("relapses_averted_per_million_yuan", effects["relapses_averted"], cost, 1e6),
                      ("cost_per_extra_exit", cost, effects["extra_exits"], 1.0),
                      ("cost_per_relapse_averted", cost, effects["relapses_averted"], 1.0)]
            if "poverty_gap_yuan" in tot:
                gap_closed = tot["poverty_gap_yuan"][1] - tot["poverty_gap_yuan"][0]
                ratios.append(("poverty_gap_closed_per_yuan", gap_closed, cost, 1.0))
            for metric, num, den, scale in ratios:
                r, se, lo, hi = ratio_interval(num * scale, den)
                if np.isfinite(r) and not np.isfinite(lo) and len(cost) > 1:
                    notes.append(Note("unbounded_ratio", name=name, metric=metric))
                rows.append({"alternative": name, "year": "total", "metric": metric, "mean_diff": r, "se": se,
                             "ci_low": lo, "ci_high": hi, "base_mean": np.nan, "alt_mean": np.nan, "p_value": np.nan,
                             "reps": len(cost)})
    return pd.DataFrame(rows, columns=COLUMNS)


def compare(baseline, alternatives, reps: int = 10, n_jobs: int = 1, *, households: int | None = None,
            years=None, seed: int | None = None, draws=None) -> Comparison:
    """Run `baseline` and each alternative with the same `reps` replicate seeds and compare
    them pair by pair.

    `baseline` and each alternative are a bundled name, a scenario file or a `Scenario`;
    `alternatives` is one of those, a list, or a dict {label: scenario}; an alternative may
    also be {"scenario": ..., "instrument_scale": {instrument: factor}}, the scenario with
    those instruments' budgets scaled (`Simulation`): e.g. the baseline with twice the money
    for microloans, against the baseline. `households`,
    `years` and `seed` override every scenario (the alternatives always run with the
    baseline's seeds; their own `seed:` is not used). Results do not depend on `n_jobs`.
    `draws` (a calibration folder or its draws.csv): replicate r of every scenario runs with
    parameter draw r mod their number, so the intervals carry parameter uncertainty too.
    """
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise InputError(f"reps must be a whole number of at least 1, got {reps!r}", where="reps")
    base, alts, notes = _prepare(baseline, alternatives, households, years, seed)
    seeds = replicate_seeds(base.seed, int(reps))
    if reps == 1:
        notes.append(Note("one_replicate"))
    if any(sc.seed != base.seed for sc in alts.values()):
        notes.append(Note("baseline_seeds", seed=int(base.seed)))
    scenarios = [base, *alts.values()]
    sets = read_draws(draws) if draws is not None else None
    per_rep = [scenarios_over(sc, sets, str(draws)) if sets else [sc] for sc in scenarios]
    runs, _ = execute(run_summary, [(over[r % len(over)], s) for over in per_rep for r, s in enumerate(seeds)],
                      n_jobs=n_jobs)
    by_scenario = [runs[i * reps:(i + 1) * reps] for i in range(len(scenarios))]
    base_runs, alt_runs = by_scenario[0], dict(zip(alts, by_scenario[1:]))
    table = paired_table(base_runs, alt_runs, notes)
    labels = ["baseline", *alts]
    replicates = pd.concat([f.assign(scenario=labels[i], rep=r, seed=seeds[r])
                            for i, frames in enumerate(by_scenario) for r, f in enumerate(frames)], ignore_index=True)
    replicates = replicates[["scenario", "rep", "seed", *[c for c in replicates.columns
                                                          if c not in ("scenario", "rep", "seed")]]]
    man = {"fupin_sim": package_version(), "kind": "compare", "experiment": "paired comparison (common random numbers)",
           "baseline": {"name": base.name, "file": base.file, "hash": base.hash},
           "alternatives": {k: {"name": sc.name, "file": sc.file, "hash": sc.hash,
                                **({"instrument_scale": sc.instrument_scale} if sc.instrument_scale else {})}
                            for k, sc in alts.items()},
           "years": list(base.years), "households": base.households, "seed": base.seed, "replicates": int(reps),
           "replicate_seeds": seeds, "confidence_level": LEVEL,
           "differences": "alternative minus baseline, replicate by replicate; CI from Student's t over replicates"}
    if sets:
        man["parameter_draws"] = {"file": str(draws), "count": len(sets), "used": min(int(reps), len(sets)),
                                  "rule": "replicate r of every scenario runs with draw r mod count", "sets": sets}
        replicates.insert(3, "draw", replicates["rep"] % len(sets))
    return Comparison(table=table, replicates=replicates, manifest=man, notes=notes)


def crn_variance_reduction(base, alt, reps: int = 20, metrics=("exits:sum", "relapses:sum",
                                                                  "registered_poor:final", "fgt1:mean"),
                           n_jobs: int = 1, *, households: int | None = None, years=None,
                           seed: int | None = None) -> pd.DataFrame:
    """How much common random numbers shrink the variance of a paired difference.

    Runs `base` with replicate seeds S, `alt` with the same seeds S (common random
    numbers) and `alt` again with independent seeds S'. For each metric ("name:reduction",
    as in sweep outputs) returns the variance over replicates of alt(S) − base(S) and of
    alt(S') − base(S), their ratio, and the implied replicate ratio: how many times more
    replicates independent seeds need for a confidence interval as narrow (the variance
    ratio, adjusted for Student's t at the same `reps`).
    """
    from scipy import stats

    if isinstance(metrics, str):
        metrics = [metrics]
    base_sc, alts, _ = _prepare(base, [alt], households, years, seed)
    alt_sc = next(iter(alts.values()))
    seeds = replicate_seeds(base_sc.seed, reps)
    independent = [derived_seed(base_sc.seed, "independent seeds", r) for r in range(reps)]
    tasks = [(base_sc, s) for s in seeds] + [(alt_sc, s) for s in seeds] + [(alt_sc, s) for s in independent]
    runs, _ = execute(run_summary, tasks, n_jobs=n_jobs)
    b, a, ai = runs[:reps], runs[reps:2 * reps], runs[2 * reps:]
    rows = []
    for spec in metrics:
        metric, _, reduce = spec.partition(":")
        reduce = reduce or "final"
        reduce = int(reduce) if reduce.isdigit() else reduce

        def vals(frames):
            return np.array([reduce_metric(f, metric, reduce) for f in frames])

        d_crn = vals(a) - vals(b)
        d_ind = vals(ai) - vals(b)
        v_crn, v_ind = np.var(d_crn, ddof=1), np.var(d_ind, ddof=1)
        ratio = v_ind / v_crn if v_crn > 0 else np.inf
        rows.append({"metric": f"{metric}:{reduce}", "reps": reps, "mean_diff_crn": d_crn.mean(),
                     "mean_diff_independent": d_ind.mean(), "var_crn": v_crn, "var_independent": v_ind,
                     "variance_ratio": ratio, "sd_ratio": float(np.sqrt(ratio)),
                     "replicates_for_equal_ci": _equal_ci_reps(v_ind, v_crn, reps, stats)})
    return pd.DataFrame(rows)


def _equal_ci_reps(v_ind: float, v_crn: float, reps: int, stats) -> float:
    """Replicates with independent seeds whose CI is as narrow as `reps` with common ones,
    divided by `reps` (Student's t at both sizes)."""
    if v_crn == 0 or reps < 2:
        return np.inf

    def width2(v, n):
        return stats.t.ppf(0.5 + LEVEL / 2, n - 1) ** 2 * v / n

    target = width2(v_crn, reps)
    if width2(v_ind, reps) <= target:
        return 1.0
    lo, hi = reps, 2 * reps
    while width2(v_ind, hi) > target:
        lo, hi = hi, 2 * hi
    while hi - lo > 1:  # smallest n with a width no larger than the target
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if width2(v_ind, mid) <= target else (mid, hi)
    return hi / reps
