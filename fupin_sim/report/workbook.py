"""The Excel workbook: an 'About' sheet (what produced the result, its assumptions and
sources), then one sheet per table, headings in the report's language and numbers kept as
numbers with a display format."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from fupin_sim.notes import note_text
from fupin_sim.plots.text import table_title, text
from fupin_sim.report.folder import ResultFolder, as_text
from fupin_sim.report.tables import excel_format, heading, translated

_BAD = str.maketrans({c: "_" for c in "[]:*?/\\"})


def sheet_name(name: str, used: set[str]) -> str:
    """Excel's rules: at most 31 characters, none of []:*?/\\, unique in the workbook."""
    base = name.translate(_BAD)[:31] or "sheet"
    candidate, k = base, 2
    while candidate.lower() in used:
        suffix = f" ({k})"
        candidate, k = base[:31 - len(suffix)] + suffix, k + 1
    used.add(candidate.lower())
    return candidate


def write(folder: ResultFolder, lang: str, path: Path, about: list[tuple[str, object]],
          assumptions: pd.DataFrame) -> Path:
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    used: set[str] = set()
    with pd.ExcelWriter(path, engine="openpyxl") as xl:
        info = pd.DataFrame([(text(k, lang), str(v)) for k, v in about]
                            + [(text("kind_" + folder.kind, lang), folder.name)]
                            + [("", note_text(note, lang)) for note in folder.notes],
                            columns=[text("field", lang), heading("value", lang)])
        about_sheet = sheet_name(text("sheet_about", lang), used)
        info.to_excel(xl, sheet_name=about_sheet, index=False)
        if len(assumptions):
            a = assumptions.assign(value=assumptions["value"].map(as_text),
                                   changed=assumptions["changed"].map(
                                       lambda c: text("changed" if c else "default", lang)))
            a = a[["parameter", "value", "unit", "source", "confidence", "changed"]]
            start = len(info) + 3
            xl.sheets[about_sheet].cell(row=start, column=1, value=text("assumptions", lang)).font = Font(bold=True)
            a.rename(columns=lambda c: heading(c, lang) if c != "changed" else "").to_excel(
                xl, sheet_name=about_sheet, index=False, startrow=start)
        for name, frame in folder.tables.items():
            sheet = sheet_name(table_title(name, lang), used)
            shown = translated(frame, lang)
            shown.columns = [heading(c, lang) for c in frame.columns]
            shown.to_excel(xl, sheet_name=sheet, index=False)
            ws = xl.sheets[sheet]
            ws.freeze_panes = "A2"
            for j, col in enumerate(frame.columns, start=1):
                letter = get_column_letter(j)
                if pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(frame[col]):
                    fmt = excel_format(frame[col], col)
                    for c in ws[letter][1:]:
                        c.number_format = fmt
                width = max(len(str(shown.columns[j - 1])), *(len(str(v)) for v in frame[col].head(200)), 6)
                ws.column_dimensions[letter].width = min(width + 2, 60)
        ws = xl.sheets[about_sheet]
        ws.column_dimensions["A"].width = 36
        for letter in "BCDE":
            ws.column_dimensions[letter].width = 40 if letter == "D" else 22
    return path
