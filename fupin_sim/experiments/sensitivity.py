"""Global sensitivity: Sobol' first-order (S1) and total (ST) indices of chosen outputs
to the swept parameters, with bootstrap confidence intervals, and the stochastic noise
reported separately.

The spec is a sweep spec (see `fupin_sim.experiments.sweep.spec`) whose design is `sobol` with a power of
2 `samples` N, plus an optional `sensitivity:` block:

    sensitivity: {bootstrap: 999, confidence: 0.95, noise_points: 4, noise_replicates: 8}

Method (Saltelli et al. 2010, as `scipy.stats.sobol_indices`): a scrambled Sobol'
sample of 2d columns gives two N × d matrices A and B; AB_i is A with column i taken
from B. The model runs at the N (d + 2) points of A, B and every AB_i, on the sweep
machinery (parallel, streamed to disk, resumable). Indices come from
`scipy.stats.sobol_indices` given those outputs; intervals from a BCa bootstrap over the
N rows, seeded by the design seed so they are reproducible.

Noise and parameters are kept apart:

* **Indices with common random numbers.** Every design point runs with the same seed(s)
  (`replicates` R ≥ 1 per point, replicate r with seed r of an ensemble based on the spec
  seed; the indices use the mean over the R replicates). The model is then a fixed
  function of the parameters and the indices measure parameter effects, not draws.
* **Noise from independent seeds.** `noise_points` points of A each run
  `noise_replicates` times with different seeds (each seed also draws its own synthetic
  population); the mean within-point variance (divided by R) is the noise variance,
  reported next to the output's variance over the design as `noise_share`. A share well
  below 1 means the parameters, not the draws, make the outputs differ. A share near or
  above 1 means another seed moves the output as much as the parameters do over their
  ranges: the indices, computed with one seed at every point, still describe parameter
  effects for that seed (common random numbers cancel most of the noise between
  points), but check them against another seed — with `replicates` R ≥ 2,
  `S1_seed_sd` and `ST_seed_sd` give the spread of each index between the R seeds.

Output folder: as a sweep (`sweep.json`, `design.csv` with a `block` column: A, B,
AB:<parameter>; `runs/`, `results.csv` including the noise runs), plus
`sensitivity.csv` (output, parameter, S1, S1_low, S1_high, ST, ST_low, ST_high,
S1_seed_sd, ST_seed_sd, output_variance, noise_variance, noise_share), `noise.csv` (per noise point: mean, sd),
`sensitivity.png` and `manifest.json`.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fupin_sim.experiments.designs import unit_sample
from fupin_sim.experiments.executor import require_dask
from fupin_sim.experiments.seeds import run_seed
from fupin_sim.experiments.sweep.runs import RunTask, claim_folder, experiment_manifest, run_tasks
from fupin_sim.experiments.sweep.spec import SweepSpec, load_spec
from fupin_sim.files import commit_files, write_csv_atomic


def saltelli_design(spec: SweepSpec) -> pd.DataFrame:
    """Points of A, B and AB_i (one row each): point, block, row, parameter values."""
    d, n = len(spec.parameters), spec.samples
    unit = unit_sample("sobol", 2 * d, n, spec.design_seed)
    a, b = unit[:, :d], unit[:, d:]
    blocks = [("A", a), ("B", b)]
    for i, p in enumerate(spec.parameters):
        ab = a.copy()
        ab[:, i] = b[:, i]
        blocks.append((f"AB:{p.path}", ab))
    frames = []
    for name, u in blocks:
        cols = {p.path: p.from_unit(u[:, j]) for j, p in enumerate(spec.parameters)}
        frames.append(pd.DataFrame({"block": name, "row": np.arange(n), **cols}))
    design = pd.concat(frames, ignore_index=True)
    design.insert(0, "point", np.arange(len(design)))
    return design


def _tasks(spec: SweepSpec, design: pd.DataFrame) -> tuple[list[RunTask], list[RunTask]]:
    width = max(6, len(str(len(design) - 1)))
    main, noise = [], []
    for row in design.to_dict("records"):
        point = int(row["point"])
        ov = spec.overrides(row)
        for r in range(spec.replicates):
            main.append(RunTask(f"p{point:0{width}d}_r{r:03d}", point, r,
                                run_seed(spec.seed, point, r, spec.common_random_numbers), ov))
    for k in range(spec.sensitivity["noise_points"]):
        ov = spec.overrides(design.iloc[k].to_dict())
        for r in range(spec.sensitivity["noise_replicates"]):
            noise.append(RunTask(f"n{k:04d}_r{r:03d}", k, r, run_seed(spec.seed, f"noise{k}", r), ov))
    return main, noise


def saltelli_indices(f_a: np.ndarray, f_b: np.ndarray, f_ab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """S1 and ST of one output (Saltelli 2010 / Jansen, as `scipy.stats.sobol_indices`):
    f_a, f_b of shape (n,), f_ab of shape (d, n)."""
    mean = np.mean([f_a, f_b])
    f_a, f_b, f_ab = f_a - mean, f_b - mean, f_ab - mean
    var = np.var([f_a, f_b])
    if not var > 0:
        return np.zeros(len(f_ab)), np.zeros(len(f_ab))
    s1 = np.mean(f_b * (f_ab - f_a), axis=-1) / var
    st = 0.5 * np.mean((f_a - f_ab) ** 2, axis=-1) / var
    return s1, st


def _bootstrap(f_a, f_b, f_ab, n_resamples: int, level: float, seed: int) -> np.ndarray:
    """(2d, 2) array of [low, high] for S1 then ST: BCa where defined, else percentile."""
    from scipy import stats

    d = len(f_ab)
    if n_resamples == 0:
        return np.full((2 * d, 2), np.nan)

    def statistic(idx):
        idx = idx.astype(int)
        return np.concatenate(saltelli_indices(f_a[idx], f_b[idx], f_ab[:, idx]))

    data = (np.arange(len(f_a), dtype=float),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(data, statistic, n_resamples=n_resamples, confidence_level=level, method="BCa",
                              vectorized=False, **_rng_kw(stats.bootstrap, seed))
    ci = np.column_stack([res.confidence_interval.low, res.confidence_interval.high])
    bad = ~np.isfinite(ci).all(axis=1)
    if bad.any():
        dist = res.bootstrap_distribution  # (2d, n_resamples)
        alpha = (1 - level) / 2
        pct = np.column_stack([np.nanquantile(dist, alpha, axis=-1), np.nanquantile(dist, 1 - alpha, axis=-1)])
        ci[bad] = pct[bad]
    return ci


def _seed_spread(design_runs: pd.DataFrame, name: str, blocks: pd.Series, params: list[str]) -> np.ndarray:
    """Standard deviation of S1 and ST (2d values) between the replicate seeds, each
    replicate's indices computed from its own runs; NaN with one replicate."""
    reps = sorted(design_runs["replicate"].unique())
    if len(reps) < 2:
        return np.full(2 * len(params), np.nan)
    per = []
    for r in reps:
        f = design_runs[design_runs["replicate"] == r].set_index("point")[name]
        f_a = f[blocks[blocks == "A"].index].to_numpy(float)
        f_b = f[blocks[blocks == "B"].index].to_numpy(float)
        f_ab = np.stack([f[blocks[blocks == f"AB:{p}"].index].to_numpy(float) for p in params])
        per.append(np.concatenate(saltelli_indices(f_a, f_b, f_ab)))
    return np.std(per, axis=0, ddof=1)


def _rng_kw(func, seed: int) -> dict:
    import inspect

    name = "rng" if "rng" in inspect.signature(func).parameters else "random_state"
    return {name: np.random.default_rng(seed)}


@dataclass
class SensitivityResult:
    indices: pd.DataFrame
    noise: pd.DataFrame
    results: pd.DataFrame
    design: pd.DataFrame
    out: Path
    manifest: dict


def sensitivity(spec, out: str | Path, n_jobs: int = 1, *, scheduler=None, progress: bool | None = None,
                batch_size: int | None = None) -> SensitivityResult:
    """Sobol' indices of the spec's outputs to its parameters (see the module docstring).

    Validates the spec, claims `out` (resumable like a sweep: rerun to finish), runs the
    N (d + 2) × replicates design runs and the noise runs, then writes the tables and the
    figure. Results do not depend on `n_jobs` or `scheduler`.
    """
    from scipy.stats import sobol_indices

    spec = load_spec(spec, kind="sensitivity")
    if scheduler is not None:
        require_dask()
    out = Path(out)
    design = saltelli_design(spec)
    main, noise = _tasks(spec, design)
    claim_folder(out, spec)
    write_csv_atomic(design, out / "design.csv")
    records, stats = run_tasks(spec, main + noise, out, n_jobs=n_jobs, scheduler=scheduler, progress=progress,
                               batch_size=batch_size)
    names = [o.name for o in spec.outputs]
    params = spec.parameter_names
    by_point = design.set_index("point")
    rows = []
    for kind, tasks in (("design", main), ("noise", noise)):
        for t in tasks:
            row = {"run_id": t.run_id, "kind": kind, "point": t.point, "block": by_point.at[t.point, "block"],
                   "row": int(by_point.at[t.point, "row"]), "replicate": t.replicate, "seed": t.seed}
            row.update({p: by_point.at[t.point, p] for p in params})
            row.update(records[t.run_id]["outputs"])
            rows.append(row)
    results = pd.DataFrame(rows)

    n, d = spec.samples, len(params)
    level, n_boot = spec.sensitivity["confidence"], spec.sensitivity["bootstrap"]
    point_means = results[results["kind"] == "design"].groupby("point")[names].mean()
    blocks = design.set_index("point")["block"]
    index_rows, noise_rows = [], []
    for j, name in enumerate(names):
        f = point_means[name]
        f_a = f[blocks[blocks == "A"].index].to_numpy(float)
        f_b = f[blocks[blocks == "B"].index].to_numpy(float)
        f_ab = np.stack([f[blocks[blocks == f"AB:{p}"].index].to_numpy(float) for p in params])
        res = sobol_indices(func={"f_A": f_a[None, :], "f_B": f_b[None, :], "f_AB": f_ab[:, None, :]}, n=n)
        s1, st = np.ravel(res.first_order), np.ravel(res.total_order)
        ci = _bootstrap(f_a, f_b, f_ab, n_boot, level, spec.design_seed + j)
        out_var = float(np.var(np.concatenate([f_a, f_b])))
        nz = results[results["kind"] == "noise"]
        if len(nz):
            per_point = nz.groupby("point")[name].agg(["mean", "std", "count"])
            noise_var = float((per_point["std"] ** 2).mean()) / spec.replicates
            for point, r in per_point.iterrows():
                noise_rows.append({"output": name, "point": int(point), "mean": r["mean"], "sd": r["std"],
                                   "replicates": int(r["count"])})
        else:
            noise_var = np.nan
        share = noise_var / out_var if out_var > 0 else np.nan
        seed_sd = _seed_spread(results[results["kind"] == "design"], name, blocks, params)
        for i, p in enumerate(params):
            index_rows.append({"output": name, "parameter": p, "S1": s1[i], "S1_low": ci[i, 0], "S1_high": ci[i, 1],
                               "ST": st[i], "ST_low": ci[d + i, 0], "ST_high": ci[d + i, 1],
                               "S1_seed_sd": seed_sd[i], "ST_seed_sd": seed_sd[d + i],
                               "output_variance": out_var, "noise_variance": noise_var, "noise_share": share})
    indices = pd.DataFrame(index_rows)
    noise_table = pd.DataFrame(noise_rows, columns=["output", "point", "mean", "sd", "replicates"])
    man = experiment_manifest(spec, stats, n_jobs=n_jobs, scheduler=scheduler, samples=n,
                              design_points=len(design), method="Saltelli 2010 via scipy.stats.sobol_indices",
                              bootstrap={"resamples": n_boot, "confidence": level, "method": "BCa"},
                              noise={"points": spec.sensitivity["noise_points"],
                                     "replicates": spec.sensitivity["noise_replicates"],
                                     "seeds": "independent per run; design runs share seeds (common random numbers)"
                                     if spec.common_random_numbers else "independent per run"})
    # every table in full first, the manifest last (see commit_files)
    commit_files(out, {"results.csv": lambda tmp: results.to_csv(tmp, index=False),
                       "sensitivity.csv": lambda tmp: indices.to_csv(tmp, index=False),
                       "noise.csv": lambda tmp: noise_table.to_csv(tmp, index=False),
                       "manifest.json": lambda tmp: tmp.write_text(json.dumps(man, ensure_ascii=False, default=str),
                                                                   encoding="utf-8")})
    return SensitivityResult(indices=indices, noise=noise_table, results=results, design=design, out=out, manifest=man)
