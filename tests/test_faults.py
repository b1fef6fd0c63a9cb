"""Faults: the real commands killed with SIGKILL at seeded random moments and rerun; damaged
files planted where a kill or a full disk could leave them; a real full disk (a small tmpfs)
and a real read-only folder (a read-only bind mount) in a private mount namespace; output
paths that cannot leave the chosen folder.

`tests/killing.py` holds the kill-and-check machinery; `scripts/soak.py` runs it with many
more kill points (not in CI)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import fupin_sim as fs
from fupin_sim.errors import InputError
from killing import (CAL_SPEC, CAL_TARGETS, SWEEP_SPEC, calibrate_job, cli, env, forecast_job, kill_and_resume,
                     same_output, sweep_job)

ROOT = Path(__file__).resolve().parents[1]
KILL_SEED = 9  # the kill moments are drawn from this seed: the same moments in every CI run
KILLS = 3      # per command: one timed from the process start, two inside the work


# --------------------------------------------------------------------------------------
# SIGKILL at random moments, then rerun: nothing finished lost or duplicated, nothing partial read
# --------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("make", [sweep_job, calibrate_job, forecast_job], ids=["sweep", "calibrate", "forecast"])
def test_killed_at_random_moments_and_rerun_gives_the_uninterrupted_outputs(tmp_path, make):
    job = make(tmp_path)
    stats = kill_and_resume(job, tmp_path / "killed", np.random.default_rng([KILL_SEED, len(job.name)]), KILLS)
    assert stats["killed"] + stats["finished_before_kill"] == KILLS
    # the kills inside the work come after a seeded number of units: some landed mid-way
    assert any(0 < n < job.extra["units"] for n in stats["units_after_each_kill"]), stats


# --------------------------------------------------------------------------------------
# What a kill or a full disk can leave, planted by hand (the kills above rarely land there)
# --------------------------------------------------------------------------------------

def _cal_spec(folder: Path, **changes) -> Path:
    (folder / "t.csv").write_text(CAL_TARGETS)
    spec = {**CAL_SPEC, "households": 200, "abc": None,
            "optimizer": {"popsize": 3, "maxiter": 1, "seed": 1, "polish": "none"}, **changes}
    path = folder / "cal.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in spec.items() if v is not None}))
    return path


def test_a_trial_line_cut_short_is_dropped_not_glued_to_the_next_record(tmp_path):
    """Before the fix, the next append continued the fragment's line, so the first record
    written after a kill was unreadable at the following resume and evaluated again."""
    from fupin_sim.experiments.calibrate import calibrate

    spec = _cal_spec(tmp_path)
    clean = calibrate(spec, tmp_path / "clean")
    n = clean.manifest["execution"]["evaluated"]
    out = tmp_path / "cut"
    shutil.copytree(tmp_path / "clean", out)
    (out / "result.json").unlink()
    lines = (out / "trials.jsonl").read_bytes().split(b"\n")[:-1]
    keep = n // 2
    (out / "trials.jsonl").write_bytes(b"\n".join(lines[:keep]) + b"\n" + lines[keep][:37])  # killed mid-line
    first = calibrate(spec, out)
    assert first.manifest["execution"]["evaluated"] == n - keep
    assert first.manifest["execution"]["log_partial_line_dropped_bytes"] == 37
    log = (out / "trials.jsonl").read_text().splitlines()
    assert len(log) == n and len({json.loads(x)["key"] for x in log}) == n  # every line whole, none twice
    again = calibrate(spec, out)
    assert again.manifest["execution"]["evaluated"] == 0
    for name in ("fit.csv", "fitted.yaml"):
        assert same_output(out / name, tmp_path / "clean" / name), name


@pytest.mark.slow
def test_damaged_forecast_parts_are_redone_never_read(tmp_path):
    from fupin_sim.experiments import forecast as F

    pop = fs.generate(fs.Params.defaults(), 300, seed=2, year=2020)
    clean = F.forecast(pop, "consolidation", 2, 24, seed=1, out=tmp_path / "clean")
    assert not (tmp_path / "clean" / "parts").exists()  # removed once the outputs are in place
    keep, F.PartStore.clear = F.PartStore.clear, lambda self, ranges: None
    try:
        F.forecast(pop, "consolidation", 2, 24, seed=1, out=tmp_path / "damaged")
    finally:
        F.PartStore.clear = keep
    parts = sorted((tmp_path / "damaged" / "parts").glob("part_*.npz"))
    assert len(parts) == len(F.part_ranges(24)) == 8
    parts[0].write_bytes(parts[0].read_bytes()[:-100])                      # cut short
    data = bytearray(parts[1].read_bytes())
    data[len(data) // 2] ^= 0xFF                                             # one byte flipped inside
    parts[1].write_bytes(bytes(data))
    shutil.copy(parts[3], tmp_path / "keep.npz")
    F.PartStore.clear = lambda self, ranges: None
    try:
        other = F.forecast(pop, "consolidation", 2, 24, seed=2, out=tmp_path / "other")
    finally:
        F.PartStore.clear = keep
    assert other.manifest["forecast_key"] != clean.manifest["forecast_key"]
    shutil.copy(sorted((tmp_path / "other" / "parts").glob("part_*.npz"))[2], parts[2])  # another forecast's
    os.unlink(parts[4])
    os.symlink(tmp_path / "keep.npz", parts[4])                           # a link: never followed
    (parts[0].parent / f".{parts[5].name}.x1y2.tmp").write_bytes(b"PK")   # a kill mid-write
    for p in (tmp_path / "damaged").iterdir():
        if p.is_file():
            p.unlink()
    res = F.forecast(pop, "consolidation", 2, 24, seed=1, out=tmp_path / "damaged")
    assert res.manifest["parts"] == {"count": 8, "reused": 4, "ran": 4, "redone_damaged": 4}
    for name in ("risk.csv", "aggregate.csv"):
        assert (tmp_path / "damaged" / name).read_bytes() == (tmp_path / "clean" / name).read_bytes()
    assert not (tmp_path / "damaged" / "parts").exists()
    assert (tmp_path / "keep.npz").exists()  # the link was replaced, not followed


def test_a_kill_while_claiming_the_folder_does_not_lock_it(tmp_path):
    """A process killed between creating the folder and renaming its marker into place leaves
    only the marker's temporary file; the rerun must not take the folder for someone else's."""
    from fupin_sim.experiments.sweep import run_sweep

    spec = {**SWEEP_SPEC, "households": 100, "design": {"type": "latin_hypercube", "samples": 2}, "replicates": 1}
    out = tmp_path / "out"
    out.mkdir()
    (out / ".sweep.json.k3j9.tmp").write_text('{"kind": "sw')
    res = run_sweep(spec, out)
    assert res.manifest["execution"]["ran"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["design.csv", "manifest.json", "results.csv", "runs",
                                                      "sweep.json"]


def test_a_kill_between_renames_leaves_no_manifest_beside_new_tables(tmp_path, monkeypatch):
    """`commit_files` writes every file in full first, removes the old manifest, renames the
    files, the manifest last: a kill (here an exception) in between leaves no manifest, so an
    incomplete mix of an old and a new result is never taken for a finished one."""
    from fupin_sim import files

    out = tmp_path / "out"
    files.commit_files(out, {"a.csv": lambda t: t.write_text("old a"), "b.csv": lambda t: t.write_text("old b"),
                             "manifest.json": lambda t: t.write_text("{}")})
    real, calls = os.replace, []

    def dying(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stands for SIGKILL between two renames
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", dying)
    with pytest.raises(KeyboardInterrupt):
        files.commit_files(out, {"a.csv": lambda t: t.write_text("new a"), "b.csv": lambda t: t.write_text("new b"),
                                 "manifest.json": lambda t: t.write_text('{"new": 1}')})
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.csv"]  # no manifest, no temporary file
    assert (out / "a.csv").read_text() == "new a" and (out / "b.csv").read_text() == "old b"


def test_a_register_write_that_fails_leaves_the_previous_register_readable(tmp_path, monkeypatch):
    """`fupin-sim generate` into a folder holding a register: a failure while writing (a full
    disk) leaves the old register whole; one between renames leaves no register.json, so
    the half-replaced folder is refused rather than read."""
    import pandas as pd

    from fupin_sim import files

    old = fs.generate(fs.Params.defaults(), 40, seed=1, year=2020)
    folder = fs.write_register(old, tmp_path / "reg")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real_to_csv = pd.DataFrame.to_csv

    def full(frame, path, **kw):
        if "persons" in str(path):
            raise OSError(28, "No space left on device", str(path))
        return real_to_csv(frame, path, **kw)

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    new = fs.generate(fs.Params.defaults(), 50, seed=2, year=2020)
    with pytest.raises(OSError, match="No space left") as err:
        fs.write_register(new, folder)
    assert err.value.filename == str(folder / "persons.csv")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert len(fs.read_register(folder).households) == 40
    monkeypatch.undo()
    real, calls = os.replace, []

    def dying(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(src, dst)

    monkeypatch.setattr(files.os, "replace", dying)
    with pytest.raises(KeyboardInterrupt):
        fs.write_register(new, folder)
    monkeypatch.undo()
    with pytest.raises(InputError, match="the writing was interrupted"):
        fs.read_register(folder)


def test_outputs_have_ordinary_file_permissions(tmp_path):
    mask = os.umask(0)
    os.umask(mask)
    out = fs.run("no_policy", households=50, years=(2016, 2016)).write(tmp_path / "r")
    for p in out.iterdir():
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask, p


# --------------------------------------------------------------------------------------
# A real full disk and a real read-only folder (a private mount namespace: nothing leaks out)
# --------------------------------------------------------------------------------------

def _namespaces() -> str | None:
    """Why mounts cannot be made here, or None when they can."""
    if not shutil.which("unshare") or not shutil.which("mount"):
        return "unshare or mount is not installed"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d && umount $d && rmdir $d"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"no private mount namespace here: {probe.stderr.strip()}"


NO_MOUNTS = _namespaces()
needs_mounts = pytest.mark.skipif(NO_MOUNTS is not None, reason=NO_MOUNTS or "")


def _in_namespace(tmp_path: Path, script: str) -> dict:
    """Run a shell script in a private mount namespace (its mounts vanish with it); `$D` is an
    empty folder to mount on, `$T` a folder outside the mounts, `run NAME ARGS...` runs
    `fupin-sim ARGS` and keeps its exit status and stderr as NAME.rc and NAME.err in $T.
    Returns {NAME: (status, stderr)}."""
    d, t = tmp_path / "mnt", tmp_path / "t"
    d.mkdir()
    t.mkdir()
    py = " ".join(cli())
    prelude = (f'set -u\nD="{d}"\nT="{t}"\n'
               f'run() {{ name=$1; shift; {py} "$@" >"$T/$name.out" 2>"$T/$name.err"; echo $? >"$T/$name.rc"; }}\n')
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", prelude + script], cwd=ROOT,
                          env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return {p.stem: (int(p.read_text()), (t / f"{p.stem}.err").read_text()) for p in t.glob("*.rc")}


def _one_line(err: str, path: Path, cause: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"fupin-sim: error: {path}") and err.rstrip().endswith(cause), err


@needs_mounts
@pytest.mark.slow
def test_a_full_disk_and_a_read_only_folder_are_one_line_and_keep_the_previous_result(tmp_path):
    run = "run no_policy --households 50 --years 2016-2016"
    got = _in_namespace(tmp_path, f"""
mount -t tmpfs -o size=2m tmpfs "$D"
run first {run} --out "$D/res"
cp -a "$D/res" "$T/before"
head -c 10000000 /dev/zero > "$D/filler" 2>/dev/null || true      # the disk is now full
run full {run} --seed 9 --out "$D/res"
ls -a "$D/res" > "$T/after-full.txt"; cp -a "$D/res" "$T/after-full"
rm "$D/filler"; mount -o remount,ro "$D"                           # now read-only
run readonly {run} --seed 9 --out "$D/res"
run readonly_new {run} --out "$D/new"
cp -a "$D/res" "$T/after-ro"
""")
    t = tmp_path / "t"
    assert got["first"][0] == 0, got["first"]
    status, err = got["full"]
    assert status == 2
    _one_line(err, tmp_path / "mnt" / "res" / "", "No space left on device")
    status, err = got["readonly"]
    assert status == 2
    _one_line(err, tmp_path / "mnt" / "res" / "", "Read-only file system")
    status, err = got["readonly_new"]
    assert status == 2
    _one_line(err, tmp_path / "mnt" / "new", "Read-only file system")
    before = sorted(p.name for p in (t / "before").iterdir())
    listing = sorted(x for x in (t / "after-full.txt").read_text().split() if x not in (".", ".."))
    assert listing == before  # no temporary file left
    for folder in ("after-full", "after-ro"):
        for name in before:
            assert (t / folder / name).read_bytes() == (t / "before" / name).read_bytes(), (folder, name)


@needs_mounts
@pytest.mark.slow
def test_a_disk_that_fills_mid_way_then_frees_loses_nothing(tmp_path):
    """Sweep, calibration and forecast on a tmpfs too small for them: each stops with one line
    naming a file; after the space is freed (remount bigger) the rerun resumes and ends with
    the outputs of an uninterrupted run, with no run, trial or part lost or duplicated."""
    spec = dict(SWEEP_SPEC, households=100, design={"type": "latin_hypercube", "samples": 15})
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    cal = _cal_spec(tmp_path, households=100, optimizer={"popsize": 5, "maxiter": 2, "seed": 1, "polish": "none"})
    pop = fs.generate(fs.Params.defaults(), 200, seed=2, year=2020)
    fs.write_register(pop, tmp_path / "reg")
    from fupin_sim.experiments.calibrate import calibrate
    from fupin_sim.experiments.forecast import forecast
    from fupin_sim.experiments.sweep import run_sweep

    run_sweep(tmp_path / "sweep.yaml", tmp_path / "sweep-clean")
    cal_clean = calibrate(cal, tmp_path / "cal-clean")
    forecast(tmp_path / "reg", "consolidation", 2, 20, seed=0, out=tmp_path / "fc-clean")
    got = _in_namespace(tmp_path, f"""
for job in sweep cal fc; do
  mkdir "$D/$job"
done
mount -t tmpfs -o size=40k tmpfs "$D/sweep"
mount -t tmpfs -o size=12k tmpfs "$D/cal"
mount -t tmpfs -o size=80k tmpfs "$D/fc"
run sweep1 sweep "{tmp_path / 'sweep.yaml'}" --no-progress --out "$D/sweep/o"
ls "$D/sweep/o/runs" | wc -l > "$T/sweep_runs.txt"
run cal1 calibrate "{cal}" --out "$D/cal/o"
run fc1 forecast "{tmp_path / 'reg'}" --scenario consolidation --horizon 2 --reps 20 --out "$D/fc/o"
for job in sweep cal fc; do mount -o remount,size=20m "$D/$job"; done
run sweep2 sweep "{tmp_path / 'sweep.yaml'}" --no-progress --out "$D/sweep/o"
run cal2 calibrate "{cal}" --out "$D/cal/o"
run fc2 forecast "{tmp_path / 'reg'}" --scenario consolidation --horizon 2 --reps 20 --out "$D/fc/o"
for job in sweep cal fc; do cp -a "$D/$job/o" "$T/$job"; done
""")
    t, mnt = tmp_path / "t", tmp_path / "mnt"
    for first, folder in (("sweep1", "sweep"), ("cal1", "cal"), ("fc1", "fc")):
        status, err = got[first]
        assert status == 2, (first, got[first])
        _one_line(err, mnt / folder / "o", "No space left on device")
    assert 0 < int((t / "sweep_runs.txt").read_text()) < 30  # stopped mid-way
    for second in ("sweep2", "cal2", "fc2"):
        assert got[second][0] == 0, (second, got[second])
    assert (t / "sweep" / "results.csv").read_bytes() == (tmp_path / "sweep-clean" / "results.csv").read_bytes()
    man = json.loads((t / "sweep" / "manifest.json").read_text())
    assert man["execution"]["reused"] > 0 and man["execution"]["reused"] + man["execution"]["ran"] == 30
    for name in ("fit.csv", "fitted.yaml"):
        data = (t / "cal" / name).read_bytes().replace(str(mnt / "cal" / "o").encode(),
                                                       str(tmp_path / "cal-clean").encode())
        assert data == (tmp_path / "cal-clean" / name).read_bytes(), name
    keys = [json.loads(x)["key"] for x in (t / "cal" / "trials.jsonl").read_text().splitlines()]
    assert len(keys) == len(set(keys)) == cal_clean.manifest["execution"]["evaluated"]
    result = json.loads((t / "cal" / "result.json").read_text())
    assert 0 < result["execution"]["log_entries_at_start"] < len(keys)
    for name in ("risk.csv", "aggregate.csv"):
        assert (t / "fc" / name).read_bytes() == (tmp_path / "fc-clean" / name).read_bytes()
    assert json.loads((t / "fc" / "manifest.json").read_text())["parts"]["reused"] > 0


# --------------------------------------------------------------------------------------
# Output paths cannot escape the chosen folder
# --------------------------------------------------------------------------------------

def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_names_from_user_input_never_become_paths(tmp_path):
    """Scenario, sweep and calibration names, run labels and the like are text in tables and
    manifests: every output file name is fixed or generated (run ids, part ranges). Hostile
    names write nothing outside --out."""
    from fupin_sim.experiments.calibrate import calibrate
    from fupin_sim.experiments.sweep import run_sweep

    work = tmp_path / "work"
    work.mkdir()
    hostile = ["../../escaped", str(tmp_path / "abs_escaped"), "a/../../b"]
    base = yaml.safe_load((ROOT / "scenarios" / "no_policy.yaml").read_text(encoding="utf-8"))
    for i, name in enumerate(hostile):
        sc = dict(base, name=name, extends="no_policy")
        sc.pop("description", None)
        path = work / f"sc{i}.yaml"
        path.write_text(yaml.safe_dump(sc, allow_unicode=True), encoding="utf-8")
        res = fs.run(fs.load_scenario(path).edit(households=30, years=(2016, 2016)))
        res.write(work / f"run{i}")
        spec = dict(SWEEP_SPEC, name=name, scenario=str(path), households=30, years=[2016, 2016],
                    design={"type": "latin_hypercube", "samples": 2}, replicates=1)
        run_sweep(spec, work / f"sweep{i}")
    calibrate(_cal_spec(work, name="../../escaped_cal"), work / "cal")
    outside = _tree(tmp_path) - {"work"} - {f"work/{p}" for p in _tree(work)}
    assert outside == set(), outside
    assert not (tmp_path / "abs_escaped").exists() and not (tmp_path.parent / "escaped").exists()


@pytest.mark.slow
def test_a_link_planted_in_the_output_folder_is_replaced_or_refused_never_followed(tmp_path):
    from fupin_sim.experiments.calibrate import calibrate
    from fupin_sim.experiments.forecast import forecast
    from fupin_sim.experiments.sweep import run_sweep

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.csv").write_text("keep me")
    spec = dict(SWEEP_SPEC, households=50, design={"type": "latin_hypercube", "samples": 2}, replicates=1)

    # a link at a final file name: replaced by the rename, the target untouched
    out = tmp_path / "run"
    out.mkdir()
    (out / "summary.csv").symlink_to(victim / "precious.csv")
    fs.run("no_policy", households=30, years=(2016, 2016)).write(out)
    assert not (out / "summary.csv").is_symlink() and (victim / "precious.csv").read_text() == "keep me"

    # a link where a subfolder goes: refused before any run
    run_sweep(spec, tmp_path / "sweep")
    shutil.rmtree(tmp_path / "sweep" / "runs")
    (tmp_path / "sweep" / "runs").symlink_to(victim)
    with pytest.raises(InputError, match="runs: is a symbolic link"):
        run_sweep(spec, tmp_path / "sweep")
    (tmp_path / "fc").mkdir()
    (tmp_path / "fc" / "parts").symlink_to(victim)
    pop = fs.generate(fs.Params.defaults(), 50, seed=2, year=2020)
    with pytest.raises(InputError, match="parts: is a symbolic link"):
        forecast(pop, "consolidation", 1, 2, out=tmp_path / "fc")

    # a link at the trial log (appended to) and at a folder's marker: refused
    spec_path = _cal_spec(tmp_path)
    calibrate(spec_path, tmp_path / "cal")
    (tmp_path / "cal" / "trials.jsonl").unlink()
    (tmp_path / "cal" / "trials.jsonl").symlink_to(victim / "precious.csv")
    with pytest.raises(InputError, match="trials.jsonl: is a symbolic link"):
        calibrate(spec_path, tmp_path / "cal")
    (tmp_path / "sweep2").mkdir()
    (tmp_path / "sweep2" / "sweep.json").symlink_to(tmp_path / "sweep" / "sweep.json")
    with pytest.raises(InputError, match="sweep.json: is a symbolic link"):
        run_sweep(spec, tmp_path / "sweep2")

    # a link at one run file: not read, redone, replaced
    run_sweep(spec, tmp_path / "sweep3")
    first = sorted((tmp_path / "sweep3" / "runs").glob("*.json"))[0]
    first.unlink()
    first.symlink_to(victim / "precious.csv")
    res = run_sweep(spec, tmp_path / "sweep3")
    assert res.manifest["execution"]["ran"] == 1 and not first.is_symlink()
    assert sorted(p.name for p in victim.iterdir()) == ["precious.csv"]
    assert (victim / "precious.csv").read_text() == "keep me"


def test_plain_names_only():
    from fupin_sim.files import plain_name

    for bad in ("../x", "/etc/passwd", "a/b", "a\\b", "..", ".", "", "x\0y"):
        with pytest.raises(InputError, match="not a plain file name"):
            plain_name(bad)
    assert plain_name("results.csv") == "results.csv"


def test_the_cli_reports_a_refused_link_in_one_line(tmp_path, capsys):
    from fupin_sim.cli import main

    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "parts").symlink_to(tmp_path)
    folder = fs.write_register(fs.generate(fs.Params.defaults(), 30, seed=2, year=2020), tmp_path / "reg")
    assert main(["forecast", str(folder), "--horizon", "1", "--reps", "2", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fupin-sim: error: {tmp_path / 'o' / 'parts'}: is a symbolic link") and err.count("\n") == 1


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
