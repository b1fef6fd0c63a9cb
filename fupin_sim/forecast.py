"""Relapse-risk forecasts (返贫 / 新致贫 监测): from a register snapshot, the probability that
each household falls below the poverty line within 1, 2, … h years, its risk tier, its main
risk drivers, and aggregate counts with intervals across replicates.

    from fupin_sim.forecast import forecast
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

Resume: replicates run in parts of up to 10 (`part_ranges`, which depend on `reps` only).
With an output folder (`fupin-sim forecast ... --out DIR`, or `forecast(..., out=DIR)`),
each finished part is saved atomically as `DIR/parts/part_<start>_<stop>.npz`, keyed by
the register's content, the scenario, the horizon and the seeds; a rerun reuses the parts
that carry its key and are complete, and redoes any other. The outputs are written with the
manifest last, then the parts are deleted. A forecast assembled from saved parts is
byte-identical to one computed in one go (tests/test_faults.py).
"""
from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fupin_sim import status
from fupin_sim.abc import scenarios_over
from fupin_sim.errors import InputError
from fupin_sim.population import Population
from fupin_sim.population import schema as S
from fupin_sim.population.rules import poverty_line
from fupin_sim.rng import RandomStreams
from fupin_sim.scenario import load_scenario
from fupin_sim.simulation import Observer, Simulation

TIERS = (("high", 0.5), ("medium", 0.2))  # at or above the threshold; "low" below the last
TRANSFERS_FELL, EARNINGS_FELL = 0.9, 0.7  # drivers: under these shares of the register's incomes
DRIVERS = ("illness_costs", "schooling_costs", "transfers_fell", "earnings_fell", "drought", "debt")
QUANTILES = {"q10": 0.10, "q50": 0.50, "q90": 0.90}
OUTCOME = {S.EXITED: "relapse", S.NONPOOR: "new_poverty", S.POOR: "still_poor"}


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
    from fupin_sim.population.register import read_register

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
    from fupin_sim.processes.income import covariate_loss

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
        b, h = self.block, sim.state.h
        k = year - sim.scenario.years[0]
        p = sim.params.at(year)
        line = poverty_line(p)
        y = status.test_income(sim.state, p)
        below = status.below_line(sim.state, p, y)
        new = below & (self.first_fall < 0)
        self.first_fall[new] = k
        fallen = self.first_fall >= 0
        b.fell_within[k] += fallen
        if new.any():
            rows_new = np.flatnonzero(new)
            size = np.maximum(h["size"][rows_new], 1)
            deduct = p["exit.deduct_expenditure"]
            y_new = y[rows_new]
            present = (
                y_new + deduct * h["oop"][rows_new] / size >= line,
                y_new + deduct * h["school_cost"][rows_new] / size >= line,
                h["income_transfer"][rows_new] < TRANSFERS_FELL * b.transfer0[rows_new],
                (h["income_wage"] + h["income_operating"] + h["income_property"])[rows_new]
                < EARNINGS_FELL * b.earnings0[rows_new],
                _drought(sim, p, year)[rows_new],
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
        from fupin_sim.files import commit_files

        risk, aggregate = self.risk, self.aggregate
        text = json.dumps(self.manifest, indent=1, ensure_ascii=False, default=str)
        return commit_files(Path(out), {"risk.csv": lambda tmp: risk.to_csv(tmp, index=False),
                                        "aggregate.csv": lambda tmp: aggregate.to_csv(tmp, index=False),
                                        "manifest.json": lambda tmp: tmp.write_text(text, encoding="utf-8")})


# ----------------------------------------------------------------------------- parts (resume)

PART_FORMAT = 1
ROW_COLUMNS = ("rep", "year", "by", "group", "metric", "value")
TEXT_COLUMNS = ("by", "group", "metric")


def part_ranges(reps: int) -> list[tuple[int, int]]:
    """Replicates [start, stop) of each part. Parts are the unit of parallel work and of resume;
    they depend on `reps` only (not on `n_jobs`), so a forecast resumed with other settings
    reuses them: up to 10 replicates each, at least 8 parts when there are 8 replicates."""
    size = max(1, min(10, -(-reps // 8)))
    return [(a, min(a + size, reps)) for a in range(0, reps, size)]


def population_hash(pop: Population) -> str:
    """A digest of a register's content (year, every column's name, type and values), so a
    forecast's saved parts are reused only for the very same households and persons."""
    import hashlib

    h = hashlib.blake2b(digest_size=12)
    h.update(f"{int(pop.year)}|{pop.origin == 'synthetic'}".encode())
    for label, table in (("households", pop.households), ("persons", pop.persons)):
        for name in sorted(table.names()):
            a = np.ascontiguousarray(table[name])
            h.update(f"|{label}.{name}:{a.dtype.str}:{a.shape}|".encode())
            h.update(a.tobytes() if a.dtype.kind != "O" else json.dumps(a.tolist(), default=str).encode())
    return h.hexdigest()


def _part_arrays(block: dict) -> dict[str, np.ndarray]:
    """A part as plain typed arrays: the form saved to disk and the form used in memory, so a
    forecast assembled from saved parts is byte-identical to one computed in one go. The
    text columns of the aggregate rows are codes into `vocabulary` (compact on disk)."""
    rows = block["rows"]
    cols = dict(zip(ROW_COLUMNS, zip(*rows))) if rows else {c: () for c in ROW_COLUMNS}
    vocabulary = np.asarray(sorted({v for c in TEXT_COLUMNS for v in cols[c]}), dtype=str)
    arrays = {"row_rep": np.asarray(cols["rep"], np.int64), "row_year": np.asarray(cols["year"], np.int64),
              "row_value": np.asarray(cols["value"], np.float64), "vocabulary": vocabulary}
    for c in TEXT_COLUMNS:
        arrays[f"row_{c}"] = np.searchsorted(vocabulary, np.asarray(cols[c], dtype=str)).astype(np.int32)
    return {"fell_within": np.asarray(block["fell_within"], np.int32),
            "drivers": np.asarray(block["drivers"], np.int32),
            "final_income": np.asarray(block["final_income"], np.float32), **arrays}


def _part_rows(part: dict) -> dict[str, np.ndarray]:
    """The aggregate rows of a part, text columns decoded."""
    out = {c: part[f"row_{c}"] for c in ROW_COLUMNS}
    for c in TEXT_COLUMNS:
        out[c] = part["vocabulary"][part[f"row_{c}"]]
    return out


def _run_part(scenarios, pop, horizon, seeds, start, stop):
    """Worker: replicates start … stop - 1 (no disk access)."""
    block = _run_block(scenarios, pop, horizon, seeds, list(range(start, stop)))
    return (start, stop), _part_arrays(block)


class PartStore:
    """The finished parts of one forecast in `out/parts/`, one `.npz` file each, written
    atomically and reused only when they carry this forecast's key and have the expected
    shapes and types (anything else, a file cut short included, is redone)."""

    def __init__(self, folder: Path, key: str, households: int, horizon: int):
        self.folder, self.key, self.n, self.horizon = folder, key, households, horizon

    def path(self, r: tuple[int, int]) -> Path:
        return self.folder / f"part_{r[0]:07d}_{r[1]:07d}.npz"

    def meta(self, r: tuple[int, int]) -> str:
        return json.dumps({"format": PART_FORMAT, "key": self.key, "start": r[0], "stop": r[1]}, sort_keys=True)

    def save(self, r: tuple[int, int], arrays: dict) -> None:
        from fupin_sim.files import write_atomic

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, meta=np.array(self.meta(r)), **arrays)

        write_atomic(self.path(r), write)

    def load(self, r: tuple[int, int]) -> dict | None:
        path = self.path(r)
        if path.is_symlink() or not path.is_file():
            return None
        k = r[1] - r[0]
        expect = {"fell_within": ((self.horizon, self.n), "i"), "drivers": ((len(DRIVERS), self.n), "i"),
                  "final_income": ((k, self.n), "f")}
        try:
            with np.load(path, allow_pickle=False) as z:
                if set(z.files) != {"meta", "vocabulary", *expect, *(f"row_{c}" for c in ROW_COLUMNS)}:
                    return None
                if str(z["meta"]) != self.meta(r):
                    return None
                arrays = {name: z[name] for name in z.files if name != "meta"}
        except Exception:  # noqa: BLE001 - a damaged file of any kind (bad zip, CRC, truncated) is redone
            return None
        for name, (shape, kind) in expect.items():
            if arrays[name].shape != shape or arrays[name].dtype.kind != kind:
                return None
        lengths = {len(arrays[f"row_{c}"]) for c in ROW_COLUMNS}
        rep, vocabulary = arrays["row_rep"], arrays["vocabulary"]
        if len(lengths) != 1 or rep.dtype.kind != "i" or not np.array_equal(np.unique(rep), np.arange(*r)):
            return None
        if vocabulary.dtype.kind != "U" or vocabulary.ndim != 1:
            return None
        for c in TEXT_COLUMNS:
            codes = arrays[f"row_{c}"]
            if codes.dtype.kind != "i" or (len(codes) and (codes.min() < 0 or codes.max() >= len(vocabulary))):
                return None
        return arrays

    def clear(self, ranges) -> None:
        """Remove this forecast's parts once its outputs are written (the folder too if then empty)."""
        for r in ranges:
            self.path(r).unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:  # other files in it
            pass


def _dispatch_parts(scenarios, pop, horizon, seeds, todo, n_jobs):
    """Finished parts as they arrive: in this process, or through joblib (loky)."""
    if n_jobs == 1 or len(todo) == 1:
        for a, b in todo:
            yield _run_part(scenarios, pop, horizon, seeds[a:b], a, b)
        return
    from joblib import Parallel, delayed

    calls = (delayed(_run_part)(scenarios, pop, horizon, seeds[a:b], a, b) for a, b in todo)
    yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(calls)


def forecast(register, scenario, horizon: int, reps: int, seed: int = 0, n_jobs: int = 1,
             parameter_sets: list[dict] | None = None, out: str | Path | None = None,
             draws_file: str | None = None) -> ForecastResult:
    """Per-household probability of falling below the line within 1 … `horizon` years after the
    register's year, from `reps` replicates of `scenario` started on the register's households.

    `register`: a register folder or a `Population`; `scenario`: a name, file or `Scenario`.
    `parameter_sets`: optional list of parameter-override dicts, e.g. a calibration's draws
    (`abc.read_draws(draws_file)`); replicate r uses set r mod their number, so the risks
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
    streams = RandomStreams(seed)
    seeds = [streams.replicate_seed(r) for r in range(reps)]
    ranges = part_ranges(reps)
    n = len(pop.households)
    import hashlib

    key = hashlib.blake2b(json.dumps({"format": PART_FORMAT, "fupin_sim": _version(), "register": population_hash(pop),
                                      "scenarios": [s.hash for s in scenarios], "horizon": horizon, "reps": reps,
                                      "seeds": seeds}, sort_keys=True).encode(), digest_size=12).hexdigest()
    done: dict[tuple[int, int], dict] = {}
    store, damaged = None, 0
    if out is not None:
        from fupin_sim.files import output_dir, remove_temporaries

        store = PartStore(output_dir(Path(out), "parts"), key, n, horizon)
        remove_temporaries(store.folder)  # parts a kill cut short while being written
        for r in ranges:
            arrays = store.load(r)
            if arrays is not None:
                done[r] = arrays
            elif os.path.lexists(store.path(r)):
                damaged += 1
    reused = len(done)
    todo = [r for r in ranges if r not in done]
    for r, arrays in _dispatch_parts(scenarios, pop, horizon, seeds, todo, n_jobs):
        if store is not None:
            store.save(r, arrays)
        done[r] = arrays
    parts = [done[r] for r in ranges]
    fell_within = sum(part["fell_within"] for part in parts)
    drivers = sum(part["drivers"] for part in parts)
    final_income = np.concatenate([part["final_income"] for part in parts])

    table = _household_table(pop, sc, horizon, reps, fell_within, drivers, final_income)
    decoded = [_part_rows(part) for part in parts]
    replicates = pd.DataFrame({c: np.concatenate([d[c] for d in decoded]) for c in ROW_COLUMNS})
    for c in ("by", "group", "metric"):
        replicates[c] = replicates[c].astype(object)
    aggregate = _aggregate(replicates)
    man = {
        "fupin_sim": _version(), "command": "forecast", "scenario": sc.name, "scenario_file": sc.file,
        "scenario_hash": base.hash, "register": pop.origin, "register_year": int(pop.year),
        "households": int(n), "years": [first, last], "horizon": horizon, "reps": int(reps),
        "seed": int(seed), "replicate_seeds": seeds, "n_jobs": n_jobs, "parameter_sets": parameter_sets or [],
        "parameter_draws_file": draws_file,
        "event": "alive and per-capita income net of out-of-pocket medical and schooling costs below the line",
        "tiers": {name: f">= {t}" for name, t in TIERS} | {"low": f"< {TIERS[-1][1]}"},
        "drivers": list(DRIVERS), "quantiles": QUANTILES, "forecast_key": key,
        "parts": {"count": len(ranges), "reused": reused, "ran": len(todo), "redone_damaged": damaged},
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }
    result = ForecastResult(table=table, aggregate=aggregate, replicates=replicates, manifest=man, horizon=horizon)
    if out is not None:
        result.write(out)
        store.clear(ranges)
    return result


def _version() -> str:
    from fupin_sim import __version__

    return __version__


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


# ----------------------------------------------------------------------------- command line

def _whole(low: int):
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def _n_jobs(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError("must be a positive number of processes, or -1 for all cores")
    return value


def add_cli(subparsers) -> None:
    """Register the `forecast` and `backtest` subcommands."""
    fc = subparsers.add_parser("forecast", help="per-household risk of falling below the line within h years")
    fc.add_argument("register", help="register folder (households.csv, persons.csv, register.json)")
    fc.add_argument("--scenario", default="consolidation",
                    help="scenario of the forecast years (default: consolidation)")
    fc.add_argument("--horizon", type=int, default=3, help="years ahead (default 3)")
    fc.add_argument("--reps", type=_whole(1), default=200, help="replicates (default 200)")
    fc.add_argument("--seed", type=_whole(0), default=0, help="base seed of the replicates (default 0)")
    fc.add_argument("--n-jobs", type=_n_jobs, default=1, help="processes (-1: all cores); results do not depend on it")
    fc.add_argument("--draws", help="a calibration folder (or its draws.csv): replicate r runs with parameter "
                                    "draw r mod their number, so the risks carry parameter uncertainty")
    fc.add_argument("--out", required=True, help="output folder")

    bt = subparsers.add_parser("backtest", help="score the forecast on a simulated world against monitoring rules")
    bt.add_argument("--scenario", default="consolidation", help="scenario of the world and the forecast")
    bt.add_argument("--households", type=_whole(1), default=5000, help="households in the world (default 5000)")
    bt.add_argument("--year", type=int, default=2020, help="register year t: forecast t+1 … t+h (default 2020)")
    bt.add_argument("--horizon", type=int, default=3, help="years ahead (default 3)")
    bt.add_argument("--reps", type=_whole(1), default=100, help="forecast replicates (default 100)")
    bt.add_argument("--seed", type=_whole(0), default=0, help="the world's seed (default 0)")
    bt.add_argument("--n-jobs", type=_n_jobs, default=1, help="processes (-1: all cores)")
    bt.add_argument("--out", required=True, help="output folder")


def cmd_forecast(args) -> int:
    from fupin_sim.abc import read_draws

    sets = read_draws(args.draws) if args.draws else None
    res = forecast(args.register, args.scenario, horizon=args.horizon, reps=args.reps, seed=args.seed,
                   n_jobs=args.n_jobs, parameter_sets=sets, draws_file=args.draws, out=args.out)
    out = Path(args.out)
    t = res.table
    h = res.horizon
    w = t["weight"].to_numpy()
    tiers = t["tier"].value_counts()
    print(f"{res.manifest['scenario']} {res.manifest['years'][0]}-{res.manifest['years'][1]} from the register of "
          f"{res.manifest['register_year']} ({len(t):,} households), {res.manifest['reps']} replicates: expected "
          f"{float((t[f'p_within_{h}'] * w).sum()):,.0f} households (weighted) below the line within {h} year(s); "
          f"tiers high {tiers.get('high', 0):,}, medium {tiers.get('medium', 0):,}, low {tiers.get('low', 0):,}; "
          f"written to {out}")
    parts = res.manifest["parts"]
    if parts["reused"] or parts["redone_damaged"]:
        print(f"resumed: {parts['reused']} of {parts['count']} parts of replicates were already done"
              + (f", {parts['redone_damaged']} damaged part file(s) redone" if parts["redone_damaged"] else ""))
    return 0


def cmd_backtest(args) -> int:
    from fupin_sim.backtest import backtest

    res = backtest(args.scenario, households=args.households, t=args.year, horizon=args.horizon, reps=args.reps,
                   seed=args.seed, n_jobs=args.n_jobs)
    out = res.write(args.out)
    print(res.headline())
    print(f"written to {out}")
    return 0
