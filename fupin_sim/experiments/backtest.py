"""Backtest of the relapse-risk forecast on a simulated world, against the rules a monitoring
office uses today.

1. Simulate one synthetic world (the scenario, `households`, the world's `seed`) to the end
   of year t and write it out as a register (`state.to_population()`).
2. Forecast t+1 … t+h from that register with other seeds (`fupin_sim.experiments.forecast`); the
   forecast sees only the register, not the world's hidden state (permanent income levels,
   ongoing support, loans, this year's medical bills).
3. Continue the same world (the same `Simulation` object) to t+h and record which
   households actually fell below the line (alive, per-capita income net of out-of-pocket
   medical and schooling costs under the line) in at least one of those years.

Scores, for all households and for the monitoring population (not registered poor at t:
exited and non-registered, where relapse and new poverty come from):

- the forecast's P(falls below within h years): Brier score, AUC (Mann–Whitney), a
  reliability table by deciles of predicted risk and a reliability diagram;
- the rules, as flags read from the world at t (they see this year's medical bills, which
  the register does not carry): `income_below_1.5x_line` (per-capita income net of costs
  under 1.5 × the line), `large_medical_bill` (out-of-pocket medical costs over 40% of
  income or over `MEDICAL_BILL_YUAN`), `lifted_by_transfers` (income without transfers
  under the line while the transfer share is at least 30%), `any_rule` (any of the three);
  and `income_rank` (ranking by per-capita income, lowest first: a stronger baseline than
  any flag). A flag's Brier score uses the observed rate among flagged and unflagged
  households (income_rank: within its deciles) in the same data, which flatters the rules.

Monitoring with a fixed capacity K: the rule watches the households it flags; the forecast
watches the K households of highest risk; hits are actual fallers among the watched.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from fupin_sim import status
from fupin_sim.errors import InputError
from fupin_sim.experiments.forecast import forecast
from fupin_sim.experiments.seeds import derived_seed
from fupin_sim.files import commit_files, output_dir
from fupin_sim.notes import Note, note_fields
from fupin_sim.population import schema as S
from fupin_sim.population.rules import poverty_line
from fupin_sim.results import package_version
from fupin_sim.scenario import load_scenario
from fupin_sim.simulation import Observer, Simulation

# the monitoring office's rules: income under 1.5 × the line; a medical bill over 40% of income or
# 10,000 yuan; above the line only through transfers that are at least 30% of income
INCOME_MULTIPLE, MEDICAL_SHARE, MEDICAL_BILL_YUAN, TRANSFER_SHARE = 1.5, 0.4, 10_000.0, 0.3
RULES = ("income_below_1.5x_line", "large_medical_bill", "lifted_by_transfers", "any_rule")


def auc(score: np.ndarray, outcome: np.ndarray) -> float:
    """Area under the ROC curve = Mann–Whitney U / (n1 n0), ties counted as half."""
    outcome = np.asarray(outcome, bool)
    n1, n0 = int(outcome.sum()), int((~outcome).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[outcome].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def brier(p: np.ndarray, outcome: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, float) - np.asarray(outcome, float)) ** 2))


def binned_rate(score: np.ndarray, outcome: np.ndarray, bins: int = 10) -> np.ndarray:
    """Each household's observed outcome rate within its bin of `score` (distinct values when
    few, else equal-count bins): the in-sample calibrated probability of a rule."""
    values = np.unique(score)
    if len(values) <= bins:
        codes = np.searchsorted(values, score)
    else:
        order = np.argsort(score, kind="stable")
        codes = np.empty(len(score), np.int64)
        for b, chunk in enumerate(np.array_split(order, bins)):
            codes[chunk] = b
    n = np.bincount(codes)
    rate = np.bincount(codes, weights=outcome.astype(float)) / np.maximum(n, 1)
    return rate[codes]


def reliability_table(p: np.ndarray, outcome: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Deciles of predicted risk (equal counts): n, mean predicted, observed rate."""
    order = np.argsort(p, kind="stable")
    rows = []
    for b, chunk in enumerate(np.array_split(order, bins)):
        if len(chunk):
            rows.append({"decile": b + 1, "n": len(chunk), "mean_predicted": float(p[chunk].mean()),
                         "observed": float(outcome[chunk].mean()), "p_min": float(p[chunk].min()),
                         "p_max": float(p[chunk].max())})
    return pd.DataFrame(rows)


def top_k(score: np.ndarray, k: int, tiebreak: np.ndarray) -> np.ndarray:
    """Rows of the k highest scores (ties: higher tiebreak first)."""
    order = np.lexsort((-tiebreak, -score))
    return order[:k]


class World(Observer):
    """The simulated world: at the end of year `t`, its register (what the forecast sees) and
    what the monitoring rules see (this year's bills too); after `t`, who actually fell below
    the line in some year."""

    def __init__(self, t: int):
        self.t = t

    def start(self, sim) -> None:
        if sim.year == self.t:  # the register is the starting snapshot
            self._look(sim)

    def observe(self, sim, year: int, row: dict) -> None:
        if year == self.t:
            self._look(sim)
        elif year > self.t:
            # households formed after `t` (分户) are not in the register the forecast saw
            self.fell |= status.below_line(sim.state, sim.params.at(year))[:len(self.fell)]

    def _look(self, sim) -> None:
        h, p_t = sim.state.h, sim.params.at(self.t)
        self.register = sim.state.to_population()
        self.live = np.flatnonzero(h["size"] > 0)  # register row i is world row live[i]
        line_t = poverty_line(p_t)
        size = np.maximum(h["size"], 1)
        total = sim.state.income_total()
        y_t = status.test_income(sim.state, p_t)
        rule = {
            "income_below_1.5x_line": y_t < INCOME_MULTIPLE * line_t,
            "large_medical_bill": (h["oop"] > MEDICAL_SHARE * np.maximum(total, 0.0)) | (h["oop"] > MEDICAL_BILL_YUAN),
            "lifted_by_transfers": ((total - h["income_transfer"]) / size < line_t)
                                   & (h["income_transfer"] >= TRANSFER_SHARE * np.maximum(total, 1e-9)),
        }
        rule["any_rule"] = rule["income_below_1.5x_line"] | rule["large_medical_bill"] | rule["lifted_by_transfers"]
        self.rules = {k: v[self.live] for k, v in rule.items()}
        self.income = y_t[self.live]
        self.status = h["status"][self.live].copy()
        self.fell = np.zeros(sim.state.n, bool)


@dataclass
class BacktestResult:
    scores: pd.DataFrame        # population, method, auc, brier, n, events, prevalence, ...
    reliability: pd.DataFrame   # population, decile, n, mean_predicted, observed
    monitoring: pd.DataFrame    # population, capacity, k, method, watched, hits, precision, recall
    households: pd.DataFrame    # per household: p, outcome, rule flags
    forecast: object            # the ForecastResult
    manifest: dict

    def headline(self) -> str:
        s = self.scores[self.scores["population"] == "monitoring"].set_index("method")
        f = s.loc["forecast"]
        lines = [f"backtest {self.manifest['scenario']}: register {self.manifest['t']}, horizon "
                 f"{self.manifest['horizon']}, {self.manifest['households']:,} households "
                 f"({int(f['n']):,} exited or non-registered, {int(f['events']):,} fell below the line): "
                 f"forecast AUC {f['auc']:.3f}, Brier {f['brier']:.4f}"]
        for m in [*RULES, "income_rank"]:
            r = s.loc[m]
            lines.append(f"  {m}: AUC {r['auc']:.3f} (forecast higher by {f['auc'] - r['auc']:+.3f}), "
                         f"Brier {r['brier']:.4f} (forecast lower by {r['brier'] - f['brier']:+.4f})")
        return "\n".join(lines)

    def write(self, out) -> Path:
        """The forecast in `forecast/`, then the scores and tables, the manifest last (each file
        written in full under a temporary name first: `files.commit_files`)."""
        out = Path(out)
        self.forecast.write(output_dir(out, "forecast"))
        text = json.dumps(self.manifest, indent=1, ensure_ascii=False, default=str)
        tables = {"backtest.csv": self.scores, "reliability.csv": self.reliability, "monitoring.csv": self.monitoring,
                  "households.csv": self.households}
        files = {name: (lambda tmp, t=t: t.to_csv(tmp, index=False)) for name, t in tables.items()}
        files["manifest.json"] = lambda tmp: tmp.write_text(text, encoding="utf-8")
        return commit_files(out, files)


def backtest(scenario="consolidation", households: int = 5000, t: int = 2020, horizon: int = 3, reps: int = 100,
             seed: int = 0, n_jobs: int = 1) -> BacktestResult:
    t0 = time.perf_counter()
    sc = load_scenario(scenario)
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise InputError(f"horizon must be at least 1 year, got {horizon!r}", where="horizon")
    a, b = sc.years
    if t < a - 1 or t + horizon > b:
        raise InputError(f"the backtest needs the world's years up to {t + horizon} and a register year t from "
                         f"{a - 1}; the scenario covers {a}-{b}: use t from {a - 1} to {b - horizon}",
                         file=sc.file, where="years")
    world = World(t)
    Simulation(sc.edit(households=households, years=(a, t + horizon), seed=seed), seed=seed, observers=[world]).run()
    register, live, rule, income_t, status_t = world.register, world.live, world.rules, world.income, world.status
    forecast_seed = derived_seed(seed, "backtest.forecast", t)  # never the world's seed
    fc = forecast(register, sc, horizon, reps, seed=forecast_seed, n_jobs=n_jobs)
    p = fc.table[f"p_within_{horizon}"].to_numpy()
    outcome = world.fell[live]

    populations = {"all": np.ones(len(live), bool), "monitoring": status_t != S.POOR}
    score_rows, rel_frames, mon_rows = [], [], []
    for pop_name, mask in populations.items():
        o = outcome[mask]
        methods = {"forecast": (p[mask], p[mask])}
        for name, flag in rule.items():
            f = flag[mask].astype(float)
            methods[name] = (f, binned_rate(f, o))
        methods["income_rank"] = (-income_t[mask], binned_rate(-income_t[mask], o))
        base = {"population": pop_name, "n": int(mask.sum()), "events": int(o.sum()), "prevalence": float(o.mean())}
        f_auc, f_brier = auc(p[mask], o), brier(p[mask], o)
        for name, (score, prob) in methods.items():
            a_, b_ = auc(score, o), brier(prob, o)
            score_rows.append({**base, "method": name, "auc": a_, "brier": b_,
                               "flagged": int(score.sum()) if name in rule else None,
                               "brier_calibrated_in_sample": name != "forecast",
                               "forecast_auc_gain": f_auc - a_, "forecast_brier_reduction": b_ - f_brier})
        rel_frames.append(reliability_table(p[mask], o).assign(population=pop_name))
        # monitoring with a fixed capacity
        total_events = max(int(o.sum()), 1)
        capacities = {name: int(rule[name][mask].sum()) for name in ("income_below_1.5x_line", "any_rule")}
        capacities.update({f"top_{q}pct": int(round(q / 100 * mask.sum())) for q in (5, 10, 20)})
        for cap_name, k in capacities.items():
            watched = {"forecast": top_k(p[mask], k, -income_t[mask]),
                       "income_rank": top_k(-income_t[mask], k, p[mask])}
            if cap_name in rule:
                watched[cap_name] = np.flatnonzero(rule[cap_name][mask])
            for method, rows in watched.items():
                hits = int(o[rows].sum())
                mon_rows.append({"population": pop_name, "capacity": cap_name, "k": k, "method": method,
                                 "watched": len(rows), "hits": hits,
                                 "precision": hits / len(rows) if len(rows) else float("nan"),
                                 "recall": hits / total_events})
    scores = pd.DataFrame(score_rows)
    reliability = pd.concat(rel_frames, ignore_index=True)
    reliability = reliability[["population"] + [c for c in reliability.columns if c != "population"]]
    monitoring = pd.DataFrame(mon_rows)
    households_frame = pd.DataFrame({
        "household_id": register.households["household_id"],
        "status": np.asarray(S.CATEGORIES["status"])[status_t],
        "income_pc_t": income_t, "p_forecast": p, "fell_below": outcome.astype(int),
        **{f"rule_{k}": v.astype(int) for k, v in rule.items()}})
    man = {"fupin_sim": package_version(), "kind": "backtest", "scenario": sc.name, "scenario_file": sc.file,
           "households": int(households),
           "register_households": int(len(live)), "t": int(t), "horizon": int(horizon), "reps": int(reps),
           "world_seed": int(seed), "forecast_seed": int(forecast_seed), "n_jobs": n_jobs,
           "medical_bill_yuan": MEDICAL_BILL_YUAN, "wall_seconds": round(time.perf_counter() - t0, 2),
           **note_fields([Note("backtest_in_sample")])}
    return BacktestResult(scores=scores, reliability=reliability, monitoring=monitoring, households=households_frame,
                          forecast=fc, manifest=man)
