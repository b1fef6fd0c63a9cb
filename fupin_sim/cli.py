"""The `fupin-sim` command (also `python -m fupin_sim`): every command's arguments and what it
prints are here, in `COMMANDS`; the work is done by the engine and the experiments.

    fupin-sim run SCENARIO [--households N] [--years A-B] [--seed S] [--reps R] [--n-jobs J] [--draws CAL] [--panel]
                  [--instrument-scale NAME=F ...] --out DIR
    fupin-sim validate FILE [FILE ...]
    fupin-sim generate [--preset P] [--households N] [--year Y] [--seed S] [--format csv|parquet] --out DIR
    fupin-sim params [--preset P] [--grep TEXT]
    fupin-sim diff A B
    fupin-sim compare BASE ALT [ALT ...] [--reps R] [--households N] [--years A-B] [--seed S] [--n-jobs J] [--draws CAL]
                      [--instrument-scale NAME=F ...] --out DIR
    fupin-sim sweep SPEC [--n-jobs J] [--scheduler ADDRESS] [--batch-size B] [--progress|--no-progress] --out DIR
    fupin-sim sensitivity SPEC [--n-jobs J] [--scheduler ADDRESS] [--progress|--no-progress] --out DIR
    fupin-sim calibrate SPEC [--n-jobs J] [--progress] --out DIR
    fupin-sim forecast REGISTER --scenario S --horizon H [--reps R] [--n-jobs J] [--draws CAL] --out DIR
    fupin-sim backtest --scenario S --households N --year T --horizon H [--reps R] --out DIR
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
from collections.abc import Callable
from typing import NamedTuple

from fupin_sim.errors import InputError
from fupin_sim.version import __version__


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


def _jobs(p, what: str = "processes (-1: all cores)") -> None:
    p.add_argument("--n-jobs", type=_n_jobs, default=1, help=f"{what}; results do not depend on it")


def _draws(p, which: str = "replicate r") -> None:
    p.add_argument("--draws", help=f"a calibration folder (or its draws.csv): {which} runs with parameter draw r mod "
                                    "their number, so the results carry parameter uncertainty")


def _instrument_scale(p, text: str) -> None:
    p.add_argument("--instrument-scale", type=_scale, action="append", metavar="INSTRUMENT=FACTOR", help=text)


def _out(p, text: str = "output folder") -> None:
    p.add_argument("--out", required=True, help=text)


# ----------------------------------------------------------------------------- the engine's commands

def run_arguments(p) -> None:
    p.add_argument("scenario", help="a scenario file, or a bundled name such as 'baseline'")
    p.add_argument("--households", type=_positive, help="simulated households (default: the preset's)")
    p.add_argument("--years", help="first-last simulated years, e.g. 2016-2020")
    p.add_argument("--seed", type=_seed, help="random seed (default: the scenario's)")
    p.add_argument("--reps", type=_positive, default=1, help="replicates; more than 1 adds quantile bands")
    _jobs(p, "processes for replicates (-1: all cores)")
    _draws(p)
    p.add_argument("--panel", action="store_true", help="also write the per-household yearly panel")
    _instrument_scale(p, "each year the instrument may draw FACTOR times what it draws in the same run unscaled "
                         "(repeatable; needs a second, unscaled run alongside)")
    _out(p)


def cmd_run(args) -> int:
    from fupin_sim.api import run

    result = run(args.scenario, households=args.households, years=args.years, seed=args.seed, reps=args.reps,
                 panel=args.panel, n_jobs=args.n_jobs, draws=args.draws,
                 instrument_scale=dict(args.instrument_scale or []) or None)
    out = result.write(args.out)
    last, man = result.summary.iloc[-1], result.manifest
    print(f"{man['scenario']} {man['years'][0]}-{man['years'][1]}, seed {man['seed']}, {args.reps} replicate(s)"
          + (f" over {man['parameter_draws']['used']} parameter draw(s)" if args.draws else "")
          + "".join(f", {k} budget × {v:g}" for k, v in (man.get("instrument_scale") or {}).items())
          + f": in {int(last['year'])} {last['registered_poor']:,.0f} registered poor households (the register), "
          f"{last['headcount_ratio']:.1%} of persons under the line (income poverty, as a survey measures it); "
          f"written to {out}")
    return 0


def validate_arguments(p) -> None:
    p.add_argument("files", nargs="+")


def cmd_validate(args) -> int:
    from fupin_sim.scenario import load_scenario

    for f in args.files:
        sc = load_scenario(f)
        print(f"{f}: ok ({sc.name}, {sc.years[0]}-{sc.years[1]}, preset {sc.preset}, hash {sc.hash})")
    return 0


def generate_arguments(p) -> None:
    p.add_argument("--preset", default="inner_mongolia_county")
    p.add_argument("--households", type=_positive)
    p.add_argument("--year", type=int, help="snapshot year (default: the preset's)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--format", choices=("csv", "parquet"), default="csv")
    _out(p)


def cmd_generate(args) -> int:
    from fupin_sim.params import Params
    from fupin_sim.population.register import write_register
    from fupin_sim.population.synthetic import generate

    pop = generate(Params.defaults(args.preset), args.households, seed=args.seed, year=args.year)
    folder = write_register(pop, args.out, fmt=args.format)
    print(f"{len(pop.households):,} households, {len(pop.persons):,} persons (end of {pop.year}) written to {folder}")
    return 0


def diff_arguments(p) -> None:
    p.add_argument("a")
    p.add_argument("b")


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


def params_arguments(p) -> None:
    p.add_argument("--preset", default="inner_mongolia_county")
    p.add_argument("--grep", help="only parameters whose path contains this text")


def cmd_params(args) -> int:
    from fupin_sim.params import Params

    table = Params.defaults(args.preset).table()
    if args.grep:
        table = table[table["parameter"].str.contains(args.grep, regex=False)]
    print(table.to_string(index=False, max_colwidth=60))
    return 0


def report_arguments(p) -> None:
    p.add_argument("folder", help="a result folder written by run, compare, sweep, sensitivity, calibrate, "
                                  "forecast or backtest")
    p.add_argument("--lang", choices=("en", "zh"), default="en", help="language of the labels (default en)")
    p.add_argument("--out", help="where to write report.html and report.xlsx (default: the result folder)")


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


# ----------------------------------------------------------------------------- the experiments' commands

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


def compare_arguments(p) -> None:
    p.add_argument("baseline", help="the baseline scenario: a file, or a bundled name")
    p.add_argument("alternatives", nargs="+", help="alternative scenarios (files or bundled names)")
    p.add_argument("--reps", type=_positive, default=10, help="paired replicates (default 10)")
    p.add_argument("--households", type=_positive, help="simulated households (default: the baseline's)")
    p.add_argument("--years", help="first-last simulated years, e.g. 2016-2020")
    p.add_argument("--seed", type=_seed, help="base seed of the replicates (default: the baseline's)")
    _jobs(p)
    _instrument_scale(p, "scale these instruments' budgets in every alternative (repeatable): e.g. "
                         "'compare baseline baseline --instrument-scale microloan=2'")
    _draws(p, "replicate r of every scenario")
    _out(p)


def cmd_compare(args) -> int:
    from fupin_sim.experiments.compare import compare

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


def sweep_arguments(p) -> None:
    p.add_argument("spec", help="the sweep spec (YAML)")
    _jobs(p, "processes on this machine (-1: all cores)")
    p.add_argument("--scheduler", help="address of a Dask scheduler (e.g. tcp://10.0.0.5:8786) to run on a cluster")
    p.add_argument("--batch-size", type=_positive, help="runs per task (default: automatic)")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="show a progress bar (default: only on a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    _out(p, "output folder (rerun with the same folder to resume)")


def cmd_sweep(args) -> int:
    from fupin_sim.experiments.sweep import run_sweep

    result = run_sweep(args.spec, args.out, n_jobs=args.n_jobs, scheduler=args.scheduler, progress=args.progress,
                       batch_size=args.batch_size)
    ex = result.manifest["execution"]
    redone = f", {ex['redone_unreadable']} unreadable or partial run file(s) redone" if ex["redone_unreadable"] else ""
    print(f"{result.manifest['name']}: {ex['runs']} runs ({len(result.design)} points × "
          f"{result.manifest['replicates']} replicates): {ex['ran']} run now, {ex['reused']} already done{redone}, "
          f"in {ex['wall_seconds']:.1f} s; results in {result.out / 'results.csv'}")
    return 0


def cmd_sensitivity(args) -> int:
    from fupin_sim.experiments.sensitivity import sensitivity

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


def scorecard_arguments(p) -> None:
    p.add_argument("--history", help="a table of published figures (default: the bundled fupin_sim/data/history.csv)")
    p.add_argument("--households", type=_positive, help="simulated households a scenario (default: each preset's)")
    p.add_argument("--reps", type=_positive, default=2, help="replicates a scenario (default 2)")
    p.add_argument("--seed", type=_seed, help="base seed (default: each scenario's)")
    _jobs(p)
    _out(p, "output folder: scorecard.csv, report.html, report-zh.html")


def cmd_scorecard(args) -> int:
    from fupin_sim.experiments.scorecard import scorecard
    from fupin_sim.report.scorecard import render

    result = scorecard(args.history, households=args.households, reps=args.reps, seed=args.seed, n_jobs=args.n_jobs)
    out = result.write(args.out, pages={"report.html": render(result, "en"), "report-zh.html": render(result, "zh")})
    for role, c in result.counts().items():
        print(f"{role}: {c['pass']} pass, {c['miss']} miss")
    for r in result.table[result.table["result"] == "miss"].itertuples():
        print(f"  miss ({r.role}): {r.id}: model {r.model:.4g}, published {r.bound} {r.value:.4g} ± {r.tolerance:.3g}")
    print(f"written to {out}")
    return 0


def calibrate_arguments(p) -> None:
    p.add_argument("spec", help="a calibration spec (YAML), e.g. calibration/jiangsu.yaml")
    _jobs(p, "processes for evaluations (-1: all cores)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=False,
                   help="print a line after each batch of evaluations")
    _out(p, "output folder (rerun into it to resume)")


def cmd_calibrate(args) -> int:
    from fupin_sim.experiments.calibrate import calibrate

    result = calibrate(args.spec, args.out, n_jobs=args.n_jobs, progress=args.progress)
    m = result.manifest
    ex = m["execution"]
    print(f"{m['name']}: distance {m['distance']:.4g}; {m['within_1sd']}/{m['targets']} targets within 1 sd, "
          f"{m['within_2sd']}/{m['targets']} within 2 sd"
          + (f" ({m['comparisons']} comparison figure(s) not fitted: see fit.csv)" if m.get("comparisons") else "")
          + f"; {ex['evaluated']} evaluations run, {ex['reused_from_log']} reused, in {ex['wall_seconds']:.1f} s")
    for label, value in result.best.items():
        print(f"  {label} = {value:.6g}")
    print(f"written to {result.out} (fit.csv, fit.png, fitted.yaml, trials.jsonl)")
    return 0


def forecast_arguments(p) -> None:
    p.add_argument("register", help="register folder (households.csv, persons.csv, register.json)")
    p.add_argument("--scenario", default="consolidation", help="scenario of the forecast years (default: consolidation)")
    p.add_argument("--horizon", type=int, default=3, help="years ahead (default 3)")
    p.add_argument("--reps", type=_positive, default=200, help="replicates (default 200)")
    p.add_argument("--seed", type=_seed, default=0, help="base seed of the replicates (default 0)")
    _jobs(p)
    _draws(p)
    _out(p)


def cmd_forecast(args) -> int:
    from fupin_sim.experiments.draws import read_draws
    from fupin_sim.experiments.forecast import forecast

    sets = read_draws(args.draws) if args.draws else None
    res = forecast(args.register, args.scenario, horizon=args.horizon, reps=args.reps, seed=args.seed,
                   n_jobs=args.n_jobs, parameter_sets=sets, draws_file=args.draws, out=args.out)
    t, h, man = res.table, res.horizon, res.manifest
    w = t["weight"].to_numpy()
    tiers = t["tier"].value_counts()
    print(f"{man['scenario']} {man['years'][0]}-{man['years'][1]} from the register of {man['register_year']} "
          f"({len(t):,} households), {man['reps']} replicates: expected "
          f"{float((t[f'p_within_{h}'] * w).sum()):,.0f} households (weighted) below the line within {h} year(s); "
          f"tiers high {tiers.get('high', 0):,}, medium {tiers.get('medium', 0):,}, low {tiers.get('low', 0):,}; "
          f"written to {args.out}")
    parts = man["parts"]
    if parts["reused"] or parts["redone_damaged"]:
        print(f"resumed: {parts['reused']} of {parts['count']} parts of replicates were already done"
              + (f", {parts['redone_damaged']} damaged part file(s) redone" if parts["redone_damaged"] else ""))
    return 0


def backtest_arguments(p) -> None:
    p.add_argument("--scenario", default="consolidation", help="scenario of the world and the forecast")
    p.add_argument("--households", type=_positive, default=5000, help="households in the world (default 5000)")
    p.add_argument("--year", type=int, default=2020, help="register year t: forecast t+1 … t+h (default 2020)")
    p.add_argument("--horizon", type=int, default=3, help="years ahead (default 3)")
    p.add_argument("--reps", type=_positive, default=100, help="forecast replicates (default 100)")
    p.add_argument("--seed", type=_seed, default=0, help="the world's seed (default 0)")
    _jobs(p)
    _out(p)


def cmd_backtest(args) -> int:
    from fupin_sim.experiments.backtest import backtest

    res = backtest(args.scenario, households=args.households, t=args.year, horizon=args.horizon, reps=args.reps,
                   seed=args.seed, n_jobs=args.n_jobs)
    out = res.write(args.out)
    print(res.headline())
    print(f"written to {out}")
    return 0


# ----------------------------------------------------------------------------- the command table

class Command(NamedTuple):
    help: str
    arguments: Callable  # (argparse parser) -> None
    handler: Callable    # (parsed arguments) -> exit status
    writes_result: bool  # its --out folder is a result the figures are drawn from


COMMANDS = {
    "run": Command("run a scenario and write summary.csv, manifest.json and figures", run_arguments, cmd_run, True),
    "validate": Command("check scenario files without running them", validate_arguments, cmd_validate, False),
    "generate": Command("write a synthetic population as a register (CSV or Parquet)", generate_arguments,
                        cmd_generate, False),
    "diff": Command("show what differs between two scenarios (parameters, interventions, budgets)", diff_arguments,
                    cmd_diff, False),
    "params": Command("list parameters with units, sources and confidence", params_arguments, cmd_params, False),
    "compare": Command("paired comparison of scenarios against a baseline (same seeds)", compare_arguments,
                       cmd_compare, True),
    "sweep": Command("run a parameter sweep from a spec file (resumable)", sweep_arguments, cmd_sweep, True),
    "sensitivity": Command("Sobol' sensitivity indices from a spec file (resumable)", sweep_arguments,
                           cmd_sensitivity, True),
    "report": Command("an HTML page and an Excel workbook from any result folder", report_arguments, cmd_report,
                      False),
    "scorecard": Command("the bundled scenarios against published figures (pass or miss)", scorecard_arguments,
                         cmd_scorecard, False),
    "calibrate": Command("fit parameters to observed targets (simulated moments)", calibrate_arguments,
                         cmd_calibrate, True),
    "forecast": Command("per-household risk of falling below the line within h years", forecast_arguments,
                        cmd_forecast, True),
    "backtest": Command("score the forecast on a simulated world against monitoring rules", backtest_arguments,
                        cmd_backtest, True),
}


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="fupin-sim", description="Poverty-alleviation microsimulation (扶贫).")
    ap.add_argument("--version", action="version", version=f"fupin-sim {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    for name, command in COMMANDS.items():
        command.arguments(sub.add_parser(name, help=command.help))
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = COMMANDS[args.command]
    try:
        status = command.handler(args)
        if status == 0 and command.writes_result:
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
