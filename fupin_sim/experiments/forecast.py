"""Relapse-risk forecasts (返贫 / 新致贫 监测): from a register snapshot, the probability that
each household falls below the poverty line within 1, 2, … h years, its risk tier, its main
risk drivers, and aggregate counts with intervals across replicates.

    from fupin_sim.experiments.forecast import forecast
    fc = forecast("my_register", "consolidation", horizon=3, reps=200, seed=0, n_jobs=2)
    fc.risk.head()          # one row per household, sorted by risk
    fc.aggregate            # year, by, group, metric, mean, q10, q50, q90
    fc.write("runs/forecast")

Every replicate starts from the same register households (the snapshot is passed to the
engine as `population=`) and runs the scenario's years register year + 1 … register year + h
with its own seed (`RandomStreams(seed).replicate_seed(r)`), so results depend only on
(register, scenario, horizon, reps, seed), never on `n_jobs`.

"Falls below the line" in year y means: the household still exists and its per-capita
income net of out-of-pocket medical and schooling costs (the engine's poverty test,
`status.test_income`) is below year y's line. For an exited household that is a relapse,
for a non-registered one new poverty, for a registered one staying poor. The register's own
transitions also depend on identification and the three guarantees; the engine's counts of
registered relapses and new poor are reported apart in the aggregate (`engine_*`).

Risk drivers are read from the simulated state in the year a household first falls below
the line, in each replicate where it does; the share of those replicates where each was
present is reported (they can overlap, so shares need not add to 1):

- `illness_costs`: out-of-pocket medical costs that year were large enough that without
  them the household would have been at or above the line;
- `schooling_costs`: the same for schooling costs;
- `transfers_fell`: transfer income under 90% of the register's (support withdrawn,
  dibao ended, …);
- `earnings_fell`: wage + operating + property income under 70% of the register's;
- `drought`: its village was struck by drought that year (farming and pastoral villages);
- `debt`: it carried debt or an outstanding microloan.

Risk tiers on P(falls below within h years): high ≥ 0.5, medium ≥ 0.2, low below 0.2
(`TIERS`).

Resume: replicates run in parts of up to 10 through the executor (`forecast_parts`). With
an output folder (`fupin-sim forecast ... --out DIR`, or `forecast(..., out=DIR)`), each
finished part is saved as it arrives and a rerun reuses it; the outputs are written with
the manifest last, then the parts are deleted. A forecast assembled from saved parts is
byte-identical to one computed in one go (tests/test_faults.py).
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from fupin_sim import status
from fupin_sim.errors import InputError
from fupin_sim.experiments.draws import scenarios_over
from fupin_sim.experiments.executor import execute
from fupin_sim.experiments.forecast_parts import (PART_FORMAT, ROW_COLUMNS, PartStore, part_arrays, part_ranges,
                                                  part_rows, population_hash)
from fupin_sim.experiments.seeds import replicate_seeds
from fupin_sim.files import commit_files
from fupin_sim.metrics import Metric
from fupin_sim.population import Population
from fupin_sim.population import schema as S
from fupin_sim.population.register import read_register
from fupin_sim.population.rules import poverty_line
from fupin_sim.processes.income import covariate_loss
from fupin_sim.results import package_version
from fupin_sim.scenario import load_scenario
from fupin_sim.simulation import Observer, Simulation

TIERS = (("high", 0.5), ("medium", 0.2))  # at or above the threshold; "low" below the last
TRANSFERS_FELL, EARNINGS_FELL = 0.9, 0.7  # drivers: under these shares of the register's incomes
DRIVERS = ("illness_costs", "schooling_costs", "transfers_fell", "earnings_fell", "drought", "debt")
QUANTILES = {"q10": 0.10, "q50": 0.50, "q90": 0.90}
OUTCOME = {S.EXITED: "relapse", S.NONPOOR: "new_poverty", S.POOR: "still_poor"}
# the aggregate's metrics, households (weighted) each year: "fallen" means below the line in some
# year since the register; engine_*: the register's own transitions in the simulated years
METRICS = (
    Metric("below_line", "stock", "households", "Below the line this year", "当年低于贫困线"),
    Metric("fallen", "stock", "households", "Fallen below the line since the register", "登记以来曾低于贫困线"),
    Metric("relapse", "stock", "households", "Fallen: exited households (relapse)", "曾低于贫困线:已脱贫户(返贫)"),
    Metric("new_poverty", "stock", "households", "Fallen: not registered (new poverty)",
           "曾低于贫困线:非建档立卡户(新致贫)"),
    Metric("still_poor", "stock", "households", "Fallen: registered poor", "曾低于贫困线:贫困户"),
    Metric("engine_relapses", "flow", "households", "Register relapses (engine)", "登记返贫户数(模型)"),
    Metric("engine_new_poor", "flow", "households", "Register new poor (engine)", "登记新致贫户数(模型)"),
    Metric("engine_exits", "flow", "households", "Register exits (engine)", "登记脱贫户数(模型)"),
    Metric("engine_registered_poor", "stock", "households", "Registered poor (engine)", "建档立卡贫困户(模型)"))


def tier_of(p: np.ndarray) -> np.ndarray:
    out = np.full(len(p), "low", dtype=object)
    for name, threshold in reversed(TIERS):
        out[p >= threshold] = name
    return out


# ----------------------------------------------------------------------------- inputs

def load_register(register) -> Population:
    """A register folder (read and validated by `read_register`) or a `Population`, checked."""
    if isinstance(register, Population):
        names = set(register.households.names())
        missing = [c.name for c in S.HOUSEHOLD_COLUMNS if c.required and c.name not in names]
        if missing:
            raise InputError(f"the register's household table lacks column(s) {missing}", where="register")
        pnames = set(register.persons.names())
        pmissing = [c.name for c in S.PERSON_COLUMNS if c.name not in pnames]
        if pmissing:
            raise InputError(f"the register's person table lacks column(s) {pmissing}", where="register")
        empty = np.flatnonzero(register.sizes() == 0)
        if len(empty):
            ids = register.households["household_id"][empty[:5]].tolist()
            raise InputError(f"{len(empty)} household(s) have no members in the person table "
                             f"(household_id {', '.join(map(str, ids))}{', ...' if len(empty) > 5 else ''})",
                             where="register")
        return register
    return read_register(register)


def check_years(scenario, register_year: int, horizon) -> tuple[int, int]:
    """The forecast's years (register year + 1 … + horizon), which must lie in the scenario's."""
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
        raise InputError(f"horizon must be a whole number of years, got {horizon!r}", where="horizon")
    if horizon < 1:
        raise InputError(f"horizon must be at least 1 year, got {horizon}", where="horizon")
    first, last = int(register_year) + 1, int(register_year) + int(horizon)
    a, b = scenario.years
    if first < a or last > b:
        usable = (f"registers from the end of {a - 1} to {b - horizon}" if b - horizon >= a - 1
                  else f"no register year: the scenario has {b - a + 1} year(s), fewer than the horizon")
        raise InputError(f"the register describes the end of {register_year}, so a {horizon}-year forecast "
                         f"needs the years {first}-{last}, outside the scenario's years {a}-{b}; usable: {usable}",
                         file=scenario.file, where="years")
    return first, last


# ----------------------------------------------------------------------------- replicates

def _group_codes(h) -> list[tuple[str, tuple[str, ...], np.ndarray]]:
    n = len(h["household_id"])
    return [("all", ("all",), np.zeros(n, np.int64)),
            ("region_type", S.CATEGORIES["region_type"], h["region_type"].astype(np.int64)),
            ("cause", S.CATEGORIES["cause"], h["cause"].astype(np.int64))]


def _drought(sim, p, year: int) -> np.ndarray:
    saved = dict(sim.state.values)
    loss = covariate_loss(sim.state, p, sim.rs, year)  # a pure function of (seed, year, village)
    sim.state.values.update(saved)
    return loss > 0


class Block:
    """What the replicates of one part add up: per household, how many fell below the line
    within 1 … h years and with which drivers, each replicate's final test income, and the
    aggregate rows (rep, year, by, group, metric, value)."""

    def __init__(self, pop: Population, horizon: int, reps: int):
        h0 = pop.households
        n = len(h0)
        self.start_status = np.asarray(h0["status"])
        self.weight = np.asarray(h0["weight"], dtype=np.float64)
        self.transfer0 = np.asarray(h0["income_transfer"], dtype=np.float64)
        self.earnings0 = sum(np.asarray(h0[f"income_{s}"], dtype=np.float64) for s in ("wage", "operating", "property"))
        self.groups = _group_codes(h0)
        self.horizon = horizon
        self.fell_within = np.zeros((horizon, n), np.int32)
        self.drivers = np.zeros((len(DRIVERS), n), np.int32)
        self.final_income = np.empty((reps, n), np.float32)
        self.rows: list[tuple] = []

    def arrays(self) -> dict:
        return {"fell_within": self.fell_within, "drivers": self.drivers, "final_income": self.final_income,
                "rows": self.rows}


class Falls(Observer):
    """One replicate (the `i`-th of its block, number `rep`): each forecast year, who falls
    below the line for the first time and which drivers were present, into the block."""

    def __init__(self, block: Block, i: int, rep: int):
        self.block, self.i, self.rep = block, i, rep
        self.first_fall = np.full(len(block.weight), -1, np.int8)

    def observe(self, sim, year: int, row: dict) -> None:
        # the register's households are the first rows; those formed during the forecast by
        # members who left them are not followed
        b, n = self.block, len(self.block.weight)
        h = {k: v[:n] for k, v in sim.state.h.items()}
        k = year - sim.scenario.years[0]
        p = sim.params.at(year)
        y = status.test_income(sim.state, p)[:n]
        below = status.below_line(sim.state, p, status.test_income(sim.state, p))[:n]
        new = below & (self.first_fall < 0)
        self.first_fall[new] = k
        fallen = self.first_fall >= 0
        b.fell_within[k] += fallen
        if new.any():
            rows_new = np.flatnonzero(new)
            total = (h["income_wage"] + h["income_operating"] + h["income_property"] + h["income_transfer"])[rows_new]
            heavy = p["register.cost_cause_share"] * np.maximum(total, 1.0)  # costs heavy enough to be a cause
            present = (
                h["oop"][rows_new] > heavy,
                h["school_cost"][rows_new] > heavy,
                h["income_transfer"][rows_new] < TRANSFERS_FELL * b.transfer0[rows_new],
                (h["income_wage"] + h["income_operating"] + h["income_property"])[rows_new]
                < EARNINGS_FELL * b.earnings0[rows_new],
                _drought(sim, p, year)[:n][rows_new],
                h["debt"][rows_new] > 0,  # a microloan's principal is household debt
            )
            for d, mask in enumerate(present):
                b.drivers[d, rows_new] += mask
        if k == b.horizon - 1:
            b.final_income[self.i] = np.where(h["size"] > 0, y, np.nan)
        flags = {"below_line": below, "fallen": fallen}
        for code, name in OUTCOME.items():
            flags[name] = fallen & (b.start_status == code)
        for by, names, codes in b.groups:
            for metric, mask in flags.items():
                counts = np.bincount(codes, weights=b.weight * mask, minlength=len(names))
                b.rows.extend((self.rep, year, by, g, metric, float(c)) for g, c in zip(names, counts))
        for metric in ("relapses", "new_poor", "exits", "registered_poor"):
            b.rows.append((self.rep, year, "all", "all", f"engine_{metric}", float(row.get(metric, np.nan))))


def _run_block(scenarios: list, pop: Population, horizon: int, seeds: list[int], reps: list[int]) -> dict:
    """Simulate replicates `reps` (with `seeds`); return per-household counts and aggregate rows."""
    block = Block(pop, horizon, len(seeds))
    for i, (rep, seed) in enumerate(zip(reps, seeds)):
        Simulation(scenarios[rep % len(scenarios)], seed=seed, population=pop, observers=[Falls(block, i, rep)]).run()
    return block.arrays()


# ----------------------------------------------------------------------------- result

@dataclass
class ForecastResult:
    table: pd.DataFrame       # one row per household, in register order
    aggregate: pd.DataFrame   # year, by, group, metric, mean, q10, q50, q90
    replicates: pd.DataFrame  # rep, year, by, group, metric, value
    manifest: dict
    horizon: int
    extra: dict = field(default_factory=dict)

    @property
    def risk(self) -> pd.DataFrame:
        """The household table sorted by risk (highest first; ties by lower income now)."""
        return self.table.sort_values([f"p_within_{self.horizon}", "income_pc_now"], ascending=[False, True],
                                      kind="stable", ignore_index=True)

    def write(self, out) -> Path:
        """risk.csv, aggregate.csv and manifest.json, each written in full under a temporary name
        and then renamed, the manifest last (`results.commit_files`)."""
        risk, aggregate = self.risk, self.aggregate
        text = json.dumps(self.manifest, indent=1, ensure_ascii=False, default=str)
        return commit_files(Path(out), {"risk.csv": lambda tmp: risk.to_csv(tmp, index=False),
                                        "aggregate.csv": lambda tmp: aggregate.to_csv(tmp, index=False),
                                        "manifest.json": lambda tmp: tmp.write_text(text, encoding="utf-8")})


def run_part(scenarios: list, pop: Population, horizon: int, seeds: list[int], r: tuple[int, int]) -> dict:
    """Worker: replicates r[0] … r[1] − 1 as a part's arrays (no disk access)."""
    return part_arrays(_run_block(scenarios, pop, horizon, seeds[r[0]:r[1]], list(range(*r))))


def forecast(register, scenario, horizon: int, reps: int, seed: int = 0, n_jobs: int = 1,
             parameter_sets: list[dict] | None = None, out: str | Path | None = None,
             draws_file: str | None = None) -> ForecastResult:
    """Per-household probability of falling below the line within 1 … `horizon` years after the
    register's year, from `reps` replicates of `scenario` started on the register's households.

    `register`: a register folder or a `Population`; `scenario`: a name, file or `Scenario`.
    `parameter_sets`: optional list of parameter-override dicts, e.g. a calibration's draws
    (`draws.read_draws(draws_file)`); replicate r uses set r mod their number, so the risks
    carry parameter uncertainty as well as chance (none by default).

    With `out`, the forecast is resumable: each finished part (up to 10 replicates) is saved in
    `out/parts/` as it arrives, a rerun of the same forecast into the same folder reuses them,
    and the outputs are written with the manifest last (`ForecastResult.write`); the parts are
    removed once the outputs are in place. The numbers do not depend on `n_jobs` or on how
    many times the forecast was interrupted."""
    t0 = time.perf_counter()
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise InputError(f"reps must be a whole number at least 1, got {reps!r}", where="reps")
    sc = load_scenario(scenario)
    pop = load_register(register)
    first, last = check_years(sc, pop.year, horizon)
    horizon, reps = int(horizon), int(reps)
    base = sc.edit(years=(first, last))
    scenarios = scenarios_over(base, parameter_sets, draws_file) if parameter_sets else [base]
    seeds = replicate_seeds(seed, reps)
    ranges = part_ranges(reps)
    n = len(pop.households)
    key = hashlib.blake2b(json.dumps({"format": PART_FORMAT, "fupin_sim": package_version(),
                                      "register": population_hash(pop), "scenarios": [s.hash for s in scenarios],
                                      "horizon": horizon, "reps": reps, "seeds": seeds}, sort_keys=True).encode(),
                          digest_size=12).hexdigest()
    store = None if out is None else PartStore(Path(out) / "parts", key, n, horizon, len(DRIVERS))
    parts, stats = execute(partial(run_part, scenarios, pop, horizon, seeds), ranges, store=store, n_jobs=n_jobs,
                           batch_size=1)
    fell_within = sum(part["fell_within"] for part in parts)
    drivers = sum(part["drivers"] for part in parts)
    final_income = np.concatenate([part["final_income"] for part in parts])

    table = _household_table(pop, sc, horizon, reps, fell_within, drivers, final_income)
    decoded = [part_rows(part) for part in parts]
    replicates = pd.DataFrame({c: np.concatenate([d[c] for d in decoded]) for c in ROW_COLUMNS})
    for c in ("by", "group", "metric"):
        replicates[c] = replicates[c].astype(object)
    aggregate = _aggregate(replicates)
    man = {
        "fupin_sim": package_version(), "command": "forecast", "scenario": sc.name, "scenario_file": sc.file,
        "scenario_hash": base.hash, "register": pop.origin, "register_year": int(pop.year),
        "households": int(n), "years": [first, last], "horizon": horizon, "reps": int(reps),
        "seed": int(seed), "replicate_seeds": seeds, "n_jobs": n_jobs, "parameter_sets": parameter_sets or [],
        "parameter_draws_file": draws_file,
        "event": "alive and per-capita income net of out-of-pocket medical and schooling costs below the line",
        "tiers": {name: f">= {t}" for name, t in TIERS} | {"low": f"< {TIERS[-1][1]}"},
        "drivers": list(DRIVERS), "quantiles": QUANTILES, "forecast_key": key,
        "parts": {"count": len(ranges), "reused": stats["reused"], "ran": stats["ran"],
                  "redone_damaged": stats["redone_unreadable"]},
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }
    result = ForecastResult(table=table, aggregate=aggregate, replicates=replicates, manifest=man, horizon=horizon)
    if out is not None:
        result.write(out)
        store.clear(ranges)
    return result


def _household_table(pop, sc, horizon, reps, fell_within, drivers, final_income) -> pd.DataFrame:
    h = pop.households
    size = pop.sizes()
    total = sum(np.asarray(h[f"income_{s}"], dtype=np.float64) for s in S.INCOME_SOURCES)
    line_now = poverty_line(sc.params.at(pop.year))
    cols: dict = {
        "household_id": h["household_id"],
        "status": np.asarray(S.CATEGORIES["status"])[h["status"]],
        "outcome": pd.Series(np.asarray(h["status"], dtype=np.int64)).map(OUTCOME).to_numpy(),
        "region_type": np.asarray(S.CATEGORIES["region_type"])[h["region_type"]],
        "cause": np.asarray(S.CATEGORIES["cause"])[h["cause"]],
        "size": size,
        "weight": h["weight"],
        "income_pc_now": total / np.maximum(size, 1),
        "line_now": line_now,
    }
    for k in range(horizon):
        cols[f"p_within_{k + 1}"] = fell_within[k] / reps
    p = fell_within[-1] / reps
    cols["tier"] = tier_of(p)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(final_income, axis=0, dtype=np.float64)
        q10, q90 = nan_quantiles(final_income, (0.1, 0.9))
        cols["p_dissolved"] = np.isnan(final_income).mean(axis=0)
        cols["income_pc_final_mean"] = mean
        cols["income_pc_final_q10"] = q10
        cols["income_pc_final_q90"] = q90
        fell = fell_within[-1]
        shares = drivers / np.where(fell > 0, fell, np.nan)
    for d, name in enumerate(DRIVERS):
        cols[f"driver_{name}"] = shares[d]
    main = np.asarray(DRIVERS, dtype=object)[np.argmax(np.nan_to_num(shares, nan=-1.0), axis=0)]
    main[(fell == 0) | (np.nan_to_num(shares, nan=0.0).max(axis=0) == 0)] = ""
    cols["main_driver"] = main
    return pd.DataFrame(cols)


def nan_quantiles(values: np.ndarray, qs) -> list[np.ndarray]:
    """Quantiles along axis 0 ignoring NaN (linear interpolation, as `np.nanquantile`), vectorised:
    `np.nanquantile` loops over columns in Python."""
    s = np.sort(values, axis=0)  # NaN sort last
    valid = (~np.isnan(s)).sum(axis=0)
    cols = np.arange(s.shape[1])
    out = []
    for q in qs:
        pos = q * np.maximum(valid - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(valid - 1, 0))
        frac = pos - lo
        v = s[lo, cols].astype(np.float64) * (1 - frac) + s[hi, cols].astype(np.float64) * frac
        out.append(np.where(valid > 0, v, np.nan))
    return out


def _aggregate(replicates: pd.DataFrame) -> pd.DataFrame:
    keys = ["year", "by", "group", "metric"]
    grouped = replicates.groupby(keys, sort=False)["value"]
    out = grouped.mean().rename("mean").to_frame()
    for name, q in QUANTILES.items():
        out[name] = grouped.quantile(q)
    return out.reset_index()
