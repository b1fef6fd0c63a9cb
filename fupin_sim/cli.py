"""The `fupin-sim` command.

    fupin-sim run SCENARIO [--households N] [--years A-B] [--seed S] [--reps R] [--n-jobs J] [--panel] --out DIR
    fupin-sim validate FILE [FILE ...]
    fupin-sim generate [--preset P] [--households N] [--year Y] [--seed S] [--format csv|parquet] --out DIR
    fupin-sim params [--preset P] [--grep TEXT]

Errors in the user's input are printed as one line naming the file and the place, with exit
status 2; nothing is written for a run that failed validation.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fupin_sim.errors import InputError


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value == 0:
        raise argparse.ArgumentTypeError("must not be 0 (use -1 for all cores)")
    return value


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fupin-sim", description="Poverty-alleviation microsimulation (扶贫).")
    ap.add_argument("--version", action="version", version=f"fupin-sim {_version()}")
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario and write summary.csv, manifest.json and a figure")
    run.add_argument("scenario", help="a scenario file, or a bundled name such as 'baseline'")
    run.add_argument("--households", type=_positive, help="simulated households (default: the preset's)")
    run.add_argument("--years", help="first-last simulated years, e.g. 2016-2020")
    run.add_argument("--seed", type=_seed, help="random seed (default: the scenario's)")
    run.add_argument("--reps", type=_positive, default=1, help="replicates; more than 1 adds quantile bands")
    run.add_argument("--n-jobs", type=_n_jobs, default=1, help="processes for replicates (-1: all cores)")
    run.add_argument("--panel", action="store_true", help="also write the per-household yearly panel")
    run.add_argument("--out", required=True, help="output folder")

    val = sub.add_parser("validate", help="check scenario files without running them")
    val.add_argument("files", nargs="+")

    gen = sub.add_parser("generate", help="write a synthetic population as a register (CSV or Parquet)")
    gen.add_argument("--preset", default="inner_mongolia_county")
    gen.add_argument("--households", type=_positive)
    gen.add_argument("--year", type=int, help="snapshot year (default: the preset's)")
    gen.add_argument("--seed", type=_seed, default=0)
    gen.add_argument("--format", choices=("csv", "parquet"), default="csv")
    gen.add_argument("--out", required=True)

    prm = sub.add_parser("params", help="list parameters with units, sources and confidence")
    prm.add_argument("--preset", default="inner_mongolia_county")
    prm.add_argument("--grep", help="only parameters whose path contains this text")
    return ap


def _version() -> str:
    from fupin_sim import __version__

    return __version__


def cmd_run(args) -> int:
    from fupin_sim.api import run

    result = run(args.scenario, households=args.households, years=args.years, seed=args.seed, reps=args.reps,
                 panel=args.panel, n_jobs=args.n_jobs)
    out = result.write(args.out)
    last = result.summary.iloc[-1]
    print(f"{result.manifest['scenario']} {result.manifest['years'][0]}-{result.manifest['years'][1]}, "
          f"seed {result.manifest['seed']}, {args.reps} replicate(s): in {int(last['year'])} "
          f"{last['registered_poor']:,.0f} registered poor households, headcount ratio "
          f"{last['headcount_ratio']:.1%}; written to {out}")
    return 0


def cmd_validate(args) -> int:
    from fupin_sim.scenario import load_scenario

    for f in args.files:
        sc = load_scenario(f)
        print(f"{f}: ok ({sc.name}, {sc.years[0]}-{sc.years[1]}, preset {sc.preset}, hash {sc.hash})")
    return 0


def cmd_generate(args) -> int:
    from fupin_sim.params import Params
    from fupin_sim.population.register import write_register
    from fupin_sim.population.synthetic import generate

    pop = generate(Params.defaults(args.preset), args.households, seed=args.seed, year=args.year)
    folder = write_register(pop, args.out, fmt=args.format)
    print(f"{len(pop.households):,} households, {len(pop.persons):,} persons (end of {pop.year}) written to {folder}")
    return 0


def cmd_params(args) -> int:
    from fupin_sim.params import Params

    table = Params.defaults(args.preset).table()
    if args.grep:
        table = table[table["parameter"].str.contains(args.grep, regex=False)]
    print(table.to_string(index=False, max_colwidth=60))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = {"run": cmd_run, "validate": cmd_validate, "generate": cmd_generate, "params": cmd_params}[args.command]
    try:
        return command(args)
    except InputError as e:
        print(f"fupin-sim: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        where = f" ({e.filename})" if getattr(e, "filename", None) else ""
        print(f"fupin-sim: error: {e.strerror or e}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
