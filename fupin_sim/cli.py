"""The `fupin-sim` command.

    fupin-sim run SCENARIO [--households N] [--years A-B] [--seed S] [--reps R] [--n-jobs J] [--draws CAL] [--panel] --out DIR
    fupin-sim validate FILE [FILE ...]
    fupin-sim generate [--preset P] [--households N] [--year Y] [--seed S] [--format csv|parquet] --out DIR
    fupin-sim params [--preset P] [--grep TEXT]
    fupin-sim diff A B
    fupin-sim compare BASE ALT [ALT ...] [--reps R] [--households N] [--years A-B] [--seed S] [--n-jobs J] [--draws CAL]
                      [--instrument-scale NAME=F ...] --out DIR
    fupin-sim sweep SPEC [--n-jobs J] [--scheduler ADDRESS] [--batch-size B] [--progress|--no-progress] --out DIR
    fupin-sim calibrate SPEC [--n-jobs J] [--progress] --out DIR
    fupin-sim forecast REGISTER --scenario S --horizon H [--reps R] [--n-jobs J] --out DIR
    fupin-sim backtest --scenario S --households N --year T --horizon H [--reps R] --out DIR
    fupin-sim sensitivity SPEC [--n-jobs J] [--scheduler ADDRESS] [--progress|--no-progress] --out DIR
    fupin-sim report DIR [--lang en|zh] [--out DIR]

Every command that writes a result folder also draws its figures there (PNG, English);
`report` adds a self-contained HTML page and an Excel workbook, in English or Chinese.

Errors in the user's input are printed as one line naming the file and the place, with exit
status 2; nothing is written for a run that failed validation. A file that cannot be written
(a full disk, a read-only folder) is one line naming it and the cause, also with status 2;
outputs are written atomically, so the previous result in that folder stays intact.
"""
from __future__ import annotations

import argparse
import sys

from fupin_sim.errors import InputError


def _whole(low: int | None = None, zero: bool = True):
    """An argparse type: a whole number, at least `low`, and not 0 unless `zero`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if not zero and value == 0:
            raise argparse.ArgumentTypeError("must not be 0 (use -1 for all cores)")
        return value
    return parse


_positive, _seed, _n_jobs = _whole(1), _whole(0), _whole(zero=False)


def _scale(text: str) -> tuple[str, float]:
    """An argparse type: INSTRUMENT=FACTOR (the instrument is checked against the scenario later)."""
    name, sep, factor = text.partition("=")
    try:
        if not sep or not name:
            raise ValueError
        return name.strip(), float(factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected INSTRUMENT=FACTOR (e.g. microloan=0.5), got {text!r}") from None


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fupin-sim", description="Poverty-alleviation microsimulation (扶贫).")
    ap.add_argument("--version", action="version", version=f"fupin-sim {_version()}")
    sub = ap.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a scenario and write summary.csv, manifest.json and figures")
    run.add_argument("scenario", help="a scenario file, or a bundled name such as 'baseline'")
    run.add_argument("--households", type=_positive, help="simulated households (default: the preset's)")
    run.add_argument("--years", help="first-last simulated years, e.g. 2016-2020")
    run.add_argument("--seed", type=_seed, help="random seed (default: the scenario's)")
    run.add_argument("--reps", type=_positive, default=1, help="replicates; more than 1 adds quantile bands")
    run.add_argument("--n-jobs", type=_n_jobs, default=1, help="processes for replicates (-1: all cores)")
    run.add_argument("--draws", help="a calibration folder (or its draws.csv): replicate r runs with parameter "
                                     "draw r mod their number, so the bands carry parameter uncertainty")
    run.add_argument("--panel", action="store_true", help="also write the per-household yearly panel")
    run.add_argument("--instrument-scale", type=_scale, action="append", metavar="INSTRUMENT=FACTOR",
                     help="each year the instrument may draw FACTOR times what it draws in the same run unscaled "
                          "(repeatable; needs a second, unscaled run alongside)")
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

    dif = sub.add_parser("diff", help="show what differs between two scenarios (parameters, interventions, budgets)")
    dif.add_argument("a")
    dif.add_argument("b")

    prm = sub.add_parser("params", help="list parameters with units, sources and confidence")
    prm.add_argument("--preset", default="inner_mongolia_county")
    prm.add_argument("--grep", help="only parameters whose path contains this text")

    cmp = sub.add_parser("compare", help="paired comparison of scenarios against a baseline (same seeds)")
    cmp.add_argument("baseline", help="the baseline scenario: a file, or a bundled name")
    cmp.add_argument("alternatives", nargs="+", help="alternative scenarios (files or bundled names)")
    cmp.add_argument("--reps", type=_positive, default=10, help="paired replicates (default 10)")
    cmp.add_argument("--households", type=_positive, help="simulated households (default: the baseline's)")
    cmp.add_argument("--years", help="first-last simulated years, e.g. 2016-2020")
    cmp.add_argument("--seed", type=_seed, help="base seed of the replicates (default: the baseline's)")
    cmp.add_argument("--n-jobs", type=_n_jobs, default=1, help="processes (-1: all cores)")
    cmp.add_argument("--instrument-scale", type=_scale, action="append", metavar="INSTRUMENT=FACTOR",
                     help="scale these instruments' budgets in every alternative (repeatable): e.g. "
                          "'compare baseline baseline --instrument-scale microloan=2'")
    cmp.add_argument("--draws", help="a calibration folder (or its draws.csv): replicate r of every scenario runs "
                                     "with parameter draw r mod their number")
    cmp.add_argument("--out", required=True, help="output folder")

    for name, text in (("sweep", "run a parameter sweep from a spec file (resumable)"),
                       ("sensitivity", "Sobol' sensitivity indices from a spec file (resumable)")):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("spec", help="the sweep spec (YAML)")
        sp.add_argument("--n-jobs", type=_n_jobs, default=1, help="processes on this machine (-1: all cores)")
        sp.add_argument("--scheduler", help="address of a Dask scheduler (e.g. tcp://10.0.0.5:8786) to run on a cluster")
        sp.add_argument("--batch-size", type=_positive, help="runs per task (default: automatic)")
        bar = sp.add_mutually_exclusive_group()
        bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                         help="show a progress bar (default: only on a terminal)")
        bar.add_argument("--no-progress", dest="progress", action="store_false")
        sp.add_argument("--out", required=True, help="output folder (rerun with the same folder to resume)")
    card = sub.add_parser("scorecard", help="the bundled scenarios against published figures (pass or miss)")
    card.add_argument("--history", help="a table of published figures (default: the bundled fupin_sim/data/history.csv)")
    card.add_argument("--households", type=_positive, help="simulated households a scenario (default: each preset's)")
    card.add_argument("--reps", type=_positive, default=2, help="replicates a scenario (default 2)")
    card.add_argument("--seed", type=_seed, help="base seed (default: each scenario's)")
    card.add_argument("--n-jobs", type=_n_jobs, default=1, help="processes (-1: all cores)")
    card.add_argument("--out", required=True, help="output folder: scorecard.csv, report.html, report-zh.html")

    rep = sub.add_parser("report", help="an HTML page and an Excel workbook from any result folder")
    rep.add_argument("folder", help="a result folder written by run, compare, sweep, sensitivity, calibrate, "
                                    "forecast or backtest")
    rep.add_argument("--lang", choices=("en", "zh"), default="en", help="language of the labels (default en)")
    rep.add_argument("--out", help="where to write report.html and report.xlsx (default: the result folder)")
    from fupin_sim.calibrate import add_cli as add_calibrate
    from fupin_sim.forecast import add_cli as add_forecast

    add_calibrate(sub)
    add_forecast(sub)
    return ap


def _version() -> str:
    from fupin_sim import __version__

    return __version__


def cmd_run(args) -> int:
    from fupin_sim.api import run

    result = run(args.scenario, households=args.households, years=args.years, seed=args.seed, reps=args.reps,
                 panel=args.panel, n_jobs=args.n_jobs, draws=args.draws,
                 instrument_scale=dict(args.instrument_scale or []) or None)
    out = result.write(args.out)
    last = result.summary.iloc[-1]
    print(f"{result.manifest['scenario']} {result.manifest['years'][0]}-{result.manifest['years'][1]}, "
          f"seed {result.manifest['seed']}, {args.reps} replicate(s)"
          + (f" over {result.manifest['parameter_draws']['used']} parameter draw(s)" if args.draws else "")
          + "".join(f", {k} budget × {v:g}" for k, v in (result.manifest.get("instrument_scale") or {}).items())
          + f": in {int(last['year'])} "
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


def cmd_diff(args) -> int:
    from fupin_sim.scenario import diff, load_scenario

    a, b = load_scenario(args.a), load_scenario(args.b)
    rows = diff(a, b)
    if not rows:
        print(f"{a.name} and {b.name} do not differ")
        return 0
    width = max(len(k) for k, _, _ in rows)
    print(f"{'':{width}}  {a.name}  ->  {b.name}")
    for key, va, vb in rows:
        print(f"{key:{width}}  {va}  ->  {vb}")
    return 0


def cmd_params(args) -> int:
    from fupin_sim.params import Params

    table = Params.defaults(args.preset).table()
    if args.grep:
        table = table[table["parameter"].str.contains(args.grep, regex=False)]
    print(table.to_string(index=False, max_colwidth=60))
    return 0


def _number(x: float) -> str:
    if x != x:  # NaN
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:,.2f}" if abs(x) >= 1 else f"{x:.3g}"


def _interval(row) -> str:
    text = _number(row["mean_diff"])
    if row["ci_low"] == row["ci_low"]:  # not NaN
        text += f" [{_number(row['ci_low'])}, {_number(row['ci_high'])}]"
    return text


def cmd_compare(args) -> int:
    from fupin_sim.compare import compare

    scale = dict(args.instrument_scale or [])
    alternatives = [{"scenario": a, "instrument_scale": scale} for a in args.alternatives] if scale \
        else args.alternatives
    result = compare(args.baseline, alternatives, reps=args.reps, n_jobs=args.n_jobs,
                     households=args.households, years=args.years, seed=args.seed, draws=args.draws)
    out = result.write(args.out)
    man = result.manifest
    print(f"{man['baseline']['name']} vs {', '.join(man['alternatives'])}, {man['years'][0]}-{man['years'][1]}, "
          f"{man['replicates']} paired replicate(s); alternative − baseline over the years, mean [95% CI]:")
    for name, block in result.headline().groupby("alternative", sort=False):
        print(f"  {name}:")
        for _, row in block.iterrows():
            print(f"    {row['metric']}: {_interval(row)}")
    for note in result.notes:
        print(f"note: {note}")
    print(f"written to {out}")
    return 0


def cmd_sweep(args) -> int:
    from fupin_sim.sweep import run_sweep

    result = run_sweep(args.spec, args.out, n_jobs=args.n_jobs, scheduler=args.scheduler, progress=args.progress,
                       batch_size=args.batch_size)
    ex = result.manifest["execution"]
    redone = f", {ex['redone_unreadable']} unreadable or partial run file(s) redone" if ex["redone_unreadable"] else ""
    print(f"{result.manifest['name']}: {ex['runs']} runs ({len(result.design)} points × "
          f"{result.manifest['replicates']} replicates): {ex['ran']} run now, {ex['reused']} already done{redone}, "
          f"in {ex['wall_seconds']:.1f} s; results in {result.out / 'results.csv'}")
    return 0


def cmd_sensitivity(args) -> int:
    from fupin_sim.sensitivity import sensitivity

    result = sensitivity(args.spec, args.out, n_jobs=args.n_jobs, scheduler=args.scheduler, progress=args.progress,
                         batch_size=args.batch_size)
    for name, block in result.indices.groupby("output", sort=False):
        share = block["noise_share"].iloc[0]
        print(f"{name} (noise share {share:.3f}: seed-to-seed variance over the variance across the design):")
        for _, r in block.sort_values("ST", ascending=False).iterrows():
            spread = (f" (between seeds ± {r['S1_seed_sd']:.3f}, ± {r['ST_seed_sd']:.3f})"
                      if r["S1_seed_sd"] == r["S1_seed_sd"] else "")
            print(f"  {r['parameter']}: S1 {r['S1']:.3f} [{r['S1_low']:.3f}, {r['S1_high']:.3f}], "
                  f"ST {r['ST']:.3f} [{r['ST_low']:.3f}, {r['ST_high']:.3f}]{spread}")
    print(f"written to {result.out}")
    return 0


def cmd_scorecard(args) -> int:
    from fupin_sim.scorecard import scorecard

    result = scorecard(args.history, households=args.households, reps=args.reps, seed=args.seed, n_jobs=args.n_jobs)
    out = result.write(args.out)
    for role, c in result.counts().items():
        print(f"{role}: {c['pass']} pass, {c['miss']} miss")
    for r in result.table[result.table["result"] == "miss"].itertuples():
        print(f"  miss ({r.role}): {r.id}: model {r.model:.4g}, published {r.bound} {r.value:.4g} ± {r.tolerance:.3g}")
    print(f"written to {out}")
    return 0


def cmd_report(args) -> int:
    import warnings

    from fupin_sim.plots import FontWarning
    from fupin_sim.report import report

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FontWarning)
        rep = report(args.folder, lang=args.lang, out=args.out)
    for w in caught:
        if issubclass(w.category, FontWarning):
            print(f"fupin-sim: note: {w.message}", file=sys.stderr)
    print(f"written {rep.html} and {rep.workbook}" + (f" ({len(rep.figures)} figures beside them)"
                                                      if rep.figures else ""))
    return 0


# commands whose --out folder is a result the figures are drawn from
RESULT_COMMANDS = ("run", "compare", "sweep", "sensitivity", "calibrate", "forecast", "backtest")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from fupin_sim.forecast import cmd_backtest, cmd_forecast

    commands = {"run": cmd_run, "validate": cmd_validate, "generate": cmd_generate, "params": cmd_params,
                "diff": cmd_diff, "compare": cmd_compare, "sweep": cmd_sweep, "sensitivity": cmd_sensitivity,
                "forecast": cmd_forecast, "backtest": cmd_backtest, "report": cmd_report,
                "scorecard": cmd_scorecard}
    command = commands.get(args.command) or args.func  # commands of other modules register `func`
    try:
        status = command(args)
        if status == 0 and args.command in RESULT_COMMANDS:
            from fupin_sim.report import save_figures

            save_figures(args.out)
        return status
    except InputError as e:
        print(f"fupin-sim: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a read-only or missing folder: the file and the cause, no traceback
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"fupin-sim: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
