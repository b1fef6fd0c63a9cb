"""A calibration's trial log, `trials.jsonl`: one JSON line per evaluation (the parameter
vector, the moments of every replicate, the distance), appended and synced as each one
finishes. A rerun of the same spec into the same folder reads it back as a cache keyed by
the rounded parameter vector, so the (deterministic) optimiser retraces its path without
simulating again and a killed calibration loses at most the evaluations under way. A last
line cut short by a kill (or a full disk) is cut off before anything is appended.

The log is the executor's store for the calibration's evaluations (`Trial` tasks)."""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fupin_sim.errors import InputError

KEY_DIGITS = 10  # the cache's key: the parameter vector rounded to this many significant digits


def trial_key(x) -> str:
    return json.dumps([float(f"{float(v):.{KEY_DIGITS}g}") for v in x])


@dataclass(frozen=True)
class Trial:
    """One evaluation: the parameter vector `x`, its key, the scenario values it sets, and the
    phase of the search that asked for it (de, polish, best, abc)."""
    key: str
    x: tuple[float, ...]
    overrides: dict
    phase: str


def complete(rec: dict, replicates: int) -> bool:
    """A log record with its target cells and one row of numbers per replicate for each."""
    reps, cells = rec.get("replicates"), rec.get("cells")
    if not isinstance(reps, list) or len(reps) != replicates or not isinstance(cells, list):
        return False
    return all(isinstance(r, list) and len(r) == len(cells)
               and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r) for r in reps)


class TrialLog:
    """The records of one calibration's evaluations (`evaluation_hash`), from `path` (None:
    kept in memory only). `record(trial, replicates)` makes a record of a finished trial;
    `usable(record)` says whether a cached one serves the calibration's targets."""

    def __init__(self, path: Path | None, evaluation_hash: str, replicates: int,
                 record: Callable[[Trial, list], dict], usable: Callable[[dict], bool]):
        self.path, self.evaluation_hash, self.replicates = path, evaluation_hash, replicates
        self.record, self.usable = record, usable
        self.cache: dict[str, dict] = {}
        self.dropped_partial = 0  # bytes of a last line cut short by a kill, removed from the log
        if path is not None and (path.exists() or path.is_symlink()):
            self._read()

    def _read(self) -> None:
        """Read the log back as a cache. A last line without its newline was cut short by a
        kill (or a full disk): it is cut off, so the next record starts on a line of its own
        instead of being glued to the fragment (and lost at the next read). Lines that are not
        a complete record of this calibration's evaluations are skipped."""
        if self.path.is_symlink():
            raise InputError("is a symbolic link: the trial log is appended to, and only inside the output folder; "
                             "delete the link", file=str(self.path))
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            with open(self.path, "r+b") as f:
                f.truncate(end)
            self.dropped_partial = len(data) - end
        for line in data[:end].splitlines():
            try:
                rec = json.loads(line.decode("utf-8"))
            except ValueError:  # damaged (UnicodeDecodeError is a ValueError too)
                continue
            if (isinstance(rec, dict) and rec.get("evaluation_hash") == self.evaluation_hash
                    and isinstance(rec.get("key"), str) and complete(rec, self.replicates)):
                self.cache.setdefault(rec["key"], rec)

    def load(self, trial: Trial) -> dict | None:
        rec = self.cache.get(trial.key)
        return rec if rec is not None and self.usable(rec) else None

    def exists(self, trial: Trial) -> bool:
        return False  # a damaged line is skipped, not counted

    def save(self, trial: Trial, replicates: list) -> dict:
        rec = self.record(trial, replicates)
        self.cache[rec["key"]] = rec
        self._append(rec)
        return rec

    def _append(self, rec: dict) -> None:
        """Append a whole line and sync: a kill can cut only the last line short (repaired on
        the next read). The log is never opened through a symbolic link (O_NOFOLLOW)."""
        if self.path is None:
            return
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError:
            if self.path.is_symlink():
                raise InputError("is a symbolic link: the trial log is written only inside the output folder; "
                                 "delete the link", file=str(self.path)) from None
            raise
        try:
            with open(fd, "ab") as f:
                f.write((json.dumps(rec, ensure_ascii=False) + "\n").encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:  # a full disk: name the log (a line cut short is dropped on the next read)
            raise OSError(e.errno, e.strerror or str(e), str(self.path)) from None
