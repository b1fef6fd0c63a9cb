"""Forecast benchmark: 100,000 households × 3 years × 200 replicates (goal ≤ 60 s).

    PYTHONPATH=. python3 benchmarks/forecast.py                      # the full measurement
    PYTHONPATH=. python3 benchmarks/forecast.py --households 5000 --reps 20   # smoke run

The register is a simulated world (`consolidation`, 2016-2020, seed 1) written out at the end
of 2020 with `state.to_population()`, so it holds exited households as a real register does;
building it is not timed. The forecast (2021-2023) is timed with n_jobs = 1 and 2, and the two
results are checked to be identical (results do not depend on n_jobs).
"""
from __future__ import annotations

import argparse
import os
import platform
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

import fupin_sim as fs  # noqa: E402
from fupin_sim.experiments.forecast import forecast  # noqa: E402
from fupin_sim.simulation import Simulation  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--horizon", type=int, default=3)
    ap.add_argument("--n-jobs", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args(argv)

    sc = fs.load_scenario("consolidation")
    t = time.perf_counter()
    world = Simulation(sc.edit(households=args.households, years=(2016, 2020)), seed=1)
    world.run()
    register = world.state.to_population()
    print(f"register: {len(register.households):,} households, {len(register.persons):,} persons, end of "
          f"{register.year} (built in {time.perf_counter() - t:.1f} s, not timed)")
    results = {}
    for n_jobs in args.n_jobs:
        t = time.perf_counter()
        res = forecast(register, sc, args.horizon, args.reps, seed=0, n_jobs=n_jobs)
        wall = time.perf_counter() - t
        results[n_jobs] = res
        hh_years = len(register.households) * args.horizon * args.reps
        print(f"forecast {len(register.households):,} households × {args.horizon} years × {args.reps} replicates, "
              f"n_jobs={n_jobs}: {wall:.1f} s ({hh_years / wall / 1e6:.1f} M household-years/s)")
    if len(results) > 1:
        tables = list(results.values())
        same = all(r.table.equals(tables[0].table) and r.aggregate.equals(tables[0].aggregate) for r in tables[1:])
        print(f"identical across n_jobs {list(results)}: {same}")
        if not same:
            return 1
    res = next(iter(results.values()))
    p = res.table[f"p_within_{args.horizon}"].to_numpy()
    print(f"mean P(below within {args.horizon} years) {p.mean():.3f}; tiers "
          f"{res.table['tier'].value_counts().to_dict()}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
