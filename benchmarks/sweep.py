"""Sweep and paired-comparison benchmark.

1. **Sweep speed.** A 1000-run sweep (250 Latin-hypercube points × 4 replicates) of the
   baseline at 10,000 households × 15 years (2016-2030) with n_jobs=2, in a fresh
   output folder: wall time, the engine's own time per run (set-up, simulation,
   reduction, measured in the workers), the parent's time to write each run file, and
   the rest (process start, pickling, transfer, scheduling, idle workers at the end) as
   overhead per run. Memory: the parent's resident set at start and end and its peak;
   the workers' peak. Then the same command again (resume: every run on disk, nothing
   to do) and the size and pickling time of one task.
2. **Common random numbers.** `crn_variance_reduction` on baseline vs health_cap_3000
   (or `--alternative`): variance of the paired difference with the same seeds and with
   independent seeds, and the replicate ratio for equally narrow confidence intervals.

    PYTHONPATH=. python3 benchmarks/sweep.py            # both, prints the section
    PYTHONPATH=. python3 benchmarks/sweep.py --write    # and writes it to benchmarks/RESULTS.md
    PYTHONPATH=. python3 benchmarks/sweep.py --quick    # 100 runs at 2000 households: a smoke run

`--write` replaces the "## Sweeps" section of benchmarks/RESULTS.md (appending it at the
end the first time) and leaves every other section alone; without RESULTS.md it writes
benchmarks/SWEEP_RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import pickle
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    """Current resident set of this process (Linux /proc; psutil elsewhere when installed)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import psutil

        return psutil.Process().memory_info().rss / 1024 ** 2
    except ImportError:
        return float("nan")


def peak_mb() -> float:
    try:
        import resource
    except ImportError:
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 ** 2 if sys.platform == "darwin" else peak / 1024


def machine_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine since boot (Linux /proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return float("nan"), float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process `pid` (0 when it is gone)."""
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return float("nan")


def wait_quiet(limit: float, threshold: float = 0.3) -> float:
    """Wait (up to `limit` seconds) until the 1-minute load average drops under `threshold`:
    other processes on a 2-core machine distort every timing. Returns the load then."""
    start = time.monotonic()
    while load_average() >= threshold and time.monotonic() - start < limit:
        time.sleep(10)
    return load_average()


def machine() -> str:
    import numpy
    import pandas
    import scipy

    import fupin_sim

    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), platform.processor())
    except OSError:
        cpu = platform.processor()
    try:
        mem = next(int(line.split()[1]) / 1024 ** 2 for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
        mem_text = f", {mem:.1f} GiB RAM"
    except (OSError, StopIteration):
        mem_text = ""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        commit += " with uncommitted changes" if dirty.strip() else ""
    except OSError:
        commit = "unknown"
    import joblib

    return (f"{cpu}, {os.cpu_count()} cores{mem_text}, {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, numpy {numpy.__version__}, pandas {pandas.__version__}, scipy "
            f"{scipy.__version__}, joblib {joblib.__version__}; fupin_sim {fupin_sim.__version__} at commit {commit}")


def _warm() -> int:
    """Worker warm-up: import the engine (what the first task of a sweep would do)."""
    import fupin_sim.simulation  # noqa: F401

    return os.getpid()


def _burn(n: int) -> float:
    """Pure-Python CPU work (no memory traffic): its time alone vs side by side tells how
    much parallel capacity the machine's cores really give."""
    t = time.perf_counter()
    s = 0
    for i in range(n):
        s += i * i
    return time.perf_counter() - t


def sweep_benchmark(households: int, years: tuple[int, int], points: int, reps: int, n_jobs: int,
                    attempts: int = 3) -> dict:
    import json

    from fupin_sim.experiments.sweep import load_spec, run_sweep, sweep_tasks
    from fupin_sim.experiments.sweep.runs import run_one
    from fupin_sim.results import simulate

    rss_start = rss_mb()
    spec_dict = {
        "name": "benchmark", "scenario": "baseline", "households": households, "years": list(years), "seed": 1,
        "parameters": {"income.wage_growth": {"range": [0.04, 0.10]},
                       "income.sd_transitory": {"range": [0.15, 0.35]},
                       "health.admission_rate": {"range": [0.8, 1.2], "scale": True},
                       "shocks.drought_probability": {"range": [0.05, 0.20]}},
        "design": {"type": "latin_hypercube", "samples": points, "seed": 1},
        "replicates": reps,
        "outputs": {"registered_poor": "final", "exits": "sum", "relapses": "sum", "new_poor": "sum",
                    "fgt1": "mean", "poverty_gap_yuan": "sum"},
    }
    t0 = time.perf_counter()
    spec = load_spec(spec_dict)
    t_spec = time.perf_counter() - t0
    sc = spec.scenario
    simulate(sc, seed=0)  # warm caches in this process
    design = spec.design_table()
    tasks = sweep_tasks(spec, design)
    batch = tasks[:16]
    blob = pickle.dumps((sc, batch, spec.outputs))
    t0 = time.perf_counter()
    for _ in range(20):
        pickle.loads(pickle.dumps((sc, batch, spec.outputs)))
    t_pickle = (time.perf_counter() - t0) / 20

    out = Path(tempfile.mkdtemp(prefix="fupin_sweep_bench_")) / "sweep"
    try:
        # start the worker pool first (loky keeps it for the sweep) to time it apart
        from joblib import Parallel, delayed

        t0 = time.perf_counter()
        pids = Parallel(n_jobs=n_jobs)(delayed(_warm)() for _ in range(4 * n_jobs))
        t_pool = time.perf_counter() - t0
        k = min(40, len(tasks))
        for attempt in range(1, attempts + 1):
            # other processes on a 2-core machine distort the timing: measure the CPU they
            # used during these measurements and measure again (after a quiet spell) when it
            # was more than 5% of the machine
            if out.exists():
                shutil.rmtree(out)
            busy0, steal0 = machine_cpu()
            own0 = sum(os.times()[:2]) + sum(process_cpu(p) for p in set(pids))
            t_begin = time.perf_counter()
            # references in this process, alone: simulate() and the worker function
            t0 = time.perf_counter()
            for s in range(3):
                simulate(sc, seed=s + 1)
            t_single = (time.perf_counter() - t0) / 3
            t0 = time.perf_counter()
            for task in tasks[:k]:
                run_one(sc, spec.outputs, task)
            t_serial = (time.perf_counter() - t0) / k
            burn_alone = min(_burn(10_000_000) for _ in range(2))
            burn_side = float(np.mean(Parallel(n_jobs=n_jobs)(delayed(_burn)(10_000_000) for _ in range(n_jobs))))
            t0 = time.perf_counter()
            result = run_sweep(spec, out, n_jobs=n_jobs, progress=False)
            wall = time.perf_counter() - t0
            recs = [json.loads(p.read_text()) for p in (out / "runs").glob("*.json")]
            workers = set(pids) | {r["pid"] for r in recs}
            own1 = sum(os.times()[:2]) + sum(process_cpu(p) for p in workers)
            busy1, steal1 = machine_cpu()
            foreign = max(0.0, (busy1 - busy0) - (own1 - own0))
            foreign_share = foreign / ((time.perf_counter() - t_begin) * (os.cpu_count() or 1))
            steal = steal1 - steal0
            if foreign_share <= 0.05 or attempt == attempts:
                break
            print(f"attempt {attempt}: other processes used {foreign_share:.0%} of the machine; waiting to "
                  f"measure again", file=sys.stderr)
            wait_quiet(600)
        rss_after = rss_mb()
        t0 = time.perf_counter()
        again = run_sweep(spec, out, n_jobs=n_jobs, progress=False)
        wall_resume = time.perf_counter() - t0
        folder_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1024 ** 2
        run_file_bytes = float(np.mean([p.stat().st_size for p in (out / "runs").glob("*.json")]))
    finally:
        shutil.rmtree(out.parent, ignore_errors=True)
    ex = result.manifest["execution"]
    runs = ex["runs"]
    setup = np.array([r["seconds"]["setup"] for r in recs])
    sim = np.array([r["seconds"]["simulate"] for r in recs])
    red = np.array([r["seconds"]["reduce"] for r in recs])
    compute = setup.sum() + sim.sum() + red.sum()
    worker_peak = max(r["peak_rss_mb"] or 0 for r in recs)
    return {
        "households": households, "years": years, "points": len(design), "reps": reps, "runs": runs,
        "n_jobs": n_jobs, "batches": ex["batches"], "wall": wall, "pool_start": t_pool,
        "workers": len(set(pids)), "wall_resume": wall_resume,
        "capacity": n_jobs * burn_alone / burn_side, "attempt": attempt, "foreign_share": foreign_share,
        "steal": steal,
        "resume_ran": again.manifest["execution"]["ran"], "spec_seconds": t_spec,
        "single_run": t_single, "serial_per_run": t_serial,
        "setup_mean": setup.mean(), "simulate_mean": sim.mean(), "reduce_mean": red.mean(),
        "compute_total": compute, "write_total": ex["write_seconds"], "check_total": ex["check_seconds"],
        "overhead_per_run": (wall * n_jobs - compute) / runs,
        "task_kb": len(blob) / 1024, "task_runs": len(batch), "pickle_ms": t_pickle * 1000,
        "rss_start": rss_start, "rss_after": rss_after, "rss_end": rss_mb(), "peak": peak_mb(),
        "worker_peak": worker_peak, "folder_mb": folder_mb, "run_file_bytes": run_file_bytes,
    }


def crn_benchmark(alternative: str, reps: int, households: int | None, n_jobs: int) -> tuple:
    from fupin_sim.experiments.compare import crn_variance_reduction
    from fupin_sim.scenario import load_scenario

    base = load_scenario("baseline")
    t0 = time.perf_counter()
    table = crn_variance_reduction(base, alternative, reps=reps, households=households, n_jobs=n_jobs,
                                   metrics=["exits:sum", "relapses:sum", "registered_poor:final", "fgt1:mean",
                                            "poverty_gap_yuan:sum"])
    return table, time.perf_counter() - t0, base


def section(sw: dict | None, crn: tuple | None, crn_args: dict, load: tuple[float, float]) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["## Sweeps", "", f"Measured {now} on: {machine()}. Load average (1 min) {load[0]:.2f} before "
             f"and {load[1]:.2f} after the measurements (the benchmark's own processes included).", "",
             "Reproduce from the repository root: `PYTHONPATH=. python3 benchmarks/sweep.py "
             f"{' '.join(sys.argv[1:]) or '--write'}` (`--quick` for a smoke run; `--help` for the options).", ""]
    if sw:
        y0, y1 = sw["years"]
        cold = sw["wall"] + sw["pool_start"]
        worker_ms = (sw["setup_mean"] + sw["simulate_mean"] + sw["reduce_mean"]) * 1000
        slow = worker_ms / (sw["serial_per_run"] * 1000)
        target = "met" if cold <= 120 else "not met"
        lines += [
            "### A 1000-run sweep", "",
            f"`run_sweep` of the bundled `baseline` at {sw['households']:,} households × {y1 - y0 + 1} years "
            f"({y0}–{y1}): {sw['points']} Latin-hypercube points over 4 parameters × {sw['reps']} replicates = "
            f"**{sw['runs']} runs**, n_jobs={sw['n_jobs']} (loky), a fresh output folder, in a fresh process. "
            f"The worker pool is started first and timed apart (loky keeps it for the sweep). Each finished "
            f"run is written to `runs/<id>.json` as it arrives; {sw['batches']} tasks of up to 16 runs.", "",
            "| measure | value |", "|---|---:|",
            f"| wall time, {sw['runs']} runs, n_jobs={sw['n_jobs']}, from a cold start | **{cold:.1f} s** "
            f"({sw['runs'] / cold:.1f} runs/s) |",
            f"| of which starting {sw['workers']} worker processes (importing fupin_sim in them) | {sw['pool_start']:.1f} s |",
            f"| of which the sweep itself | {sw['wall']:.1f} s ({sw['runs'] / sw['wall']:.1f} runs/s) |",
            f"| target ≤ 120 s | **{target}** |",
            f"| CPU used by other processes during the measurements (share of the machine); VM steal | "
            f"{sw['foreign_share']:.1%}; {sw['steal']:.1f} s (attempt {sw['attempt']}) |",
            f"| speed-up over running the same runs one after another in one process | "
            f"{sw['serial_per_run'] * sw['runs'] / sw['wall']:.2f}× |",
            f"| parallel capacity of the machine: {sw['n_jobs']} processes of pure-Python work side by side vs "
            f"one alone | {sw['capacity']:.2f}× |",
            f"| engine time per run in the workers: set-up (population) + simulation + reduction | "
            f"{sw['setup_mean'] * 1000:.1f} + {sw['simulate_mean'] * 1000:.1f} + {sw['reduce_mean'] * 1000:.2f} ms |",
            f"| one run with `simulate()` in this process (manifest included) | {sw['single_run'] * 1000:.1f} ms |",
            f"| the same runs through the worker function in this process | {sw['serial_per_run'] * 1000:.1f} ms per run |",
            f"| overhead per run: (wall × n_jobs − engine time) / runs | {sw['overhead_per_run'] * 1000:.1f} ms "
            f"({sw['overhead_per_run'] / (sw['compute_total'] / sw['runs']) :.0%} of the engine time) |",
            f"| of which writing run files (parent) | {sw['write_total'] / sw['runs'] * 1000:.2f} ms per run |",
            f"| one task pickled: scenario + {sw['task_runs']} runs + outputs | {sw['task_kb']:.0f} kB, "
            f"{sw['pickle_ms']:.1f} ms to pickle and unpickle |",
            f"| validating the spec (incl. a probe run) | {sw['spec_seconds']:.2f} s |",
            f"| rerun on the finished folder (resume: check {sw['runs']} files, run {sw['resume_ran']}) | "
            f"{sw['wall_resume']:.2f} s |",
            f"| parent resident memory: start → after the sweep → end | {sw['rss_start']:.0f} → "
            f"{sw['rss_after']:.0f} → {sw['rss_end']:.0f} MB (peak {sw['peak']:.0f} MB) |",
            f"| worker peak resident memory | {sw['worker_peak']:.0f} MB |",
            f"| output folder | {sw['folder_mb']:.2f} MB ({sw['run_file_bytes']:.0f} bytes a run file) |",
            "",
            (f"The speed-up is bounded by the machine rather than by the sweep: a worker runs the engine "
             f"{slow:.2f}× slower than a lone process does ({worker_ms:.1f} against "
             f"{sw['serial_per_run'] * 1000:.1f} ms a run) because the two virtual cores do not give two cores' "
             f"worth of work side by side (the pure-Python test above). " if slow > 1.1 else
             f"Each worker runs the engine as fast as a lone process does ({worker_ms:.1f} against "
             f"{sw['serial_per_run'] * 1000:.1f} ms a run), so the speed-up is close to the number of cores. ") +
            "Overhead is what the pool adds around the engine once it runs: pickling one task per batch "
            "(the scenario object travels "
            "once per batch of up to 16 runs, never re-read from YAML), sending back a small dict per run, "
            "writing one small JSON file per run atomically, and the last batches finishing unevenly. Memory "
            "stays flat: the parent keeps one small record per run; results stream through "
            "`return_as=\"generator_unordered\"` and are written as they arrive.", ""]
    if crn:
        table, seconds, base = crn
        lines += [
            "### Common random numbers", "",
            f"`crn_variance_reduction(baseline, {crn_args['alternative']}, reps={crn_args['reps']})` at "
            f"{crn_args['households'] or 'the preset’s'} households, {base.years[0]}–{base.years[1]} "
            f"({seconds:.0f} s): the baseline with replicate seeds S, the alternative with the same S "
            "(common random numbers) and with independent seeds S'. Variance over replicates of the paired "
            "difference alt − base; *replicates for equal CI* is how many times more replicates independent "
            "seeds need for a 95% confidence interval as narrow (Student's t at both sizes).", "",
            "| metric | mean difference (CRN) | variance, same seeds | variance, independent seeds | variance ratio | "
            "replicates for equal CI |", "|---|---:|---:|---:|---:|---:|"]
        for _, r in table.iterrows():
            lines.append(f"| {r['metric']} | {r['mean_diff_crn']:.4g} | {r['var_crn']:.4g} | {r['var_independent']:.4g} | "
                         f"**{r['variance_ratio']:,.0f}×** | {r['replicates_for_equal_ci']:,.0f}× |")
        worst = table["variance_ratio"].min()
        lines += ["", f"Goal ≥ 10× variance reduction: **{'met' if worst >= 10 else 'not met'}** "
                      f"(smallest ratio {worst:,.0f}×).", ""]
    return "\n".join(lines).rstrip() + "\n"


def write_section(text: str) -> Path:
    results = HERE / "RESULTS.md"
    if not results.exists():
        target = HERE / "SWEEP_RESULTS.md"
        target.write_text(text, encoding="utf-8")
        return target
    old = results.read_text(encoding="utf-8")
    match = re.search(r"^## Sweeps\s*$", old, flags=re.M)
    if match:
        rest = old[match.end():]
        nxt = re.search(r"^## (?!#)", rest, flags=re.M)
        new = old[:match.start()] + text + ("\n" + rest[nxt.start():] if nxt else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    results.write_text(new, encoding="utf-8")
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 runs at 2000 households, CRN with 6 replicates")
    ap.add_argument("--write", action="store_true", help="write the section to benchmarks/RESULTS.md")
    ap.add_argument("--only", choices=("sweep", "crn"), help="run one part only")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--alternative", default="health_cap_3000", help="scenario compared with the baseline")
    ap.add_argument("--crn-reps", type=int, default=20)
    ap.add_argument("--crn-households", type=int, default=10_000)
    ap.add_argument("--attempts", type=int, default=3,
                    help="measure the sweep again (up to this many times) when other processes took >5%% of the CPU")
    ap.add_argument("--wait-quiet", type=float, default=0, metavar="SECONDS",
                    help="first wait up to this long for the machine's load average to drop under 0.3")
    args = ap.parse_args()
    if args.wait_quiet:
        print(f"load average {wait_quiet(args.wait_quiet):.2f}", file=sys.stderr)
    load_before = load_average()
    quick = args.quick
    sw = crn = None
    if args.only in (None, "sweep"):
        sw = sweep_benchmark(households=2000 if quick else 10_000, years=(2016, 2030), points=25 if quick else 250,
                             reps=4, n_jobs=args.n_jobs, attempts=args.attempts)
    crn_args = {"alternative": args.alternative, "reps": 6 if quick else args.crn_reps,
                "households": 2000 if quick else args.crn_households}
    if args.only in (None, "crn"):
        crn = crn_benchmark(args.alternative, crn_args["reps"], crn_args["households"], args.n_jobs)
    text = section(sw, crn, crn_args, (load_before, load_average()))
    print(text)
    if args.write:
        print(f"written to {write_section(text)}")


if __name__ == "__main__":
    main()
