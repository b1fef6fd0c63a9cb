"""Soak test (not run in CI): many more kill points and fuzz cases than the test suite.

    PYTHONPATH=. python3 scripts/soak.py                       # defaults below, about 15 minutes on 2 cores
    PYTHONPATH=. python3 scripts/soak.py --kills 60 --fuzz-scenarios 5000 --seed 3

Kills: for each of `sweep`, `calibrate` and `forecast`, the real command
(`python -m fupin_sim.cli ...`, as in tests/test_faults.py) is SIGKILLed at seeded random
moments, in chains of up to --chain kills on one output folder, then run to the end; after
every kill the folder is checked (no partial file under a real name, nothing finished lost,
nothing duplicated) and at the end the tables must be byte-equal to an uninterrupted run's
(tests/killing.py says exactly what is checked). A third of the chains run with
`--n-jobs 2`, so kills also hit the parallel path and its worker processes.

Fuzz: mutated scenario files and damaged registers (tests/test_fuzz.py), each must end in a
run or a clear error naming the file.

Prints the counts and writes them to --report (JSON). Exit status 1 on the first failure,
with the seed and chain to replay it; the work folder (outputs and each command's log) is
then kept.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]


def soak_kills(work: Path, kills: int, chain: int, seed: int) -> dict:
    from killing import calibrate_job, forecast_job, kill_and_resume, sweep_job

    report = {}
    for index, make in enumerate((sweep_job, calibrate_job, forecast_job)):
        folder = work / make.__name__
        folder.mkdir()
        job = make(folder)
        rng = np.random.default_rng([seed, index])
        base_argv = list(job.argv)
        done = {"kill_points": 0, "killed": 0, "finished_before_kill": 0, "chains": 0, "chains_n_jobs_2": 0,
                "units": job.extra["units"], "units_after_kills": []}
        t0 = time.perf_counter()
        while done["kill_points"] < kills:
            k = int(min(chain, kills - done["kill_points"]))
            parallel = rng.random() < 1 / 3
            job.argv = base_argv + (["--n-jobs", "2"] if parallel else [])
            out = folder / f"chain{done['chains']}"
            try:
                stats = kill_and_resume(job, out, rng, k, early=int(rng.random() < 0.3), logs=folder)
            except AssertionError as e:
                raise AssertionError(f"{job.name}, chain {done['chains']} (seed {seed}): {e}") from e
            done["kill_points"] += k
            done["killed"] += stats["killed"]
            done["finished_before_kill"] += stats["finished_before_kill"]
            done["units_after_kills"] += stats["units_after_each_kill"]
            done["chains"] += 1
            done["chains_n_jobs_2"] += parallel
            print(f"  {job.name} chain {done['chains']}{' (n_jobs 2)' if parallel else ''}: {stats['killed']} "
                  f"killed, units after each kill {stats['units_after_each_kill']} of {job.extra['units']}, final "
                  f"rerun reused {stats['final_reused']} and ran {stats['final_ran']}", flush=True)
        done["seconds"] = round(time.perf_counter() - t0, 1)
        units = np.asarray(done.pop("units_after_kills"))
        done["kills_with_some_but_not_all_units_done"] = int(((units > 0) & (units < job.extra["units"])).sum())
        report[job.name] = done
    return report


def soak_fuzz(work: Path, scenarios: int, registers: int, seed: int) -> dict:
    from test_fuzz import fuzz_registers, fuzz_scenarios

    (work / "scenarios").mkdir()
    (work / "registers").mkdir()
    t0 = time.perf_counter()
    sc = fuzz_scenarios(work / "scenarios", scenarios, seed)
    t1 = time.perf_counter()
    reg = fuzz_registers(work / "registers", registers, seed)
    t2 = time.perf_counter()
    return {"scenario_files": {"cases": scenarios, **sc, "seconds": round(t1 - t0, 1)},
            "registers": {"cases": registers, **reg, "seconds": round(t2 - t1, 1)}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=40, help="kill points per command (default 40)")
    ap.add_argument("--chain", type=int, default=4, help="kills on one output folder before it runs to the end")
    ap.add_argument("--fuzz-scenarios", type=int, default=2000)
    ap.add_argument("--fuzz-registers", type=int, default=600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--report", default=str(ROOT / "benchmarks" / "soak.json"), help="where to write the counts")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="fupin-soak-"))
    (work / "kills").mkdir()
    (work / "fuzz").mkdir()
    try:
        print(f"kills: {args.kills} per command, chains of {args.chain}, seed {args.seed}", flush=True)
        kills = soak_kills(work / "kills", args.kills, args.chain, args.seed)
        print(f"fuzz: {args.fuzz_scenarios} scenario files, {args.fuzz_registers} registers", flush=True)
        fuzz = soak_fuzz(work / "fuzz", args.fuzz_scenarios, args.fuzz_registers, args.seed)
    except AssertionError as e:
        print(f"FAILED: {e}\nthe folders and command logs are kept in {work}", file=sys.stderr)
        return 1
    shutil.rmtree(work)
    report = {"seed": args.seed, "kills": kills, "fuzz": fuzz, "seconds": round(time.perf_counter() - t0, 1),
              "date": time.strftime("%Y-%m-%d")}
    Path(args.report).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
