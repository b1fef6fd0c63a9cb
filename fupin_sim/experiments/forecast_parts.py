"""A forecast's parts: its replicates run in parts of up to 10 (`part_ranges`, which depend on
`reps` only), the unit of parallel work and of resume. With an output folder each finished
part is saved atomically as `parts/part_<start>_<stop>.npz` (the executor's store), keyed by
the register's content, the scenario, the horizon and the seeds; a rerun reuses the parts
that carry its key and are complete, and redoes any other."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from fupin_sim.experiments.executor import FileStore
from fupin_sim.population import Population

PART_FORMAT = 1
ROW_COLUMNS = ("rep", "year", "by", "group", "metric", "value")
TEXT_COLUMNS = ("by", "group", "metric")


def part_ranges(reps: int) -> list[tuple[int, int]]:
    """Replicates [start, stop) of each part. Parts are the unit of parallel work and of resume;
    they depend on `reps` only (not on `n_jobs`), so a forecast resumed with other settings
    reuses them: up to 10 replicates each, at least 8 parts when there are 8 replicates."""
    size = max(1, min(10, -(-reps // 8)))
    return [(a, min(a + size, reps)) for a in range(0, reps, size)]


def population_hash(pop: Population) -> str:
    """A digest of a register's content (year, every column's name, type and values), so a
    forecast's saved parts are reused only for the very same households and persons."""
    h = hashlib.blake2b(digest_size=12)
    h.update(f"{int(pop.year)}|{pop.origin == 'synthetic'}".encode())
    for label, table in (("households", pop.households), ("persons", pop.persons)):
        for name in sorted(table.names()):
            a = np.ascontiguousarray(table[name])
            h.update(f"|{label}.{name}:{a.dtype.str}:{a.shape}|".encode())
            h.update(a.tobytes() if a.dtype.kind != "O" else json.dumps(a.tolist(), default=str).encode())
    return h.hexdigest()


def part_arrays(block: dict) -> dict[str, np.ndarray]:
    """A part as plain typed arrays: the form saved to disk and the form used in memory, so a
    forecast assembled from saved parts is byte-identical to one computed in one go. The
    text columns of the aggregate rows are codes into `vocabulary` (compact on disk)."""
    rows = block["rows"]
    cols = dict(zip(ROW_COLUMNS, zip(*rows))) if rows else {c: () for c in ROW_COLUMNS}
    vocabulary = np.asarray(sorted({v for c in TEXT_COLUMNS for v in cols[c]}), dtype=str)
    arrays = {"row_rep": np.asarray(cols["rep"], np.int64), "row_year": np.asarray(cols["year"], np.int64),
              "row_value": np.asarray(cols["value"], np.float64), "vocabulary": vocabulary}
    for c in TEXT_COLUMNS:
        arrays[f"row_{c}"] = np.searchsorted(vocabulary, np.asarray(cols[c], dtype=str)).astype(np.int32)
    return {"fell_within": np.asarray(block["fell_within"], np.int32),
            "drivers": np.asarray(block["drivers"], np.int32),
            "final_income": np.asarray(block["final_income"], np.float32), **arrays}


def part_rows(part: dict) -> dict[str, np.ndarray]:
    """The aggregate rows of a part, text columns decoded."""
    out = {c: part[f"row_{c}"] for c in ROW_COLUMNS}
    for c in TEXT_COLUMNS:
        out[c] = part["vocabulary"][part[f"row_{c}"]]
    return out


class PartStore(FileStore):
    """The finished parts of one forecast in `out/parts/`, one `.npz` file each, reused only
    when they carry this forecast's key and have the expected shapes and types (anything
    else, a file cut short included, is redone). Tasks are (start, stop) ranges."""

    suffix = ".npz"

    def __init__(self, folder: Path, key: str, households: int, horizon: int, drivers: int):
        super().__init__(folder)
        self.key, self.n, self.horizon, self.drivers = key, households, horizon, drivers

    def name(self, r: tuple[int, int]) -> str:
        return f"part_{r[0]:07d}_{r[1]:07d}"

    def meta(self, r: tuple[int, int]) -> str:
        return json.dumps({"format": PART_FORMAT, "key": self.key, "start": r[0], "stop": r[1]}, sort_keys=True)

    def write(self, tmp: Path, r: tuple[int, int], arrays: dict) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(self.meta(r)), **arrays)

    def read(self, path: Path, r: tuple[int, int]) -> dict | None:
        k = r[1] - r[0]
        expect = {"fell_within": ((self.horizon, self.n), "i"), "drivers": ((self.drivers, self.n), "i"),
                  "final_income": ((k, self.n), "f")}
        try:
            with np.load(path, allow_pickle=False) as z:
                if set(z.files) != {"meta", "vocabulary", *expect, *(f"row_{c}" for c in ROW_COLUMNS)}:
                    return None
                if str(z["meta"]) != self.meta(r):
                    return None
                arrays = {name: z[name] for name in z.files if name != "meta"}
        except Exception:  # noqa: BLE001 - a damaged file of any kind (bad zip, CRC, truncated) is redone
            return None
        for name, (shape, kind) in expect.items():
            if arrays[name].shape != shape or arrays[name].dtype.kind != kind:
                return None
        lengths = {len(arrays[f"row_{c}"]) for c in ROW_COLUMNS}
        rep, vocabulary = arrays["row_rep"], arrays["vocabulary"]
        if len(lengths) != 1 or rep.dtype.kind != "i" or not np.array_equal(np.unique(rep), np.arange(*r)):
            return None
        if vocabulary.dtype.kind != "U" or vocabulary.ndim != 1:
            return None
        for c in TEXT_COLUMNS:
            codes = arrays[f"row_{c}"]
            if codes.dtype.kind != "i" or (len(codes) and (codes.min() < 0 or codes.max() >= len(vocabulary))):
                return None
        return arrays

    def clear(self, ranges) -> None:
        """Remove this forecast's parts once its outputs are written (the folder too if then empty)."""
        for r in ranges:
            self.path(r).unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:  # other files in it
            pass
