"""A result folder as a report sees it: what kind it is, its manifest, its tables, its
figures, and the assumptions behind it with their sources.

Reports are drawn from the files alone, so a folder copied to another machine, or written
by an older run, reports the same way."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fupin_sim.errors import InputError
from fupin_sim.notes import Note, read_notes

KINDS = ("run", "compare", "sweep", "sensitivity", "calibrate", "forecast", "backtest")

# parameters that drive results most, shown in every report beside those a scenario changed
KEY_PARAMETERS = ("status.line", "exit.income_ratio", "register.identification", "policy.support_until",
                  "monitoring.income_multiple", "income.wage_growth", "income.sd_permanent", "income.sd_transitory",
                  "health.admission_rate", "health.insured_share", "shocks.drought_probability",
                  "population.registered_share")

# columns shown in the page's summary table (all columns are in the workbook)
SUMMARY_COLUMNS = ("year", "poverty_line", "registered_poor", "registered_poor_persons", "income_poor_persons",
                   "headcount_ratio", "fgt1", "exits", "relapses", "new_poor", "monitored", "spending", "unspent")

HEADLINE = ("extra_exits", "relapses_averted", "new_poor_averted", "poverty_gap_change_yuan", "extra_spending",
            "cost_per_extra_exit", "cost_per_relapse_averted", "poverty_gap_closed_per_yuan")


@dataclass
class Figure:
    name: str                       # file stem, e.g. "trajectory"
    draw: Callable[[str], object]   # lang -> matplotlib Figure


@dataclass
class ResultFolder:
    path: Path
    kind: str
    manifest: dict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)      # every table: the workbook's sheets
    shown: dict[str, pd.DataFrame] = field(default_factory=dict)       # the page's tables (subsets)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        m = self.manifest
        return str(m.get("name") or m.get("scenario") or (m.get("baseline") or {}).get("name") or self.path.name)


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read it as JSON ({e})", file=str(path)) from None
    if not isinstance(data, dict):
        raise InputError("is not a JSON object", file=str(path))
    return data


def _csv(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise InputError(f"cannot read the table ({e})", file=str(path)) from None


def kind_of(path: Path, manifest: dict) -> str:
    kind = manifest.get("kind") or manifest.get("command")
    if kind is None and "alternatives" in manifest:
        kind = "compare"
    if kind is None and (path / "summary.csv").exists():
        kind = "run"
    if kind not in KINDS:
        raise InputError(f"is not a result folder fupin-sim can report on (kind {kind!r}; expected one of "
                         f"{', '.join(KINDS)})", file=str(path))
    return kind


def open_folder(path: str | Path) -> ResultFolder:
    """Read a finished result folder. A folder without its manifest is unfinished (the
    manifest is written last), and is refused rather than reported half."""
    path = Path(path)
    if not path.is_dir():
        raise InputError("no such result folder", file=str(path))
    if (path / "calibration.json").exists():
        if not (path / "result.json").exists():
            raise InputError("holds an unfinished calibration (no result.json yet): rerun `fupin-sim calibrate` "
                             "into it to finish", file=str(path))
        manifest = _json(path / "result.json")
    elif (path / "manifest.json").exists():
        manifest = _json(path / "manifest.json")
    else:
        raise InputError("is not a finished fupin-sim result folder (no manifest.json)", file=str(path))
    folder = ResultFolder(path=path, kind=kind_of(path, manifest), manifest=manifest, notes=read_notes(manifest))
    READERS[folder.kind](folder)
    return folder


def _read_run(f: ResultFolder) -> None:
    from fupin_sim import plots

    p = f.path
    summary = _csv(p / "summary.csv")
    bands = _csv(p / "bands.csv") if (p / "bands.csv").exists() else None
    f.tables["summary"] = summary
    f.shown["summary"] = summary[[c for c in SUMMARY_COLUMNS if c in summary]]
    f.figures.append(Figure("trajectory", lambda lang: plots.trajectory(summary, bands, title=f.name, lang=lang)))
    if (p / "budget.csv").exists():
        budget = _csv(p / "budget.csv")
        f.tables["budget"] = f.shown["budget"] = budget
    if (p / "ledger.csv").exists():
        ledger = _csv(p / "ledger.csv")
        f.tables["ledger"] = ledger
        if len(ledger):
            f.shown["spending_by_instrument"] = (ledger[ledger["category"] != "loan"]
                                                 .pivot_table(index="instrument", columns="year", values="amount",
                                                              aggfunc="sum", fill_value=0.0)
                                                 .sort_values(by=ledger["year"].max(), ascending=False)
                                                 .reset_index())
            f.figures.append(Figure("spending", lambda lang: plots.spending(ledger, lang=lang)))
    if bands is not None:
        f.tables["bands"] = bands
    if (p / "replicates.csv").exists():
        f.tables["replicates"] = _csv(p / "replicates.csv")


def _read_compare(f: ResultFolder) -> None:
    from fupin_sim import plots

    table = _csv(f.path / "comparison.csv")
    f.tables["comparison"] = table
    total = table[(table["year"].astype(str) == "total") & table["metric"].isin(HEADLINE)]
    order = {m: i for i, m in enumerate(HEADLINE)}
    f.shown["headline"] = (total.assign(_o=total["metric"].map(order)).sort_values(["alternative", "_o"])
                           [["alternative", "metric", "mean_diff", "ci_low", "ci_high", "p_value"]])
    if (f.path / "replicates.csv").exists():
        f.tables["replicates"] = _csv(f.path / "replicates.csv")
    reps = f.manifest.get("replicates")
    f.figures.append(Figure("comparison", lambda lang: plots.comparison(table, reps, lang=lang)))
    if (total["metric"] == "extra_spending").any():
        f.figures.append(Figure("cost_effectiveness", lambda lang: plots.cost_effectiveness(table, lang=lang)))


def _read_sweep(f: ResultFolder) -> None:
    from fupin_sim import plots

    results = _csv(f.path / "results.csv")
    f.tables["results"] = results
    if (f.path / "design.csv").exists():
        f.tables["design"] = _csv(f.path / "design.csv")
    params = [p["path"] if isinstance(p, dict) else str(p) for p in f.manifest.get("parameters", [])]
    params = [p for p in params if p in results]
    outputs = [o for o in f.manifest.get("outputs", []) if o in results]
    by_point = results.groupby("point")[[*params, *outputs]].mean().reset_index()
    f.shown["point_means"] = by_point
    for out in outputs[:4]:
        f.figures.append(Figure(f"sweep_{out}", lambda lang, out=out: plots.sweep_response(results, params, out,
                                                                                           lang=lang)))
    if len(params) >= 2 and outputs:
        f.figures.append(Figure(f"surface_{outputs[0]}", lambda lang: plots.response_surface(
            results, params[0], params[1], outputs[0], lang=lang)))


def _read_sensitivity(f: ResultFolder) -> None:
    from fupin_sim import plots

    indices = _csv(f.path / "sensitivity.csv")
    f.tables["sensitivity"] = indices
    f.shown["sensitivity"] = indices[["output", "parameter", "S1", "S1_low", "S1_high", "ST", "ST_low", "ST_high",
                                      "noise_share"]]
    for name in ("noise", "results", "design"):
        if (f.path / f"{name}.csv").exists():
            f.tables[name] = _csv(f.path / f"{name}.csv")
    level = (f.manifest.get("bootstrap") or {}).get("confidence", 0.95)
    f.figures.append(Figure("sensitivity", lambda lang: plots.sensitivity(indices, level, lang=lang)))


def _read_calibrate(f: ResultFolder) -> None:
    from fupin_sim import plots

    fit = _csv(f.path / "fit.csv")
    f.tables["fit"] = fit
    columns = ["year", "metric", "observed", "sd", "fitted", "z", "within_1sd", "within_2sd", "role", "source"]
    f.shown["fit"] = fit[[c for c in columns if c in fit]]  # `role` is newer than some folders
    best = pd.DataFrame({"parameter": list(f.manifest.get("best", {})),
                         "value": list(f.manifest.get("best", {}).values())})
    f.tables["best"] = f.shown["best"] = best
    fitted = fit[fit["weight"] > 0]
    k, n = int(fitted["within_2sd"].sum()), len(fitted)
    f.figures.append(Figure("fit", lambda lang: plots.calibration_fit(
        fit, plots.text("fit_summary", lang, name=f.name, k=k, n=n), lang=lang)))
    if (f.path / "draws.csv").exists():
        f.tables["draws"] = _csv(f.path / "draws.csv")
        every = _csv(f.path / "abc_draws.csv")
        if "round" in every:  # folders from before ABC-SMC have no rounds
            bounds = (f.manifest.get("abc") or {}).get("bounds")
            f.figures.append(Figure("draws", lambda lang: plots.calibration_draws(
                every, f.manifest.get("best", {}), bounds, lang=lang)))


def _read_forecast(f: ResultFolder) -> None:
    from fupin_sim import plots

    risk = _csv(f.path / "risk.csv")
    aggregate = _csv(f.path / "aggregate.csv")
    h = int(f.manifest.get("horizon") or max(int(c.rsplit("_", 1)[1]) for c in risk if c.startswith("p_within_")))
    f.tables["risk"] = risk
    f.tables["aggregate"] = aggregate
    f.shown["aggregate"] = aggregate[(aggregate["by"] == "all")]
    f.shown["highest_risk"] = risk.sort_values(f"p_within_{h}", ascending=False).head(20)[
        ["household_id", "status", "region_type", "cause", "size", "income_pc_now", f"p_within_{h}", "tier",
         "main_driver"]]
    f.figures.append(Figure("risk", lambda lang: plots.risk_distribution(risk, aggregate, h, lang=lang)))


def _read_backtest(f: ResultFolder) -> None:
    from fupin_sim import plots

    p = f.path
    scores, rel, monitoring = _csv(p / "backtest.csv"), _csv(p / "reliability.csv"), _csv(p / "monitoring.csv")
    households = _csv(p / "households.csv") if (p / "households.csv").exists() else None
    f.tables.update(backtest=scores, monitoring=monitoring, reliability=rel)
    f.shown.update(backtest=scores[["population", "method", "n", "events", "auc", "brier"]], monitoring=monitoring)
    rules = [c[len("rule_"):] for c in (households.columns if households is not None else []) if c.startswith("rule_")]
    f.figures.append(Figure("reliability", lambda lang: plots.reliability(rel, scores, households, rules, lang=lang)))
    if (p / "forecast" / "manifest.json").exists():
        inner = ResultFolder(path=p / "forecast", kind="forecast", manifest=_json(p / "forecast" / "manifest.json"))
        _read_forecast(inner)
        f.tables.update({f"forecast_{k}": v for k, v in inner.tables.items() if k != "risk"})
        f.figures.extend(inner.figures)


READERS = {"run": _read_run, "compare": _read_compare, "sweep": _read_sweep, "sensitivity": _read_sensitivity,
           "calibrate": _read_calibrate, "forecast": _read_forecast, "backtest": _read_backtest}


def about(f: ResultFolder) -> list[tuple[str, object]]:
    """(key, value) pairs that say what produced the result: kind, scenario, seed, version…"""
    m = f.manifest
    pop = m.get("population") or {}
    scenario = m.get("scenario") or (m.get("baseline") or {}).get("name")
    if m.get("alternatives"):
        scenario = f"{scenario} vs {', '.join(m['alternatives'])}"
    seed = m.get("seed", m.get("world_seed"))
    if seed is None and m.get("replicate_seeds"):
        seed = m["replicate_seeds"][0]
    rows = [("scenario", scenario), ("years", "–".join(str(y) for y in m["years"]) if m.get("years") else None),
            ("seed", seed), ("households_simulated", pop.get("households_simulated") or m.get("households")),
            ("replicates", m.get("replicates") or m.get("reps")), ("population_origin", pop.get("origin")),
            ("instrument_scale", ", ".join(f"{k} × {v:g}" for k, v in (m.get("instrument_scale") or {}).items())),
            ("version", m.get("fupin_sim")), ("created", str(f.path))]
    return [(k, v) for k, v in rows if v not in (None, "")]


def _scenario_file(f: ResultFolder) -> str | None:
    m = f.manifest
    if f.kind == "calibrate" and (f.path / "fitted.yaml").exists():
        return str(f.path / "fitted.yaml")
    return m.get("scenario_file") or (m.get("baseline") or {}).get("file") or m.get("scenario")


def assumptions(f: ResultFolder) -> pd.DataFrame:
    """The key parameters and those the scenario changed from its preset, with value, unit,
    source and confidence. Values come from the manifest (what the run used); sources from
    the scenario and parameter files, which must still be there."""
    from fupin_sim.params import Params
    from fupin_sim.scenario import load_scenario

    ref = _scenario_file(f)
    try:
        scenario = load_scenario(ref) if ref else None
    except (InputError, OSError):
        scenario = None
    if scenario is None:
        f.notes.append(Note("scenario_unreadable", ref=str(ref)))
        return pd.DataFrame(columns=["parameter", "value", "unit", "source", "confidence", "changed"])
    table = scenario.params.table()
    used = f.manifest.get("parameters") if isinstance(f.manifest.get("parameters"), dict) else \
        f.manifest.get("scenario_parameters")
    if isinstance(used, dict):
        table["value"] = [used.get(p, v) for p, v in zip(table["parameter"], table["value"])]
    defaults, current = Params.defaults(scenario.preset).to_dict(), scenario.params.to_dict()
    table["changed"] = [defaults.get(p) != current.get(p) for p in table["parameter"]]
    keep = table["changed"] | table["parameter"].isin(KEY_PARAMETERS)
    return table[keep].sort_values(["changed", "parameter"], ascending=[False, True], ignore_index=True)


def as_text(value) -> str:
    """A parameter value as people read it: numbers formatted, lists in brackets, dated
    values as 'year: value' (values may arrive as the JSON text of a parameter table)."""
    from fupin_sim.plots.style import number

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        return ", ".join(f"{k}: {as_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(as_text(v) for v in value) + "]"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
        return number(value)
    return str(value)
