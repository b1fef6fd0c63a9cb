"""Start the planner page (fupin_sim/mesa_page.py) and use it in headless Chromium as a
planner would; tests/test_mesa_page_browser.py runs the same check under pytest.

    python3 -m pip install ".[page-test]"                # solara, solara-assets, playwright
    python3 scripts/mesa_page_browser_check.py           # Chromium from PATH (Debian: apt-get install chromium)
    python3 scripts/mesa_page_browser_check.py --chromium /usr/bin/chromium --shots /tmp/page

Steps: `solara run fupin_sim.mesa_page` on a free local port; open it; the controls, the
four charts and "baseline ... not started" appear, and no request to the page's own server failed (solara's
front end must come from the install, not from a CDN); pick the jiangsu scenario; move the
"provincial special" slider with the keyboard and "All budgets" with a mouse click; open
"Budget per instrument" and move "industry menu" with the keyboard; Reset rebuilds the model
with those values; Step twice: both tables (the yearly metrics, spending by instrument) equal
a FupinModel run in this process with the same keywords (and differ from the default
settings', and industry menu's spending from the run without its slider, so the sliders
mattered) and the charts gain their lines; ▶ runs to 2020. Screenshots (at the
start, of the open instrument panel, at the end, and of the tables) and the server's log go to --shots. Exit status 0
when every check passed.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO, KEYBOARD_SLIDER, KEYBOARD_VALUE, MOUSE_SLIDER, MOUSE_VALUE = (
    "jiangsu", "provincial special ×", 0.3, "All budgets ×", 0.5)
INSTRUMENT, INSTRUMENT_VALUE = "industry_menu", 2.0  # its slider is in the "Budget per instrument" panel
INSTRUMENT_SLIDER = INSTRUMENT.replace("_", " ") + " ×"
# run as root in a container with no network: no sandbox, no GPU, and none of Chromium's
# own background connections, which this machine's closed network refuses
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERIES_RGB = {"Households": (214, 39, 40), "Exits": (44, 160, 44), "Poverty": (31, 119, 180),
              "Spending": (140, 86, 75)}  # tab:red, tab:green, tab:blue, tab:brown: one per chart


def find_chromium() -> str | None:
    """A Chromium or Chrome executable: $FUPIN_CHROMIUM, else the first on PATH."""
    if os.environ.get("FUPIN_CHROMIUM"):
        return os.environ["FUPIN_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, server: subprocess.Popen, log_path: Path) -> str:
    end = time.time() + timeout
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"solara exited with {server.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode("utf-8", "replace")
        except OSError:
            if time.time() > end:
                raise TimeoutError(f"{url} did not answer in {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)


def expected_tables(**settings):
    """The tables the page should show after two steps ((yearly metrics, spending by
    instrument), formatted as the page formats them), from plain FupinModel runs in this
    process with `settings` as keywords (not the page's PlannerModel: this also checks how the
    page maps its sliders), and for comparison the default settings' and those without
    `instrument_scale`."""
    import warnings

    sys.path.insert(0, str(ROOT))
    with warnings.catch_warnings():  # solara's hook check on Mesa's own SolaraViz code
        warnings.simplefilter("ignore", UserWarning)
        from fupin_sim.mesa_model import DEFAULT_METRICS, FupinModel
        from fupin_sim.mesa_page import instrument_metrics, instrument_table, year_table

    def two_years(**kw):
        model = FupinModel(SCENARIO, households=2000, seed=1, metrics=[*DEFAULT_METRICS, *instrument_metrics(SCENARIO)],
                           **kw)
        model.step(), model.step()
        frame = model.datacollector.get_model_vars_dataframe()
        return year_table(frame).to_dict("list"), instrument_table(model, frame).to_dict("list")

    without = {k: v for k, v in settings.items() if k != "instrument_scale"}
    return two_years(**settings), two_years(), two_years(**without)


def colour_pixels(png: bytes, rgb, tol: int = 30) -> int:
    """How many pixels of a chart are within tol of a series colour (its line and markers)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return int((np.abs(pixels - np.array(rgb)).max(axis=2) <= tol).sum())


def table(page, heading="headcount"):
    """A table (the first with `heading` among its headings: the yearly metrics by default) as
    {heading: [cell texts]}, read from the cells' title attributes."""
    return page.evaluate("""(heading) => {
        const t = [...document.querySelectorAll('table')].find(t =>
            [...t.querySelectorAll('thead th')].some(th => th.innerText.trim() == heading));
        if (!t) return null;
        const heads = [...t.querySelectorAll('thead th')].map(th => th.innerText.trim()).slice(1);
        const rows = [...t.querySelectorAll('tbody tr')].map(tr =>
            [...tr.querySelectorAll('td[title]')].map(td => td.getAttribute('title')));
        return Object.fromEntries(heads.map((h, i) => [h, rows.map(r => r[i])]));
    }""", heading)


def browser_check(url: str, chromium: str | None, shots: Path, timeout_ms: int, say) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=timeout_ms)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(headless=True, executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(timeout_ms)
        local_failures = []
        page.on("response", lambda r: r.url.startswith(url) and r.status >= 400
                and local_failures.append(f"{r.status} {r.url}"))
        page.on("requestfailed", lambda r: r.url.startswith(url) and local_failures.append(f"{r.failure} {r.url}"))
        try:
            page.goto(url)
            header = page.get_by_text("households, seed")
            expect(header).to_have_text("baseline, 2000 households, seed 1: not started, runs 2016–2020")
            charts = page.locator("img")
            expect(charts).to_have_count(4)
            for title in ("Controls", "Model Parameters", "Scenario"):
                expect(page.get_by_text(title, exact=True).first).to_be_visible()
            page.wait_for_load_state("networkidle")
            assert not local_failures, ("requests to the page's own server failed (solara's front-end assets "
                                        "missing? pip install solara-assets):\n" + "\n".join(local_failures))
            page.screenshot(path=str(shots / "mesa_page_start.png"))
            say("page loaded: controls, four charts, baseline not started; every request to the server succeeded")

            page.locator(".v-select").filter(has_text="Scenario").locator(".v-input__slot").click()
            page.get_by_role("option", name=SCENARIO, exact=True).click()
            expect(page.locator(".v-select").filter(has_text="Scenario")).to_contain_text(SCENARIO)

            keyboard = page.get_by_role("slider", name=KEYBOARD_SLIDER, exact=True)
            keyboard.focus()
            for _ in range(20):
                if float(keyboard.get_attribute("aria-valuenow")) <= KEYBOARD_VALUE + 1e-9:
                    break
                keyboard.press("ArrowLeft")
                page.wait_for_timeout(60)
            mouse = page.get_by_role("slider", name=MOUSE_SLIDER, exact=True)
            track = page.locator(".v-slider").filter(has=mouse)
            box = track.bounding_box()
            fraction = MOUSE_VALUE / 3.0  # the budget sliders run from 0 to 3
            track.click(position={"x": box["width"] * fraction, "y": box["height"] / 2})
            clicked = float(mouse.get_attribute("aria-valuenow"))
            for _ in range(10):  # a click lands within a step or two; the arrows finish the move
                value = float(mouse.get_attribute("aria-valuenow"))
                if abs(value - MOUSE_VALUE) < 1e-9:
                    break
                mouse.press("ArrowLeft" if value > MOUSE_VALUE else "ArrowRight")
                page.wait_for_timeout(60)
            page.get_by_text(f"instruments of {SCENARIO}").click()  # open the panel
            instrument = page.get_by_role("slider", name=INSTRUMENT_SLIDER, exact=True)
            instrument.focus()
            for _ in range(30):
                if float(instrument.get_attribute("aria-valuenow")) >= INSTRUMENT_VALUE - 1e-9:
                    break
                instrument.press("ArrowRight")
                page.wait_for_timeout(60)
            values = {s: float(page.get_by_role("slider", name=s, exact=True).get_attribute("aria-valuenow"))
                      for s in (KEYBOARD_SLIDER, MOUSE_SLIDER, INSTRUMENT_SLIDER)}
            assert values == {KEYBOARD_SLIDER: KEYBOARD_VALUE, MOUSE_SLIDER: MOUSE_VALUE,
                              INSTRUMENT_SLIDER: INSTRUMENT_VALUE}, values
            page.locator(".v-card").filter(has_text="Budget per instrument").screenshot(
                path=str(shots / "mesa_page_instruments.png"))
            say(f"picked {SCENARIO}; sliders moved: {values} (the click set {MOUSE_SLIDER} to {clicked:g})")

            # the sliders' last changes may still be on their way to the server: Reset again
            # until the rebuilt model reports them (it says what it was built with)
            budgets = page.get_by_text("Budgets:")
            wanted = f"all budgets × {MOUSE_VALUE:g}, central special × 1, integrated agriculture × 1, " \
                     f"provincial special × {KEYBOARD_VALUE:g}, east west × 1, {INSTRUMENT_SLIDER} {INSTRUMENT_VALUE:g}"
            for attempt in range(1, 4):
                page.get_by_role("button", name="Reset").click()
                try:
                    expect(budgets).to_have_text("Budgets: " + wanted, timeout=5000)
                    break
                except AssertionError:
                    if attempt == 3:
                        raise
            expect(header).to_have_text(f"{SCENARIO}, 2000 households, seed 1: not started, runs 2016–2020")
            say(f"Reset rebuilt the model with the sliders' values (attempt {attempt}): {wanted}")

            before = [charts.nth(i).screenshot() for i in range(4)]
            for year in (2016, 2017):
                page.get_by_role("button", name="Step").click()
                expect(header).to_contain_text(f"year {year} of")
            (expected, spending), (default, _), (_, unscaled) = expected_tables(
                budget_scale=MOUSE_VALUE, **{"budget_scale.provincial_special": KEYBOARD_VALUE},
                instrument_scale={INSTRUMENT: INSTRUMENT_VALUE})
            assert expected != default, "these slider settings change nothing: the check would prove nothing"
            row = spending["instrument"].index(INSTRUMENT.replace("_", " "))
            years = [k for k in spending if k.isdigit()]
            ours, at_one = ([t[y][row] for y in years] for t in (spending, unscaled))
            assert ours != at_one, f"{INSTRUMENT}'s slider changes nothing: the check would prove nothing"
            page.wait_for_function("() => [...document.querySelectorAll('table tbody tr')].length >= 2")
            shown = table(page)
            assert shown == expected, f"the page's table:\n{shown}\na FupinModel run's:\n{expected}"
            shown = table(page, "budget")
            assert shown == spending, f"the page's spending by instrument:\n{shown}\na FupinModel run's:\n{spending}"
            say(f"Step ×2: the table equals a FupinModel run with the same settings (poor {expected['poor']}, "
                f"spent {expected['spent m¥']} m yuan; default settings: {default['poor']}, "
                f"{default['spent m¥']}); so does spending by instrument: {INSTRUMENT} {ours} m yuan at "
                f"× {INSTRUMENT_VALUE:g}, {at_one} at × 1")

            page.wait_for_timeout(500)  # let the charts' new images arrive
            after = [charts.nth(i).screenshot() for i in range(4)]
            grown = {}
            for i, (name, rgb) in enumerate(SERIES_RGB.items()):
                grown[name] = colour_pixels(after[i], rgb) - colour_pixels(before[i], rgb)
                assert after[i] != before[i] and grown[name] > 50, f"the {name} chart did not draw its line: {grown}"
            say(f"charts updated: each drew its series' line (pixels of its colour added: {grown})")

            page.get_by_role("button", name="▶").click()
            # households formed in the run (分户) are counted: the number grows from 2000
            expect(header).to_have_text(re.compile(rf"{SCENARIO}, 2\d{{3}} households, seed 1: year 2020 of "
                                                   r"2016–2020 \(finished\)"), timeout=max(timeout_ms, 30000))
            page.wait_for_function("() => [...document.querySelectorAll('table')].some(t => "
                                   "t.innerText.includes('headcount') && t.querySelectorAll('tbody tr').length == 5)")
            page.wait_for_timeout(500)
            page.screenshot(path=str(shots / "mesa_page.png"))
            page.get_by_text("Budgets:").scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "mesa_page_table.png"))
            assert not local_failures, "\n".join(local_failures)
            say(f"▶ ran to 2020; screenshots mesa_page_start.png, mesa_page_instruments.png, mesa_page.png, "
                f"mesa_page_table.png in {shots}")
        except Exception:
            page.screenshot(path=str(shots / "mesa_page_failed.png"), full_page=True)
            say(f"failed; screenshot {shots / 'mesa_page_failed.png'}; page text:\n" + page.inner_text("body")[:2000])
            if local_failures:
                say("requests to the page's own server that failed (solara's front-end assets missing? "
                    "pip install solara-assets):\n" + "\n".join(local_failures))
            raise
        finally:
            browser.close()


def run_check(chromium: str | None = None, shots: Path | None = None, timeout: float = 60.0, say=print) -> None:
    """Start the page's server, check the page in the browser, stop the server; raises on failure."""
    shots = Path(shots or tempfile.mkdtemp(prefix="mesa_page_"))
    shots.mkdir(parents=True, exist_ok=True)
    port, log_path = free_port(), shots / "solara.log"
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, SOLARA_TELEMETRY_MIXPANEL_ENABLE="false",  # no calls home from a test
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    start = time.time()
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "solara", "run", "fupin_sim.mesa_page", "--host", "127.0.0.1",
                                   "--port", str(port), "--no-open"], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        html = wait_http(url, timeout, server, log_path)
        assert "solara" in html.lower(), "the server answered, but not with a solara page"
        say(f"server: {url} answered after {time.time() - start:.1f} s")
        browser_check(url, chromium, shots, int(timeout * 1000), say)
        say(f"all checks passed in {time.time() - start:.1f} s")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if "Traceback" in log_path.read_text():
            say(f"server log ({log_path}) has a traceback:\n{log_path.read_text()[-3000:]}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chromium", default=find_chromium(),
                    help="a Chromium executable (default: $FUPIN_CHROMIUM or chromium on PATH)")
    ap.add_argument("--shots", type=Path, help="folder for screenshots and the server log (default: a new temp folder)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server and each page step")
    args = ap.parse_args(argv)
    if args.chromium is None:
        print("no Chromium found: apt-get install chromium, or pass --chromium", file=sys.stderr)
        return 2
    run_check(args.chromium, args.shots, args.timeout, say=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
