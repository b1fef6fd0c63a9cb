"""Column tables: a dict of equal-length numpy arrays, one row per entity."""
from __future__ import annotations

import numpy as np


class Table:
    """Named numpy columns of one length. Cheap to copy, select and extend."""

    def __init__(self, columns: dict[str, np.ndarray]):
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns differ in length: { {k: len(v) for k, v in columns.items()} }")
        self.columns = dict(columns)

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __setitem__(self, name: str, values: np.ndarray) -> None:
        if self.columns and len(values) != len(self):
            raise ValueError(f"column {name!r} has {len(values)} rows, table has {len(self)}")
        self.columns[name] = values

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    def names(self) -> list[str]:
        return list(self.columns)

    def copy(self) -> "Table":
        return Table({k: v.copy() for k, v in self.columns.items()})

    def take(self, rows: np.ndarray) -> "Table":
        return Table({k: v[rows] for k, v in self.columns.items()})

    def append(self, other: "Table") -> "Table":
        if set(other.columns) != set(self.columns):
            raise ValueError("cannot append tables with different columns")
        return Table({k: np.concatenate([v, other.columns[k].astype(v.dtype)]) for k, v in self.columns.items()})
