"""Killing real commands at seeded random moments and checking what they leave behind.

Shared by tests/test_faults.py (a few kill points per command, in CI) and scripts/soak.py
(many more, by hand). Each `Job` is one real command line (`python -m fupin_sim.cli ...`)
with a clean reference output made in-process; `kill_and_resume` starts the command,
SIGKILLs it (and its worker processes) at a seeded random moment, checks the folder it
left, reruns, ... and finally lets it finish and compares with the clean output.

What is checked after every kill:
  * no file under a real output name is partial: every run file, trial-log line (except a
    last line without its newline), forecast part and final table is complete and equal to
    the clean run's;
  * nothing finished is lost: every unit (run, trial, part) finished before a restart is
    still there and is reused, not redone;
  * nothing is duplicated: run ids, trial keys and parts are unique;
and at the end: the final tables are byte-equal to the clean run's.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "fupin_sim.cli", *map(str, args)]


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e["MPLBACKEND"] = "Agg"
    return e


def start(argv: list[str], log: Path) -> subprocess.Popen:
    """The command in its own session (so its worker processes can be killed with it)."""
    with open(log, "wb") as f:
        return subprocess.Popen(argv, cwd=ROOT, env=env(), stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def kill_at(proc: subprocess.Popen, moved, delay: float, timeout: float = 300.0) -> str:
    """Wait until `moved()` is true (None: from the start), then `delay` seconds more, then
    SIGKILL the command and its workers. 'killed', or 'finished' when it ended first."""
    t0 = time.monotonic()
    if moved is not None:
        while not moved() and proc.poll() is None:
            if time.monotonic() - t0 > timeout:
                kill_group(proc)
                raise AssertionError("the command made no progress")
            time.sleep(0.002)
    deadline = time.monotonic() + delay
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    if proc.poll() is not None:
        return "finished"
    kill_group(proc)
    return "killed"


def count_units(job_name: str, out: Path) -> int:
    """Finished units so far, cheaply (polled every few milliseconds): run files, trial-log
    lines, forecast parts."""
    try:
        if job_name == "sweep":
            return sum(1 for n in os.listdir(out / "runs") if n.endswith(".json") and not n.startswith("."))
        if job_name == "calibrate":
            return (out / "trials.jsonl").read_bytes().count(b"\n")
        return sum(1 for n in os.listdir(out / "parts") if n.endswith(".npz") and not n.startswith("."))
    except FileNotFoundError:
        return 0


@dataclass
class Job:
    """A command to kill, its clean output folder and what counts as a unit."""
    name: str
    argv: list[str]                  # without --out
    clean: Path                      # an uninterrupted run's output folder
    work_seconds: float              # how long the work took uninterrupted (kill delays span it)
    tables: tuple[str, ...]          # outputs that must be byte-equal to the clean run's
    extra: dict = field(default_factory=dict)

    # units(out) -> {unit id: content}; check(out) raises on a partial or wrong file
    def units(self, out: Path) -> dict:
        return UNITS[self.name](self, out)

    def final(self, out: Path) -> dict:
        return json.loads((out / MARKER[self.name]).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------
# What each command leaves: its finished units, each checked against the clean run
# --------------------------------------------------------------------------------------

def _sweep_units(job: Job, out: Path) -> dict:
    clean = job.extra["runs"]  # run_id -> outputs
    units = {}
    runs = out / "runs"
    for path in sorted(runs.glob("*.json")) if runs.is_dir() else []:
        rec = json.loads(path.read_text(encoding="utf-8"))  # a partial file under a real name fails here
        assert rec["run_id"] == path.stem, path
        assert rec["outputs"] == clean[rec["run_id"]], f"{path}: differs from the uninterrupted run"
        units[rec["run_id"]] = rec["outputs"]
    return units


def _calibrate_units(job: Job, out: Path) -> dict:
    clean = job.extra["trials"]  # key -> replicates
    log = out / "trials.jsonl"
    if not log.exists():
        return {}
    data = log.read_bytes()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]  # tail: b"" or a line a kill cut short
    units = {}
    for line in complete:
        rec = json.loads(line)  # every complete line is a whole record
        assert rec["key"] not in units, f"trial {rec['key']} duplicated in {log}"
        assert rec["replicates"] == clean[rec["key"]], f"trial {rec['key']} differs from the uninterrupted run"
        units[rec["key"]] = rec["replicates"]
    if tail:
        try:
            json.loads(tail)
        except ValueError:
            pass
        else:
            raise AssertionError(f"{log}: last line is a complete record without its newline")
    return units


def _forecast_units(job: Job, out: Path) -> dict:
    from fupin_sim.experiments.forecast import DRIVERS
    from fupin_sim.experiments.forecast_parts import PartStore

    clean = job.extra["parts"]  # file name -> arrays
    folder = out / "parts"
    units = {}
    for path in sorted(folder.glob("part_*.npz")) if folder.is_dir() else []:
        a, b = (int(x) for x in path.stem.split("_")[1:])
        store = PartStore(folder, job.extra["key"], job.extra["households"], job.extra["horizon"], len(DRIVERS))
        arrays = store.load((a, b))
        assert arrays is not None, f"{path} is under a real name but not a complete part"
        for k, v in clean[path.name].items():
            assert np.array_equal(arrays[k], v, equal_nan=v.dtype.kind == "f"), \
                f"{path}: {k} differs from the uninterrupted run"
        units[path.name] = True
    return units


UNITS = {"sweep": _sweep_units, "calibrate": _calibrate_units, "forecast": _forecast_units}
MARKER = {"sweep": "manifest.json", "calibrate": "result.json", "forecast": "manifest.json"}


def check_outputs(job: Job, out: Path) -> bool:
    """A folder with its marker holds complete outputs equal to the clean run's; without it,
    any final table present is either absent or (an earlier complete result) equal. True
    when the marker is there."""
    for name in job.tables:
        path = out / name
        if path.exists():
            assert same_output(path, job.clean / name), f"{path}: differs from the clean run"
    if (out / MARKER[job.name]).exists():
        missing = [n for n in job.tables if not (out / n).exists()]
        assert not missing, f"{out}: {MARKER[job.name]} present but {missing} missing"
        return True
    return False


def same_output(path: Path, clean: Path) -> bool:
    """Byte-equal, except that fitted.yaml names its own folder (in its comment, and in
    `extends:` for a scenario file), so the clean run's folder is put in its place first."""
    data = path.read_bytes()
    if path.name == "fitted.yaml":
        data = data.replace(str(path.parent).encode(), str(clean.parent).encode())
    return data == clean.read_bytes()


def reused(job: Job, final: dict) -> tuple[int, int]:
    """(units reused, units computed) by the last, uninterrupted rerun, from its manifest."""
    if job.name == "sweep":
        return final["execution"]["reused"], final["execution"]["ran"]
    if job.name == "calibrate":
        return final["execution"]["log_entries_at_start"], final["execution"]["evaluated"]
    return final["parts"]["reused"], final["parts"]["ran"]


def kill_and_resume(job: Job, out: Path, rng: np.random.Generator, kills: int, early: int = 1,
                    logs: Path | None = None) -> dict:
    """Start the job, kill it at a seeded random moment, check, restart ... `kills` times, then
    run it to the end and compare with the clean run. The last `early` kills are timed from
    the process start (they may land in start-up, validation, the claim of the folder or the
    reading of what an earlier run left); the others come after a random number k of units
    this process adds, a random part of a unit's time later (inside the next unit, its write,
    or with k = all the outputs' writing), so they land inside the work however fast the
    machine is. Returns counts."""
    logs = logs or out.parent
    stats = {"killed": 0, "finished_before_kill": 0, "units_seen": 0, "units_after_each_kill": []}
    before: dict = {}
    total = job.extra["units"]
    per_unit = job.work_seconds / total
    for i in range(kills):
        proc = start(job.argv + ["--out", str(out)], logs / f"{job.name}-{i}.log")
        left = total - len(before)
        if i >= kills - early:  # anywhere from the start: imports, validation, the claim, reading old state
            what = kill_at(proc, None, float(rng.uniform(0.0, 2.0 + per_unit * left)))
        else:  # after the k-th unit this process adds, within the next unit's time (k = left: the outputs)
            k = int(rng.integers(1, left + 1)) if left else 0
            delay = float(rng.uniform(0.0, per_unit)) if k < left else float(rng.uniform(0.0, 0.5))
            what = kill_at(proc, lambda k=k: count_units(job.name, out) >= len(before) + k, delay)
        stats["killed" if what == "killed" else "finished_before_kill"] += 1
        if what == "finished":
            assert proc.returncode == 0, (logs / f"{job.name}-{i}.log").read_text()
        now = job.units(out)
        complete = check_outputs(job, out)
        lost = set(before) - set(now)
        if not (job.name == "forecast" and complete):  # a finished forecast deletes its parts
            assert not lost, f"kill {i}: finished units lost: {sorted(lost)[:5]}"
        before = now
        stats["units_seen"] = max(stats["units_seen"], len(now))
        stats["units_after_each_kill"].append(len(now))
    log = logs / f"{job.name}-final.log"
    proc = start(job.argv + ["--out", str(out)], log)
    proc.wait(timeout=600)
    text = log.read_text()
    assert proc.returncode == 0 and "Traceback" not in text, text
    assert check_outputs(job, out), f"{out}: no {MARKER[job.name]} after the final run"
    final = job.final(out)
    reused_n, ran_n = reused(job, final)
    if job.name != "forecast":  # forecast parts are removed once the outputs are in place
        after = job.units(out)
        assert set(before) <= set(after)
        assert len(after) == job.extra["units"], f"{len(after)} units, the clean run has {job.extra['units']}"
    assert reused_n == len(before), f"the final rerun reused {reused_n} units, {len(before)} were finished"
    assert reused_n + ran_n == job.extra["units"], f"reused {reused_n} + ran {ran_n} != {job.extra['units']} units"
    damaged = {"sweep": ("execution", "redone_unreadable"), "forecast": ("parts", "redone_damaged")}.get(job.name)
    if damaged:  # atomic writes: a kill never leaves a damaged file under a real name
        assert final[damaged[0]][damaged[1]] == 0, final[damaged[0]]
    stats["final_reused"], stats["final_ran"] = reused_n, ran_n
    return stats


# --------------------------------------------------------------------------------------
# The three jobs, small enough for CI
# --------------------------------------------------------------------------------------

SWEEP_SPEC = {"name": "kill", "scenario": "baseline", "households": 400, "years": [2016, 2018], "seed": 3,
              "parameters": {"income.wage_growth": {"range": [0.03, 0.09]},
                             "health.basic_rate": {"values": [0.5, 0.6, 0.7]}},
              "design": {"type": "latin_hypercube", "samples": 24}, "replicates": 2,
              "outputs": {"registered_poor": "final", "exits": ["sum", "mean"], "poverty_gap_yuan": "sum"}}

CAL_TARGETS = ("year,metric,value,sd\n2017,income_wage_per_capita,3000,300\n2018,income_wage_per_capita,3300,300\n"
               "2018,registered_persons_share,0.1,0.05\n")
CAL_SPEC = {"name": "kill", "scenario": "baseline", "households": 300, "years": [2016, 2018], "targets": ["t.csv"],
            "parameters": {"income.wage_growth": {"range": [0.0, 0.2]},
                           "income.operating_growth": {"range": [-0.05, 0.15]}},
            "replicates": 1, "seed": 3,
            "optimizer": {"popsize": 4, "maxiter": 3, "seed": 1, "polish": "nelder-mead", "polish_maxiter": 8},
            "abc": {"samples": 8, "quantile": 0.25, "seed": 2}}


def sweep_job(folder: Path, **changes) -> Job:
    import yaml

    from fupin_sim.experiments.sweep import run_sweep

    spec = folder / "sweep.yaml"
    spec.write_text(yaml.safe_dump({**SWEEP_SPEC, **changes}))
    t0 = time.perf_counter()
    clean = run_sweep(spec, folder / "sweep-clean")
    seconds = time.perf_counter() - t0
    assert clean.manifest["execution"]["ran"] == len(clean.results)
    runs = {p.stem: json.loads(p.read_text())["outputs"] for p in (folder / "sweep-clean" / "runs").glob("*.json")}
    return Job("sweep", cli("sweep", spec, "--no-progress"), folder / "sweep-clean", seconds,
               ("results.csv", "design.csv"), {"runs": runs, "units": len(runs)})


def calibrate_job(folder: Path, **changes) -> Job:
    import yaml

    from fupin_sim.experiments.calibrate import calibrate

    (folder / "t.csv").write_text(CAL_TARGETS)
    spec = folder / "cal.yaml"
    spec.write_text(yaml.safe_dump({**CAL_SPEC, **changes}))
    t0 = time.perf_counter()
    clean = calibrate(spec, folder / "cal-clean")
    seconds = time.perf_counter() - t0
    trials = {}
    for line in (folder / "cal-clean" / "trials.jsonl").read_text().splitlines():
        rec = json.loads(line)
        trials[rec["key"]] = rec["replicates"]
    assert len(trials) == clean.manifest["execution"]["evaluated"]
    return Job("calibrate", cli("calibrate", spec), folder / "cal-clean", seconds,
               ("fit.csv", "fitted.yaml", "abc_draws.csv", "draws.csv"), {"trials": trials, "units": len(trials)})


def forecast_job(folder: Path, households: int = 1000, reps: int = 120, horizon: int = 2) -> Job:
    import fupin_sim as fs
    from fupin_sim.experiments import forecast as F

    register = folder / "register"
    pop = fs.generate(fs.Params.defaults(), households, seed=1, year=2020)
    fs.write_register(pop, register)
    real_clear, F.PartStore.clear = F.PartStore.clear, lambda self, ranges: None  # keep the clean parts to compare
    try:
        t0 = time.perf_counter()
        clean = F.forecast(register, "consolidation", horizon, reps, seed=0, out=folder / "fc-clean")
        seconds = time.perf_counter() - t0
    finally:
        F.PartStore.clear = real_clear
    parts = {}
    for path in sorted((folder / "fc-clean" / "parts").glob("part_*.npz")):
        with np.load(path, allow_pickle=False) as z:
            parts[path.name] = {k: z[k] for k in z.files if k != "meta"}
    argv = cli("forecast", register, "--scenario", "consolidation", "--horizon", horizon, "--reps", reps)
    return Job("forecast", argv, folder / "fc-clean", seconds, ("risk.csv", "aggregate.csv"),
               {"parts": parts, "units": len(parts), "key": clean.manifest["forecast_key"],
                "households": households, "horizon": horizon})

