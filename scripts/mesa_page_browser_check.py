"""Start the Mesa planner page (fupin_sim/mesa_page.py) and check it in a headless browser.

    python3 -m pip install "solara>=1.30" altair "ipyvuetify<3" playwright
    python3 scripts/mesa_page_browser_check.py                      # playwright's own chromium
    python3 scripts/mesa_page_browser_check.py --chromium /usr/bin/chromium   # e.g. Debian's

Steps: start `solara run` on a free port; wait until the page answers over HTTP; then (if
playwright is installed) open it, wait for the controls and the plots, press Step twice
and check that the page reports year 2017. `--http-only` stops after the HTTP check.
Exit status 0 when every check passed.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(tempfile.gettempdir())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> str:
    end = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.read().decode("utf-8", "replace")
        except OSError:
            if time.time() > end:
                raise
            time.sleep(0.5)


def browser_check(url: str, chromium: str | None, timeout_ms: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(headless=True, executable_path=chromium)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(url)
            try:
                page.get_by_text("All budgets").first.wait_for(timeout=timeout_ms)
                page.get_by_text("year 2015 of 2016").first.wait_for(timeout=timeout_ms)
                step = page.get_by_role("button", name="Step")
                for _ in range(2):
                    step.click()
                    time.sleep(1.0)
                page.get_by_text("year 2017 of 2016").first.wait_for(timeout=timeout_ms)
            except Exception:
                page.screenshot(path=str(SHOTS / "mesa_page_failed.png"), full_page=True)
                print("browser: failed; page text:\n" + page.inner_text("body")[:2000], file=sys.stderr)
                raise
            images = page.locator("img").count()
            print(f"browser: controls, year text and Step work; {images} images on the page")
            if images < 4:
                raise AssertionError(f"expected the four plots as images, found {images}")
            page.screenshot(path=str(SHOTS / "mesa_page_check.png"), full_page=True)
            print(f"browser: screenshot {SHOTS / 'mesa_page_check.png'}")
        finally:
            browser.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chromium", help="a chromium executable (default: playwright's)")
    ap.add_argument("--http-only", action="store_true", help="only check that the page is served")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server and the page")
    args = ap.parse_args(argv)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    server = subprocess.Popen([sys.executable, "-m", "solara", "run", str(ROOT / "fupin_sim" / "mesa_page.py"),
                               "--host", "127.0.0.1", "--port", str(port), "--no-open"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        html = wait_http(url, args.timeout)
        if "solara" not in html.lower():
            raise AssertionError("the server answered, but not with a solara page")
        print(f"http: {url} serves the solara page ({len(html)} bytes)")
        if args.http_only:
            return 0
        try:
            import playwright  # noqa: F401
        except ImportError:
            print("browser: skipped, playwright is not installed (pip install playwright)", file=sys.stderr)
            return 1
        browser_check(url, args.chromium, int(args.timeout * 1000))
        return 0
    finally:
        server.terminate()
        try:
            out, _ = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            out, _ = server.communicate()
        if "Traceback" in (out or ""):
            print("server log:\n" + out[-3000:], file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
