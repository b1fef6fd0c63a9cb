"""Reports: any result folder (run, compare, sweep, sensitivity, calibrate, forecast,
backtest) as a self-contained HTML page and an Excel workbook, in English or Chinese.

    fupin-sim report runs/baseline --lang zh
    from fupin_sim.report import report; report("runs/baseline", lang="zh")

`save_figures` draws a folder's figures as PNG files beside its tables; the commands call
it after writing a result, so every result folder comes with its pictures."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from fupin_sim.plots.style import figure_language, plt
from fupin_sim.plots.text import check_language
from fupin_sim.report import page, workbook
from fupin_sim.report.folder import KINDS, ResultFolder, about, assumptions, open_folder
from fupin_sim.files import write_atomic

__all__ = ["KINDS", "Report", "open_folder", "report", "save_figures"]

DPI = 110


@dataclass
class Report:
    html: Path
    workbook: Path
    figures: list[Path]
    lang: str
    figure_lang: str


def _suffix(lang: str) -> str:
    return "" if lang == "en" else f"-{lang}"


def _draw(folder: ResultFolder, lang: str) -> dict[str, bytes]:
    pngs = {}
    for fig_spec in folder.figures:
        fig = fig_spec.draw(lang)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=DPI)
        plt.close(fig)
        pngs[fig_spec.name] = buffer.getvalue()
    return pngs


def _save(folder: ResultFolder, pngs: dict[str, bytes], lang: str) -> list[Path]:
    return [write_atomic(folder.path / f"{name}{_suffix(lang)}.png", lambda tmp, b=png: tmp.write_bytes(b))
            for name, png in pngs.items()]


def save_figures(path: str | Path, lang: str = "en") -> list[Path]:
    """Draw a result folder's figures into it as PNG (`name.png`, or `name-zh.png`)."""
    folder = open_folder(path)
    lang = figure_language(check_language(lang))
    return _save(folder, _draw(folder, lang), lang)


def report(path: str | Path, lang: str = "en", out: str | Path | None = None) -> Report:
    """Write `report.html` and `report.xlsx` (`report-zh.*` in Chinese) for a result folder,
    into `out` (default: the folder itself), with the figures as PNG beside them."""
    lang = check_language(lang)
    folder = open_folder(path)
    figure_lang = figure_language(lang)
    info, table = about(folder), assumptions(folder)
    pngs = _draw(folder, figure_lang)
    target = Path(out) if out is not None else folder.path
    target.mkdir(parents=True, exist_ok=True)
    figures = _save(folder, pngs, figure_lang) if target == folder.path else []
    stem = f"report{_suffix(lang)}"
    html_text = page.render(folder, lang, pngs, info, table, figure_lang)
    html_path = write_atomic(target / f"{stem}.html", lambda tmp: tmp.write_text(html_text, encoding="utf-8"))
    xlsx = write_atomic(target / f"{stem}.xlsx", lambda tmp: workbook.write(folder, lang, tmp, info, table))
    return Report(html=html_path, workbook=xlsx, figures=figures, lang=lang, figure_lang=figure_lang)
