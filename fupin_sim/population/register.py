"""Read and write a register: `households.csv` and `persons.csv` (or `.parquet`), plus
`register.json` holding the snapshot's year.

Reading validates everything before returning: a missing or unknown column, an unparsable
or out-of-range value, an unknown category, a duplicate id, a person whose household does
not exist, a household with no members. Each error names the file, the row (as a
spreadsheet shows it: the header is row 1) and the column. Nothing is dropped silently.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fupin_sim.errors import InputError, close_match
from fupin_sim.population import Population
from fupin_sim.population import schema as S
from fupin_sim.population.table import Table

_TRUE = {"1", "true", "yes", "y", "t", "是"}
_FALSE = {"0", "false", "no", "n", "f", "否"}
_MAX_LISTED = 5


def write_register(pop: Population, folder: str | Path, fmt: str = "csv") -> Path:
    """Write `pop` in the register schema; the same files `read_register` reads."""
    if fmt not in ("csv", "parquet"):
        raise InputError(f"unknown register format {fmt!r}; use 'csv' or 'parquet'")
    from fupin_sim.files import commit_files

    files = {}
    for name, table, columns in (("households", pop.households, S.HOUSEHOLD_COLUMNS),
                                 ("persons", pop.persons, S.PERSON_COLUMNS)):
        frame = pd.DataFrame({c.name: _to_file(c, table[c.name]) for c in columns})
        files[f"{name}.{fmt}"] = ((lambda tmp, frame=frame: frame.to_csv(tmp, index=False)) if fmt == "csv" else
                                  (lambda tmp, frame=frame: frame.to_parquet(tmp, index=False)))
    meta = json.dumps({"year": int(pop.year), "schema": 1}, indent=1)
    files["register.json"] = lambda tmp: tmp.write_text(meta)
    # tables in full first, register.json (which says the folder is a register of that year) last
    folder = commit_files(Path(folder), files, marker="register.json")
    return folder


def _to_file(col: S.Column, values: np.ndarray):
    if col.kind == "category":
        return np.asarray(S.CATEGORIES[col.name])[values]
    if col.kind == "year":
        return pd.array(np.where(values == S.NO_YEAR, None, values), dtype="Int16")
    if col.kind == "bool":
        return values.astype(np.int8)
    return values


def read_register(folder: str | Path, year: int | None = None) -> Population:
    """Load and validate a register folder (CSV or Parquet)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("register folder not found", file=str(folder))
    meta_path = folder / "register.json"
    meta = {}
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"not valid JSON ({e})", file=str(meta_path)) from None
        if not isinstance(meta, dict) or not isinstance(meta.get("year"), int):
            raise InputError("needs an integer 'year' (the year of the register snapshot)", file=str(meta_path))
    if year is None:
        if "year" not in meta:
            raise InputError("the register's year is unknown: add register.json with {\"year\": YYYY} "
                             "or pass the year (a folder written by fupin-sim always has it, written last: "
                             "without it, the writing was interrupted; write it again)", file=str(folder))
        year = meta["year"]
    hh_frame, hh_file = _read_table(folder, "households")
    hh = _validate(hh_frame, S.HOUSEHOLD_COLUMNS, hh_file)
    pp_frame, pp_file = _read_table(folder, "persons")
    pp = _validate(pp_frame, S.PERSON_COLUMNS, pp_file)
    _unique(hh["household_id"], hh_file, "household_id")
    _unique(pp["person_id"], pp_file, "person_id")
    known = np.isin(pp["household_id"], hh["household_id"])
    if not known.all():
        rows = np.flatnonzero(~known)
        raise InputError(f"household_id {pp['household_id'][rows[0]]} is not in {hh_file.name}"
                         f"{_more(rows)}", file=str(pp_file), where=f"row {rows[0] + 2}, column household_id")
    pop = Population(Table(hh), Table(pp), int(year), origin=str(folder))
    sizes = pop.sizes()
    if (sizes == 0).any():
        rows = np.flatnonzero(sizes == 0)
        raise InputError(f"household {hh['household_id'][rows[0]]} has no members in {pp_file.name}{_more(rows)}",
                         file=str(hh_file), where=f"row {rows[0] + 2}")
    if "size" in hh_frame.columns:
        stated = _numeric(hh_frame["size"], hh_file, "size", integer=True, low=1)
        wrong = np.flatnonzero(stated != sizes)
        if len(wrong):
            r = wrong[0]
            raise InputError(f"size {stated[r]} but {sizes[r]} members in {pp_file.name}{_more(wrong)}",
                             file=str(hh_file), where=f"row {r + 2}, column size")
    return pop


def _read_table(folder: Path, name: str) -> tuple[pd.DataFrame, Path]:
    csv, parquet = folder / f"{name}.csv", folder / f"{name}.parquet"
    if csv.exists():
        try:
            frame = pd.read_csv(csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise InputError("is not UTF-8 text; save it as UTF-8 CSV", file=str(csv)) from None
        except pd.errors.EmptyDataError:
            raise InputError("is empty: it needs a header row and one row per record", file=str(csv)) from None
        except pd.errors.ParserError as e:
            raise InputError(f"is not a well-formed CSV table ({str(e).strip()})", file=str(csv)) from None
        return frame, csv
    if parquet.exists():
        try:
            frame = pd.read_parquet(parquet)
        except ImportError:
            raise InputError("reading Parquet needs pyarrow: pip install pyarrow", file=str(parquet)) from None
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise InputError(f"is not a readable Parquet file ({e})", file=str(parquet)) from None
        return frame.astype(object).where(frame.notna(), "").astype(str), parquet
    raise InputError(f"needs {name}.csv or {name}.parquet", file=str(folder))


def _validate(frame: pd.DataFrame, columns: tuple[S.Column, ...], file: Path) -> dict[str, np.ndarray]:
    names = {c.name for c in columns}
    allowed = names | ({"size"} if file.stem == "households" else set())
    for col in frame.columns:
        if col not in allowed:
            raise InputError(f"unknown column {col!r}{close_match(col, allowed)}; the schema is in the README "
                             "(rename or remove it: nothing is dropped silently)", file=str(file))
    out = {}
    for c in columns:
        if c.name not in frame.columns:
            if c.required:
                raise InputError(f"missing column {c.name!r} ({c.description})", file=str(file))
            out[c.name] = np.full(len(frame), S.NO_YEAR if c.kind == "year" else c.default, dtype=c.dtype)
            continue
        out[c.name] = _parse(frame[c.name], c, file)
    return out


def _parse(series: pd.Series, c: S.Column, file: Path) -> np.ndarray:
    text = series.astype(str).str.strip()
    if c.kind == "category":
        cats = S.CATEGORIES[c.name]
        codes = text.map(S.CODE[c.name]).fillna(-1).to_numpy(dtype=np.int64)
        bad = np.flatnonzero(codes < 0)
        if len(bad):
            v = text.iloc[bad[0]]
            raise InputError(f"unknown category {v!r}{close_match(v, cats)}; allowed: {list(cats)}{_more(bad)}",
                             file=str(file), where=f"row {bad[0] + 2}, column {c.name}")
        return codes.astype(np.int8)
    if c.kind == "bool":
        low = text.str.lower()
        bad = np.flatnonzero(~low.isin(_TRUE | _FALSE).to_numpy())
        if len(bad):
            raise InputError(f"expected 1/0 (true/false), got {text.iloc[bad[0]]!r}{_more(bad)}",
                             file=str(file), where=f"row {bad[0] + 2}, column {c.name}")
        return low.isin(_TRUE).to_numpy()
    if c.kind == "year":
        empty = (text == "").to_numpy()
        values = _numeric(text.where(~empty, "0"), file, c.name, integer=True, low=None, high=c.high)
        bad = np.flatnonzero(~empty & (values < c.low))
        if len(bad):
            raise InputError(f"year {values[bad[0]]} is before {c.low:g}{_more(bad)}",
                             file=str(file), where=f"row {bad[0] + 2}, column {c.name}")
        return np.where(empty, S.NO_YEAR, values).astype(np.int16)
    return _numeric(text, file, c.name, integer=c.kind in ("id", "int"), low=c.low, high=c.high).astype(c.dtype)


def _numeric(text: pd.Series, file: Path, name: str, integer: bool, low=None, high=None) -> np.ndarray:
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        v = text.iloc[bad[0]]
        what = "an empty value" if v == "" else f"{v!r}"
        raise InputError(f"expected a {'whole ' if integer else ''}number, got {what}{_more(bad)}",
                         file=str(file), where=f"row {bad[0] + 2}, column {name}")
    checks = [(integer, values != np.round(values), "is not a whole number"),
              (integer, np.abs(values) > 2.0**53, "is too large for a whole number (at most 2^53)"),
              (low is not None, values < (low if low is not None else 0), f"is below the minimum {low}"),
              (high is not None, values > (high if high is not None else 0), f"is above the maximum {high}")]
    for active, mask, message in checks:
        bad = np.flatnonzero(mask) if active else ()
        if len(bad):
            raise InputError(f"{values[bad[0]]:g} {message}{_more(bad)}", file=str(file),
                             where=f"row {bad[0] + 2}, column {name}")
    return values.astype(np.int64) if integer else values


def _unique(ids: np.ndarray, file: Path, name: str) -> None:
    order = np.argsort(ids, kind="stable")
    dup = np.flatnonzero(ids[order][1:] == ids[order][:-1])
    if len(dup):
        first, second = sorted((order[dup[0]], order[dup[0] + 1]))
        raise InputError(f"{name} {ids[first]} appears twice (rows {first + 2} and {second + 2})",
                         file=str(file), where=f"row {second + 2}, column {name}")


def _more(rows) -> str:
    extra = len(rows) - 1
    if extra <= 0:
        return ""
    listed = ", ".join(str(r + 2) for r in rows[1:_MAX_LISTED])
    return f" (and {extra} more row{'s' if extra > 1 else ''}: {listed}{', ...' if extra >= _MAX_LISTED else ''})"
