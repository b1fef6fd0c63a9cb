"""Render a report of every result kind from the bundled scenarios and specs, in English and
Chinese, and screenshot each page in headless Chromium (when installed), to look at them as
a planner would. Not run in CI (a few minutes); run it after changing plots or report:

    python3 scripts/render_reports.py [--out runs/reports] [--households 4000]

Writes OUT/<kind>/ (the result folder with its report-*.html, report-*.xlsx and PNG figures)
and OUT/screenshots/<kind>-<lang>.png."""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fupin_sim.cli import main  # noqa: E402

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]


def commands(out: Path, households: int) -> dict[str, list[str]]:
    sweeps = ROOT / "scenarios" / "sweeps"
    h = str(households)
    return {
        "run": ["run", "consolidation", "--households", h],
        "ensemble": ["run", "consolidation", "--households", h, "--reps", "20", "--n-jobs", "2"],
        "compare": ["compare", "consolidation", "health_heavy", "loans_heavy", "jobs_heavy", "relocation_heavy",
                    "withdrawn", "--households", h, "--reps", "10", "--n-jobs", "2"],
        "sweep": ["sweep", str(sweeps / "baseline_sweep.yaml"), "--n-jobs", "2", "--no-progress"],
        "sensitivity": ["sensitivity", str(sweeps / "baseline_sensitivity.yaml"), "--n-jobs", "2", "--no-progress"],
        "calibrate": ["calibrate", str(ROOT / "calibration" / "jiangsu.yaml"), "--n-jobs", "2"],
        "forecast": ["forecast", str(out / "register"), "--scenario", "consolidation", "--reps", "100", "--n-jobs", "2"],
        "backtest": ["backtest", "--households", h, "--reps", "50", "--n-jobs", "2"],
    }


def screenshot(page: Path, png: Path) -> bool:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        return False
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1280,6000",
                        f"--screenshot={png}", page.resolve().as_uri()], capture_output=True, timeout=120)
    return png.exists()


def main_(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "reports"))
    ap.add_argument("--households", type=int, default=4000)
    ap.add_argument("--only", nargs="*", help="kinds to render (default: all)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    shots = out / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    if not args.only or "forecast" in args.only:  # a register of 2020 to forecast from
        assert main(["generate", "--households", str(args.households), "--year", "2020", "--seed", "7",
                     "--out", str(out / "register")]) == 0
    for kind, argv_ in commands(out, args.households).items():
        if args.only and kind not in args.only:
            continue
        t0 = time.perf_counter()
        folder = out / kind
        assert main([*argv_, "--out", str(folder)]) == 0, kind
        for lang in ("en", "zh"):
            assert main(["report", str(folder), "--lang", lang]) == 0
            page = folder / f"report{'' if lang == 'en' else '-' + lang}.html"
            shot = screenshot(page, shots / f"{kind}-{lang}.png")
            print(f"{kind} {lang}: {page}" + (f", screenshot {shots / f'{kind}-{lang}.png'}" if shot else ""))
        print(f"{kind}: {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main_())
