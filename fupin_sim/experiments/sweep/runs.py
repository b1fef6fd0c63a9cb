"""A sweep's runs: one task per (design point, replicate), run through the executor,
each run's record written to `runs/<run id>.json` as it finishes, then `results.csv` and
the manifest.

Output folder: `sweep.json` (the validated spec and its hash), `design.csv` (one row per
point), `runs/<run id>.json` (one small file per finished run, written atomically),
`results.csv` (one row per run: run id, point, replicate, seed, parameter values,
outputs) and `manifest.json` (renamed into place after results.csv: `files.commit_files`).
The spec is also a sensitivity analysis's (`sensitivity`), which runs on the same machinery.
Rerunning the same spec skips finished runs, redoes a run whose file is unreadable or does
not match, and refuses a folder holding another sweep.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from fupin_sim.experiments.executor import FileStore, claim, execute, require_dask
from fupin_sim.experiments.outputs import Output, reduce_outputs
from fupin_sim.experiments.seeds import run_seed
from fupin_sim.experiments.sweep.spec import SweepSpec, load_spec, plain
from fupin_sim.files import commit_files, write_csv_atomic
from fupin_sim.results import package_version
from fupin_sim.scenario import Scenario
from fupin_sim.simulation import Simulation

# --------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunTask:
    run_id: str
    point: int | str
    replicate: int
    seed: int
    overrides: dict


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 ** 2 if sys.platform == "darwin" else peak / 1024


def run_one(scenario: Scenario, outputs: tuple[Output, ...], task: RunTask) -> dict:
    """Worker: one run's record, its outputs and timings (no disk access, so it works on
    remote Dask workers too)."""
    t0 = time.perf_counter()
    try:
        sim = Simulation(scenario.edit(parameters=task.overrides, where="sweep"), seed=task.seed)  # checked at the
        t1 = time.perf_counter()                                                                  # spec's bounds
        # the yearly rows without building the run's manifest and ledger tables, which a
        # sweep does not keep (a test checks this equals simulate(...).summary)
        summary = sim.run()
        t2 = time.perf_counter()
        values = reduce_outputs(summary, outputs)
    except Exception as e:
        raise RuntimeError(f"run {task.run_id} (point {task.point}, replicate {task.replicate}, seed {task.seed}, "
                           f"parameters {task.overrides}) failed: {type(e).__name__}: {e}") from e
    t3 = time.perf_counter()
    return {"run_id": task.run_id, "point": task.point, "replicate": task.replicate, "seed": task.seed,
            "outputs": values, "seconds": {"setup": t1 - t0, "simulate": t2 - t1, "reduce": t3 - t2},
            "pid": os.getpid(), "peak_rss_mb": _peak_rss_mb()}


class RunStore(FileStore):
    """A sweep's finished runs, `runs/<run id>.json`: a file is reused only when it is this
    spec's run (run id, spec hash, point, replicate, seed) with every output a number."""

    def __init__(self, folder: Path, spec_hash: str, names: list[str]):
        super().__init__(folder)
        self.spec_hash, self.names = spec_hash, names

    def name(self, task: RunTask) -> str:
        return task.run_id

    def exists(self, task: RunTask) -> bool:
        return self.path(task).exists()

    def write(self, tmp: Path, task: RunTask, record: dict) -> None:
        tmp.write_text(json.dumps({**record, "spec_hash": self.spec_hash}, ensure_ascii=False, default=str),
                       encoding="utf-8")

    def read(self, path: Path, task: RunTask) -> dict | None:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # unreadable, cut short, not UTF-8
            return None
        if not isinstance(rec, dict):
            return None
        if (rec.get("run_id"), rec.get("spec_hash"), rec.get("point"), rec.get("replicate"), rec.get("seed")) != \
                (task.run_id, self.spec_hash, task.point, task.replicate, task.seed):
            return None
        out = rec.get("outputs")
        if not isinstance(out, dict) or sorted(out) != sorted(self.names):
            return None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in out.values()):
            return None
        return rec


def run_tasks(spec: SweepSpec, tasks: list[RunTask], out: Path, *, n_jobs: int = 1, scheduler=None,
              progress: bool | None = None, batch_size: int | None = None) -> tuple[dict[str, dict], dict]:
    """Every task's record by run id (reused from `out/runs/` or run now), and the counts."""
    store = RunStore(out / "runs", spec.hash, [o.name for o in spec.outputs])
    records, stats = execute(partial(run_one, spec.scenario, spec.outputs), tasks, store=store, n_jobs=n_jobs,
                             scheduler=scheduler, batch_size=batch_size, progress=progress, desc=spec.name)
    return {t.run_id: rec for t, rec in zip(tasks, records)}, stats


def claim_folder(out: Path, spec: SweepSpec) -> None:
    """Create `out` for this spec, or check it holds this very spec."""
    claim(out, "sweep.json", "spec_hash", spec.hash,
          {"kind": spec.kind, "spec_hash": spec.hash, "spec_file": spec.file, "name": spec.name,
           "spec": spec.normalized()}, "sweep",
          lambda held, old: f"holds a different {held.get('kind', 'sweep')} (spec hash {old}, from "
                            f"{held.get('spec_file') or 'a spec given in code'}); this spec's hash is "
                            f"{spec.hash}: use another output folder, or delete this one to start again")


def results_table(spec: SweepSpec, design: pd.DataFrame, tasks: list[RunTask], records: dict[str, dict]) -> pd.DataFrame:
    """One row per run, in (point, replicate) order: run id, point, replicate, seed,
    parameter values, outputs."""
    names = [o.name for o in spec.outputs]
    by_point = design.set_index("point")
    rows = []
    for t in tasks:
        rec = records[t.run_id]
        row = {"run_id": t.run_id, "point": t.point, "replicate": t.replicate, "seed": t.seed}
        row.update({p: plain(by_point.at[t.point, p]) for p in spec.parameter_names})
        row.update({n: rec["outputs"][n] for n in names})
        rows.append(row)
    return pd.DataFrame(rows, columns=["run_id", "point", "replicate", "seed", *spec.parameter_names, *names])


def _run_id(point: int, rep: int, n_points: int, reps: int) -> str:
    pw = max(6, len(str(n_points - 1)))
    rw = max(3, len(str(reps - 1)))
    return f"p{point:0{pw}d}_r{rep:0{rw}d}"


def sweep_tasks(spec: SweepSpec, design: pd.DataFrame) -> list[RunTask]:
    tasks = []
    n = len(design)
    for row in design.to_dict("records"):
        point = int(row["point"])
        overrides = spec.overrides(row)
        for rep in range(spec.replicates):
            tasks.append(RunTask(_run_id(point, rep, n, spec.replicates), point, rep,
                                 run_seed(spec.seed, point, rep, spec.common_random_numbers), overrides))
    return tasks


@dataclass
class SweepResult:
    results: pd.DataFrame
    design: pd.DataFrame
    out: Path
    manifest: dict


def run_sweep(spec: str | Path | dict | SweepSpec, out: str | Path, n_jobs: int = 1, *, scheduler=None,
              progress: bool | None = None, batch_size: int | None = None) -> SweepResult:
    """Run a sweep: validate the spec, claim `out`, run the design's runs not already on
    disk (in parallel with `n_jobs` processes, or on a Dask cluster with `scheduler`, an
    address or a `distributed.Client`), then write `results.csv` and `manifest.json`.

    The results do not depend on `n_jobs`, `scheduler`, `batch_size` or on the order runs
    finish in. Safe to interrupt: rerun the same call to finish the remaining runs.
    """
    spec = load_spec(spec, kind="sweep")
    if scheduler is not None:
        require_dask()
    out = Path(out)
    design = spec.design_table()
    tasks = sweep_tasks(spec, design)
    claim_folder(out, spec)
    write_csv_atomic(design, out / "design.csv")
    records, stats = run_tasks(spec, tasks, out, n_jobs=n_jobs, scheduler=scheduler, progress=progress,
                               batch_size=batch_size)
    results = results_table(spec, design, tasks, records)
    man = experiment_manifest(spec, stats, n_jobs=n_jobs, scheduler=scheduler, points=len(design))
    commit_files(out, {"results.csv": lambda tmp: results.to_csv(tmp, index=False),
                       "manifest.json": lambda tmp: tmp.write_text(json.dumps(man, ensure_ascii=False, default=str),
                                                                   encoding="utf-8")})
    return SweepResult(results=results, design=design, out=out, manifest=man)


def experiment_manifest(spec: SweepSpec, stats: dict, *, n_jobs: int, scheduler, **extra) -> dict:
    sc = spec.scenario
    return {"fupin_sim": package_version(), "kind": spec.kind, "name": spec.name, "spec_file": spec.file,
            "spec_hash": spec.hash, "scenario": sc.name, "scenario_file": sc.file, "scenario_hash": sc.hash,
            "years": list(sc.years), "households": sc.households, "seed": spec.seed,
            "common_random_numbers": spec.common_random_numbers, "design": spec.design,
            "replicates": spec.replicates, "outputs": [o.name for o in spec.outputs],
            "parameters": [p.spec() for p in spec.parameters], **extra,
            "execution": {"n_jobs": n_jobs, "backend": "dask" if scheduler is not None else
                          ("loky" if n_jobs != 1 else "sequential"), **stats},
            "scenario_parameters": sc.params.to_dict()}
