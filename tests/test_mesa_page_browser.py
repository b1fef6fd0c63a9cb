"""The planner page in a real headless browser (issue 8): it loads, a scenario is picked,
budget sliders move, Reset, Step and ▶ run it, and the table and charts follow.

The check itself is scripts/mesa_page_browser_check.py (also runnable by hand, for
screenshots). It needs the page-test extra and a Chromium; without them it skips, except
where FUPIN_PAGE_BROWSER_TEST=required (.ci/run sets it after installing both), so that a
CI run cannot pass by skipping it.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = os.environ.get("FUPIN_PAGE_BROWSER_TEST") == "required"


def _load_check():
    spec = importlib.util.spec_from_file_location("mesa_page_browser_check",
                                                  ROOT / "scripts" / "mesa_page_browser_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cannot_run(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason}; FUPIN_PAGE_BROWSER_TEST=required")
    pytest.skip(reason)


def test_planner_page_in_headless_chromium(tmp_path):
    check = _load_check()
    chromium = check.find_chromium()
    if chromium is None:
        _cannot_run("no Chromium on PATH (apt-get install chromium, or set FUPIN_CHROMIUM)")
    for module, why in (("solara", "the page"), ("playwright", "driving the browser"),
                        ("solara_assets", "serving solara's front end without a CDN")):
        if importlib.util.find_spec(module) is None:
            _cannot_run(f"{module} is not installed, needed for {why} (pip install '.[page-test]')")
    said = []
    try:
        check.run_check(chromium, tmp_path, timeout=90, say=said.append)  # raises at the first failed check
    finally:
        print("\n".join(said))
    assert any(line.startswith("all checks passed") for line in said), said
