"""The scorecard: the bundled scenarios against published figures.

`fupin_sim/data/history.csv` holds one published figure a row: the scenario that models it,
the metric and year(s), the value, a tolerance and whether it bounds the model from above or
below or is a point, its role (`fit`: a parameter was fitted to it; `check`: it was held
out, and no parameter may be tuned to it), which measure it is (`survey`: income poverty as
a survey measures it; `register`: the 建档立卡 register and monitoring, an administrative
process; `programme`: what the instruments did) and its source and definition.

    fupin-sim scorecard --out runs/scorecard          # the full card (README)
    fupin-sim scorecard --households 10000 --reps 2   # the reduced card CI runs (tests/test_scorecard.py)

Each scenario is run `reps` times (replicate seeds as `fupin-sim run --reps`); the model value
is the mean over replicates, with the lowest and highest beside it.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from fupin_sim.errors import InputError, close_match
from fupin_sim.files import commit_files
from fupin_sim.population import schema as S
from fupin_sim.population.rules import poverty_line
from fupin_sim.results import package_version
from fupin_sim.rng import RandomStreams
from fupin_sim.simulation import Observer, Simulation
from fupin_sim.status import test_income

HISTORY = "history.csv"
COLUMNS = ("id", "scenario", "metric", "year", "base_year", "value", "tolerance", "bound", "role", "measure",
           "unit", "definition", "source")
ROLES, BOUNDS, MEASURES = ("fit", "check"), ("point", "upper", "lower"), ("survey", "register", "programme")


@dataclass
class Run:
    """What one replicate of a scenario leaves for the metrics: its summary, and the yearly
    values an observer of the run kept (per-household flags, counts the summary lacks)."""
    summary: pd.DataFrame
    yearly: dict[int, dict]

    def at(self, column: str, year: int) -> float:
        row = self.summary.loc[self.summary["year"] == year]
        return float(row[column].iloc[0])

    def sum(self, column: str, years: range) -> float:
        return float(self.summary.loc[self.summary["year"].isin(list(years)), column].sum())


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _exit_after_one_year(run: Run, years: range) -> float:
    """Of the persons who enter income poverty in year t (poor in t, not in t − 1), the share
    not poor in t + 1, over the t in `years` (the CFPS moment: 37.2% exit after one year)."""
    entered = left = 0.0
    for t in years:
        before, now, after = (run.yearly.get(y, {}).get("poor") for y in (t - 1, t, t + 1))
        if before is None or after is None:
            continue
        rows = len(before)
        new = now[:rows] & ~before
        weight = run.yearly[t]["persons"][:rows] * new
        entered += float(weight.sum())
        left += float((weight * ~after[:rows]).sum())
    return _ratio(left, entered)


# metric -> (measure, computation from a run and the years (and base year) of the row)
def _mean_income(run: Run, year: int) -> float:
    return sum(run.at(f"income_{s}_per_capita", year) for s in S.INCOME_SOURCES)


METRICS: dict[str, tuple[str, Callable]] = {
    "income_per_capita": ("survey", lambda r, ys, b: _mean_income(r, ys[-1])),
    "income_relative": ("survey", lambda r, ys, b: _ratio(_mean_income(r, ys[-1]), _mean_income(r, b))),
    "income_median_ratio": ("survey", lambda r, ys, b: _ratio(r.yearly[ys[-1]]["median_income"],
                                                              _mean_income(r, ys[-1]))),
    "headcount_ratio": ("survey", lambda r, ys, b: r.at("headcount_ratio", ys[-1])),
    "headcount_relative": ("survey", lambda r, ys, b: _ratio(r.at("headcount_ratio", ys[-1]),
                                                             r.at("headcount_ratio", b))),
    "exit_after_one_year": ("survey", lambda r, ys, b: _exit_after_one_year(r, ys)),
    "registered_persons": ("register", lambda r, ys, b: r.at("registered_poor_persons", ys[-1])),
    "registered_relative": ("register", lambda r, ys, b: _ratio(r.at("registered_poor_persons", ys[-1]),
                                                                r.at("registered_poor_persons", b))),
    "relapses_persons": ("register", lambda r, ys, b: r.sum("relapses_persons", ys)),
    "new_poor_persons": ("register", lambda r, ys, b: r.sum("new_poor_persons", ys)),
    "relapse_share_of_exited": ("register", lambda r, ys, b: max(
        _ratio(r.at("relapses_persons", y), r.yearly[y - 1]["exited_persons"]) for y in ys)),
    "income_per_capita_filed": ("register", lambda r, ys, b: r.at("income_per_capita_filed", ys[-1])),
    "exits_development_share": ("register", lambda r, ys, b: _ratio(r.sum("exits_development_persons", ys),
                                                                    r.sum("exits_persons", ys))),
    "exits_industry_share": ("register", lambda r, ys, b: _ratio(
        sum(r.yearly[y]["exits_industry_persons"] for y in ys), r.yearly[ys[0] - 1]["filed_persons"])),
    "registered_working_age_share": ("register", lambda r, ys, b: _ratio(
        r.yearly[ys[0] - 1]["registered_working_age_persons"], r.yearly[ys[0] - 1]["filed_persons"])),
    "monitored_share_of_filed": ("register", lambda r, ys, b: _ratio(r.at("monitored_persons", ys[-1]),
                                                                     r.yearly[ys[-1]]["filed_persons"])),
    "risk_eliminated_share": ("register", lambda r, ys, b: _ratio(r.sum("risk_eliminated", range(ys[0], ys[-1] + 1)),
                                                                  r.sum("new_monitored", range(ys[0], ys[-1] + 1)))),
    "dibao_persons": ("programme", lambda r, ys, b: r.yearly[ys[-1]]["dibao_persons"]),
    "dibao_filed_share": ("programme", lambda r, ys, b: _ratio(r.yearly[ys[-1]]["dibao_filed_persons"],
                                                               r.yearly[ys[-1]]["filed_persons"])),
    "new_loans_per_filed_person": ("programme", lambda r, ys, b: _ratio(r.sum("loans_issued", ys),
                                                                        r.yearly[ys[-1]]["filed_persons"])),
    "linked_persons_share": ("programme", lambda r, ys, b: _ratio(r.yearly[ys[-1]]["linked_persons"],
                                                                  r.yearly[ys[-1]]["filed_persons"])),
    "industry_share_of_budgets": ("programme", lambda r, ys, b: _ratio(
        sum(r.yearly[y]["industry_spent"] for y in ys), sum(r.yearly[y]["budgets_spent"] for y in ys))),
}
# programme volumes as reported (000's 2018 figures): the year's households or persons served by
# instruments, per filed person (建档立卡, registered or exited) at the end of the year
VOLUMES = {
    "relocated_persons_share": (("relocation",), "persons"),
    "renovated_households_per_filed_person": (("housing_renovation",), "households"),
    "stable_jobs_per_filed_person": (("labour_transfer", "public_welfare_post"), "households"),
    "ranger_posts_per_filed_person": (("forest_ranger",), "households"),
    "new_borrowers_per_filed_person": (("microloan",), "households"),
}


def _volume(instruments: tuple[str, ...], unit: str):
    def value(run: Run, years: range, base) -> float:
        served = sum(run.yearly[y]["served"].get(i, (0.0, 0.0))[unit == "persons"] for y in years for i in instruments)
        return _ratio(served, run.yearly[years[-1]]["filed_persons"])
    return value


METRICS.update({name: ("programme", _volume(*spec)) for name, spec in VOLUMES.items()})
# metrics that look at the year before a row's first year (the stock at its start)
NEEDS_YEAR_BEFORE = {"relapse_share_of_exited", "exits_industry_share", "registered_working_age_share",
                     "exit_after_one_year"}


def _years(text, where: str, errors: list[str]) -> range | None:
    """'2018' or '2016-2019' as a range of years."""
    try:
        parts = [int(float(x)) for x in str(text).split("-")]
        if len(parts) == 1:
            parts *= 2
        low, high = parts
        if low > high:
            raise ValueError
        return range(low, high + 1)
    except (TypeError, ValueError):
        errors.append(f"{where}, column year: expected a year or 'first-last', got {text!r}")
        return None


def history_path() -> Path:
    return Path(str(resources.files("fupin_sim.data").joinpath(HISTORY)))


def read_history(path: str | Path | None = None, scenarios: dict | None = None) -> pd.DataFrame:
    """The table of published figures, checked completely: every bad row is named in one error
    (a missing source or definition, an unknown metric, scenario, role, bound or measure, a
    year outside the scenario's run, a value that is not a number)."""
    path = Path(path) if path is not None else history_path()
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InputError(f"cannot read the table ({e})", file=str(path)) from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"missing column(s) {missing}; the columns are {list(COLUMNS)}", file=str(path))
    unknown = [c for c in table.columns if c not in COLUMNS]
    if unknown:
        raise InputError(f"unknown column(s) {unknown}; the columns are {list(COLUMNS)}", file=str(path))
    scenarios = _scenarios(table) if scenarios is None else scenarios
    errors: list[str] = []
    rows = []
    for i, row in table.iterrows():
        where = f"row {i + 2} ({row['id'] or 'no id'})"
        for column in ("id", "source", "definition"):
            if not row[column].strip():
                errors.append(f"{where}, column {column}: empty; every figure needs its {column}")
        for column, allowed in (("role", ROLES), ("bound", BOUNDS), ("measure", MEASURES)):
            if row[column] not in allowed:
                errors.append(f"{where}, column {column}: {row[column]!r} is not one of {list(allowed)}"
                              f"{close_match(row[column], allowed)}")
        if row["metric"] not in METRICS:
            errors.append(f"{where}, column metric: unknown metric {row['metric']!r}"
                          f"{close_match(row['metric'], METRICS)}; known: {sorted(METRICS)}")
        elif row["measure"] in MEASURES and METRICS[row["metric"]][0] != row["measure"]:
            errors.append(f"{where}, column measure: {row['metric']} is a {METRICS[row['metric']][0]} "
                          f"measure, not {row['measure']}")
        numbers = {}
        for column in ("value", "tolerance"):
            try:
                numbers[column] = float(row[column])
                if not np.isfinite(numbers[column]) or (column == "tolerance" and numbers[column] < 0):
                    raise ValueError
            except ValueError:
                errors.append(f"{where}, column {column}: expected a finite number"
                              f"{' >= 0' if column == 'tolerance' else ''}, got {row[column]!r}")
        years = _years(row["year"], where, errors)
        base = None
        if row["metric"].endswith("_relative"):
            base_years = _years(row["base_year"], where, errors) if row["base_year"] else None
            if base_years is None:
                errors.append(f"{where}, column base_year: a relative metric needs the year it is relative to")
            else:
                base = base_years[0]
        sc = scenarios.get(row["scenario"])
        if sc is None:
            errors.append(f"{where}, column scenario: unknown scenario {row['scenario']!r}")
        elif years is not None:
            first = sc.years[0] + (1 if row["metric"] in NEEDS_YEAR_BEFORE else 0)
            last = sc.years[1] - (1 if row["metric"] == "exit_after_one_year" else 0)
            outside = [y for y in (*years, *([base] if base is not None else [])) if not first <= y <= last]
            if outside:
                errors.append(f"{where}, column year: {outside[0]} is outside the years {first}-{last} that "
                              f"scenario {row['scenario']!r} can measure {row['metric']} in")
        if years is not None:
            rows.append({**row.to_dict(), **numbers, "years": years, "base": base})
    if errors:
        raise InputError("; ".join(errors), file=str(path))
    return pd.DataFrame(rows)


def _scenarios(table: pd.DataFrame) -> dict:
    from fupin_sim.scenario import load_scenario

    out = {}
    for name in dict.fromkeys(table["scenario"]):
        try:
            out[name] = load_scenario(name)
        except InputError:
            continue  # named as unknown, with its row, by read_history
    return out


def state_values(sim) -> dict:
    """The year's values the metrics need beyond the summary, read from the state just after a
    step (persons are weighted by household weights)."""
    state, h = sim.state, sim.state.h
    p = sim.params.at(state.year)
    w, size = h["weight"], h["size"]
    persons = w * size
    filed = h["status"] != S.NONPOOR
    registered = np.flatnonzero(h["status"] == S.POOR)
    ages = state.p["age"]
    working = (ages >= 16) & (ages < 60)
    working_poor = np.bincount(state.p["hh"].take(np.flatnonzero(working)), minlength=state.n).take(registered)
    y = test_income(state, p)
    out = {"poor": y < poverty_line(p), "persons": persons.copy(), "median_income": _weighted_median(y, persons),
           "filed_persons": float(persons[filed].sum()), "exited_persons": float(persons[h["status"] == S.EXITED].sum()),
           "registered_working_age_persons": float((w.take(registered) * working_poor).sum())}
    served = getattr(sim.programme, "served", {}).get("dibao")
    out["dibao_filed_persons"] = 0.0 if served is None else float(persons.take(served)[filed.take(served)].sum())
    out["dibao_persons"] = 0.0 if served is None else float(persons.take(served).sum())
    out["served"] = {label: (float(w.take(rows).sum()), float(persons.take(rows).sum()))
                     for label, rows in getattr(sim.programme, "served", {}).items()}
    linked = filed & (h["boost_linkage"] > 0) if "boost_linkage" in h else np.zeros(state.n, bool)
    out["linked_persons"] = float(persons[linked].sum())
    out["budgets_spent"], out["industry_spent"] = _budget_spending(sim.programme, state.year)
    return out


def _budget_spending(programme, year: int) -> tuple[float, float]:
    """Public money spent in `year` from the limited lines (budgets, not entitlements or bank
    credit), and the part of it that paid industry instruments (产业扶贫)."""
    limited = {r["line"] for r in programme.budget_rows
               if r["year"] == year and np.isfinite(r["available"]) and r["source"] != "bank_credit"}
    family = {it.label: it.instrument.family for it in programme.items}
    rows = [r for r in programme.ledger.rows if r["year"] == year and r["line"] in limited and r["category"] != "loan"]
    return (float(sum(r["amount"] for r in rows)),
            float(sum(r["amount"] for r in rows if family.get(r["instrument"]) == "industry")))


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights.take(order))
    return float(values.take(order)[np.searchsorted(cum, 0.5 * cum[-1])]) if len(cum) and cum[-1] > 0 else float("nan")


def _industry_exits(sim, before: np.ndarray) -> float:
    """Persons of the households that exited this year holding support from an industry
    instrument (an operating-income stream from the menu, or a link to a firm)."""
    h = sim.state.h
    rows = np.flatnonzero((before == S.POOR) & (h["status"][:len(before)] == S.EXITED))
    streams = [h[c].take(rows) > 0 for c in ("boost_industry", "boost_linkage") if c in h]
    if not streams:
        return 0.0
    helped = np.logical_or.reduce(streams)
    return float((h["weight"].take(rows) * h["size"].take(rows))[helped].sum())


class Watch(Observer):
    """Keeps, for every year of a run, the values the metrics need beyond the summary."""

    def __init__(self):
        self.yearly: dict[int, dict] = {}

    def start(self, sim) -> None:
        self.yearly[sim.year] = state_values(sim)
        self.before = sim.state.h["status"].copy()

    def observe(self, sim, year: int, row: dict) -> None:
        self.yearly[year] = {**state_values(sim), "exits_industry_persons": _industry_exits(sim, self.before)}
        self.before = sim.state.h["status"].copy()


def run_scenario(scenario, seed: int) -> Run:
    """One replicate, observed year by year."""
    watch = Watch()
    summary = Simulation(scenario, seed=seed, observers=[watch]).run()
    return Run(summary, watch.yearly)


def _replicate(scenario, seed: int, rows: pd.DataFrame) -> list[float]:
    run = run_scenario(scenario, seed)
    return [METRICS[r.metric][1](run, r.years, r.base) for r in rows.itertuples()]


@dataclass
class ScorecardResult:
    table: pd.DataFrame
    manifest: dict

    def counts(self) -> dict:
        t = self.table
        return {role: {"pass": int(((t["role"] == role) & (t["result"] == "pass")).sum()),
                       "miss": int(((t["role"] == role) & (t["result"] == "miss")).sum())} for role in ROLES}

    def write(self, out: str | Path, pages: dict[str, str] | None = None) -> Path:
        """Write scorecard.csv, the `pages` (file name -> HTML: the report, which the command
        line renders) and manifest.json, the manifest last."""
        table = self.table.copy()
        text = json.dumps(self.manifest, indent=1, ensure_ascii=False, default=str)
        files = {"scorecard.csv": lambda tmp: table.to_csv(tmp, index=False),
                 **{name: (lambda tmp, html=html: tmp.write_text(html, encoding="utf-8"))
                    for name, html in (pages or {}).items()},
                 "manifest.json": lambda tmp: tmp.write_text(text, encoding="utf-8")}
        return commit_files(Path(out), files, marker="manifest.json")


def scorecard(history: str | Path | None = None, *, households: int | None = None, reps: int = 2,
              seed: int | None = None, n_jobs: int = 1) -> ScorecardResult:
    """Run every scenario the table names (`households` each, `reps` replicates) and score each
    published figure: pass when the model's mean is within the tolerance of a point, or on the
    right side of a bound (within the tolerance)."""
    from joblib import Parallel, delayed

    path = Path(history) if history is not None else history_path()
    table = pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else None
    scenarios = _scenarios(table) if table is not None else {}
    rows = read_history(path, scenarios)
    jobs = []
    for name, block in rows.groupby("scenario", sort=False):
        sc = scenarios[name] if households is None else scenarios[name].edit(households=households)
        base = sc.seed if seed is None else seed
        seeds = [RandomStreams(base).replicate_seed(r) for r in range(reps)]
        jobs += [(name, block.index, sc, s) for s in seeds]
    values = Parallel(n_jobs=n_jobs)(delayed(_replicate)(sc, s, rows.loc[idx]) for _, idx, sc, s in jobs)
    per_row: dict[int, list[float]] = {}
    for (_, idx, _, _), vals in zip(jobs, values):
        for i, v in zip(idx, vals):
            per_row.setdefault(i, []).append(v)
    out = rows.drop(columns=["years", "base"]).copy()
    model = np.array([np.mean(per_row[i]) for i in rows.index])
    out["model"] = model
    out["model_low"] = [min(per_row[i]) for i in rows.index]
    out["model_high"] = [max(per_row[i]) for i in rows.index]
    out["result"] = [_result(m, r) for m, r in zip(model, rows.itertuples())]
    cols = ["id", "scenario", "measure", "role", "metric", "year", "base_year", "value", "bound", "tolerance",
            "model", "model_low", "model_high", "result", "unit", "definition", "source"]
    manifest = {"fupin_sim": package_version(), "kind": "scorecard", "history": str(path),
                "households": households, "replicates": reps, "seed": seed,
                "scenarios": {name: {"hash": sc.hash, "years": list(sc.years)} for name, sc in scenarios.items()}}
    return ScorecardResult(out[cols], manifest)


def _result(model: float, row) -> str:
    if not np.isfinite(model):
        return "miss"
    if row.bound == "upper":
        ok = model <= row.value + row.tolerance
    elif row.bound == "lower":
        ok = model >= row.value - row.tolerance
    else:
        ok = abs(model - row.value) <= row.tolerance
    return "pass" if ok else "miss"
