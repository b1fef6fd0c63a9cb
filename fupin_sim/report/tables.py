"""Tables for people: headings and category names in the report's language, numbers with
thousands separators and sensible decimals. Shared by the HTML page and the workbook."""
from __future__ import annotations

import numpy as np
import pandas as pd

from fupin_sim.plots.style import number
from fupin_sim.plots.text import CONFIDENCE, label

# integer columns that are identifiers or years: no thousands separator
PLAIN = {"year", "decile", "point", "replicate", "seed", "household_id", "run_id", "draw", "k", "capacity",
         "register_year"}
# columns whose values are names the catalogue can translate
CATEGORICAL = {"metric", "instrument", "source", "category", "region", "status", "tier", "main_driver", "method",
               "population", "by", "group", "region_type", "cause", "output", "line", "capacity"}


def heading(column, lang: str) -> str:
    return label(str(column), lang)


def translated(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """The frame with category names translated (values stay numbers)."""
    out = frame.copy()
    for col in out.columns:
        if str(col) in CATEGORICAL and not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].map(lambda v: label(v, lang) if isinstance(v, str) else v)
        elif str(col) == "confidence":
            out[col] = out[col].map(lambda v: CONFIDENCE[v][lang == "zh"] if v in CONFIDENCE else v)
    return out


def cell(value, column) -> str:
    """One value as text: identifiers and years plain, numbers for people, booleans as ✓ / ✗."""
    if isinstance(value, (bool, np.bool_)):
        return "✓" if value else "✗"
    if isinstance(value, (int, np.integer)) and str(column) in PLAIN:
        return str(int(value))
    if isinstance(value, (float, np.floating)) and str(column) in PLAIN and float(value).is_integer():
        return str(int(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return number(float(value) if isinstance(value, (float, np.floating)) else int(value))  # NaN: "–"
    return "–" if value is None else str(value)


def excel_format(series: pd.Series, column) -> str:
    """An Excel number format for a numeric column."""
    if str(column) in PLAIN:
        return "0"
    values = pd.to_numeric(series, errors="coerce").abs()
    top = values.max() if values.notna().any() else 0
    if pd.api.types.is_integer_dtype(series) or top >= 100:
        return "#,##0"
    return "#,##0.00" if top >= 1 else "0.000"
