"""The HTML page: one self-contained file (styles inline, figures as embedded PNG, no
network), readable by someone who never saw the command line."""
from __future__ import annotations

import base64
import html
from datetime import date

import pandas as pd

from fupin_sim.notes import note_text
from fupin_sim.plots.text import table_title, text
from fupin_sim.report.folder import ResultFolder, as_text
from fupin_sim.report.tables import cell, heading, translated

MAX_ROWS = 40

STYLE = """
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "Microsoft YaHei",
       "PingFang SC", system-ui, sans-serif; margin: 0 auto; max-width: 1180px; padding: 24px 32px;
       color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; } h2 { font-size: 1.2em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.kind { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.6em 0; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; vertical-align: top; }
th { background: #f4f4f6; text-align: left; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { max-width: 460px; }
.wide { overflow-x: auto; max-width: 100%; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption, .note { color: #555; font-size: 0.85em; }
.changed { font-weight: 600; }
footer { color: #888; font-size: 0.8em; margin-top: 3em; }
"""


def _table(frame: pd.DataFrame, lang: str, max_rows: int = MAX_ROWS, changed: pd.Series | None = None) -> str:
    shown = translated(frame.head(max_rows), lang)
    head = "".join(f"<th>{html.escape(heading(c, lang))}</th>" for c in shown.columns)
    rows = []
    for i, (_, row) in enumerate(shown.iterrows()):
        cells = []
        for c in shown.columns:
            v = row[c]
            kind = "num" if isinstance(v, (int, float)) and not isinstance(v, bool) else "text"
            cells.append(f'<td class="{kind}">{html.escape(cell(v, c))}</td>')
        cls = ' class="changed"' if changed is not None and bool(changed.iloc[i]) else ""
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    more = ""
    if len(frame) > max_rows:
        more = f'<p class="note">{html.escape(text("rows_shown", lang, shown=max_rows, total=f"{len(frame):,}"))}</p>'
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>{more}'


def render(folder: ResultFolder, lang: str, figures: dict[str, bytes], about: list[tuple[str, object]],
           assumptions: pd.DataFrame, figure_lang: str) -> str:
    """The page as a string; `figures` maps a figure's name to its PNG bytes."""
    t = lambda key, **v: html.escape(text(key, lang, **v))  # noqa: E731
    parts = [f"<h1>{t('report_title', name=folder.name)}</h1>", f'<p class="kind">{t("kind_" + folder.kind)}</p>']
    rows = "".join(f"<tr><th>{t(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in about)
    parts.append(f"<h2>{t('about')}</h2><table>{rows}</table>")
    for note in folder.notes:
        parts.append(f'<p class="note">{html.escape(note_text(note, lang))}</p>')
    if figure_lang != lang:
        parts.append(f'<p class="note">{t("font_missing")}</p>')
    if figures:
        parts.append(f"<h2>{t('figures')}</h2>")
        for name, png in figures.items():
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}"></figure>')
    parts.append(f"<h2>{t('tables')}</h2>")
    for name, frame in folder.shown.items():
        parts.append(f"<h3>{html.escape(table_title(name, lang))}</h3>{_table(frame, lang)}")
    parts.append(f"<h2>{t('assumptions')}</h2><p class='note'>{t('assumptions_note')}</p>")
    if len(assumptions):
        a = assumptions.assign(value=assumptions["value"].map(as_text))
        parts.append(_table(a[["parameter", "value", "unit", "source", "confidence"]], lang, max_rows=200,
                            changed=a["changed"]))
    version = folder.manifest.get("fupin_sim", "")
    parts.append(f"<footer>fupin_sim {html.escape(str(version))} · {date.today().isoformat()}</footer>")
    lang_attr = "zh-CN" if lang == "zh" else "en"
    title = html.escape(text("report_title", lang, name=folder.name))
    return (f'<!doctype html>\n<html lang="{lang_attr}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
