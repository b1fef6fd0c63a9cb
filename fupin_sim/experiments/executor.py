"""The one way experiments run their many runs: in this process, in processes on this machine
(joblib's loky) or on a Dask cluster (joblib's dask backend), resumably.

`execute(work, tasks, store=...)` returns `work(task)` for every task, in the tasks' order.
A store keeps each result as it arrives (a file per run, a part of a forecast, a line of a
trial log), so a killed experiment loses nothing finished; rerun, it reads back what the
store holds and runs only the rest. Results never depend on `n_jobs`, the scheduler, the
batches or the order runs finish in: each task's result is a function of the task alone.

A store has `load(task)` (the finished result, or None when missing, damaged or another
experiment's), `save(task, result)` (keeps it; returns it as `load` would) and
`exists(task)` (something is there, finished or not).
`FileStore` is the one-file-per-task kind; `claim` makes an output folder one experiment's.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fupin_sim.errors import InputError
from fupin_sim.files import output_dir, remove_temporaries, write_atomic, write_json_atomic
from fupin_sim.progress import progress_bar


def execute(work: Callable, tasks: Sequence, *, store=None, n_jobs: int = 1, scheduler=None,
            batch_size: int | None = None, progress: bool | None = False, desc: str = "runs") -> tuple[list, dict]:
    """(`work(task)` for each task in order, counts and timings). `work` must be picklable (a
    top-level function, or a `functools.partial` of one) for `n_jobs` != 1 or a `scheduler`
    (an address or a `distributed.Client`). `progress`: a bar (None: on a terminal only)."""
    t_start = time.perf_counter()
    results: list = [None] * len(tasks)
    pending, damaged = [], 0
    for i, task in enumerate(tasks):
        found = None if store is None else store.load(task)
        if found is None:
            damaged += store is not None and store.exists(task)
            pending.append(i)
        else:
            results[i] = found
    stats = {"runs": len(tasks), "reused": len(tasks) - len(pending), "redone_unreadable": damaged,
             "ran": len(pending), "write_seconds": 0.0, "check_seconds": time.perf_counter() - t_start, "batches": 0}
    if pending:
        if scheduler is not None:
            require_dask()
        client, own = (None, False) if scheduler is None else _client(scheduler)
        try:
            batches = _batches(pending, _workers(n_jobs, client), batch_size)
            stats["batches"] = len(batches)
            bar = progress_bar(len(tasks), initial=stats["reused"], desc=desc, enable=progress)
            try:
                for indices, outs in _dispatch(work, [[tasks[i] for i in b] for b in batches], batches, n_jobs,
                                               client):
                    t0 = time.perf_counter()
                    for i, out in zip(indices, outs):
                        results[i] = out if store is None else store.save(tasks[i], out)
                    stats["write_seconds"] += time.perf_counter() - t0
                    bar.update(len(indices))
            finally:
                bar.close()
        finally:
            if own:
                client.close()
    stats["wall_seconds"] = time.perf_counter() - t_start
    return results, stats


def run_batch(work: Callable, indices: list[int], tasks: list) -> tuple[list[int], list]:
    """Worker: the tasks one after another (no disk access, so it works on remote Dask workers)."""
    return indices, [work(task) for task in tasks]


def _dispatch(work, task_batches, batches, n_jobs, client):
    """Batch results as they finish: in this process, through loky, or through Dask."""
    if client is None and (n_jobs == 1 or len(batches) == 1):
        for indices, tasks in zip(batches, task_batches):
            yield run_batch(work, indices, tasks)
        return
    from joblib import Parallel, delayed, parallel_config

    calls = (delayed(run_batch)(work, indices, tasks) for indices, tasks in zip(batches, task_batches))
    if client is None:
        yield from Parallel(n_jobs=n_jobs, return_as="generator_unordered")(calls)
        return
    with parallel_config(backend="dask"):
        yield from Parallel(n_jobs=-1, return_as="generator_unordered")(calls)


def _workers(n_jobs: int, client=None) -> int:
    if client is not None:
        return max(1, sum(client.nthreads().values()))
    from joblib import effective_n_jobs

    return max(1, effective_n_jobs(n_jobs))


def _batches(pending: list[int], workers: int, batch_size: int | None) -> list[list[int]]:
    """Tasks per call: enough calls to balance the workers (8 each), at most 16 tasks in one."""
    size = batch_size or max(1, min(16, math.ceil(len(pending) / (workers * 8))))
    return [pending[i:i + size] for i in range(0, len(pending), size)]


def require_dask() -> None:
    """An InputError (before any run) when a scheduler is asked for without Dask installed."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise InputError("running on a Dask cluster needs Dask: pip install 'fupin-sim[cluster]' "
                         "(or: pip install \"dask[distributed]\")", where="scheduler") from None


def _client(scheduler):
    from distributed import Client

    if isinstance(scheduler, Client):
        return scheduler, False
    return Client(scheduler), True


class FileStore:
    """Finished results, one file each in `folder` (a real folder inside the output folder,
    never a link), written atomically: a kill never leaves a partial file under a real name.
    Subclasses name a task's file (`name`), write a result (`write`) and read one back,
    returning None for anything not complete and this experiment's (`read`)."""

    suffix = ".json"

    def __init__(self, folder: Path):
        self.folder = output_dir(Path(folder).parent, Path(folder).name)
        remove_temporaries(self.folder)  # left by a process killed while writing

    def name(self, task) -> str:
        raise NotImplementedError

    def path(self, task) -> Path:
        return self.folder / f"{self.name(task)}{self.suffix}"

    def exists(self, task) -> bool:
        return os.path.lexists(self.path(task))

    def load(self, task):
        path = self.path(task)
        if path.is_symlink() or not path.is_file():  # a planted link is never followed: redone
            return None
        return self.read(path, task)

    def save(self, task, result):
        write_atomic(self.path(task), lambda tmp: self.write(tmp, task, result))
        return result

    def read(self, path: Path, task):
        raise NotImplementedError

    def write(self, tmp: Path, task, result) -> None:
        raise NotImplementedError


def claim(out: Path, marker: str, key: str, value: str, record: dict, what: str, other) -> None:
    """Create `out` for one experiment, or check that it holds this very one (its marker
    file's `key` equals `value`); a folder holding another (`other(held, old)` says which) or
    unrelated files is an error before anything runs."""
    path = out / marker
    if path.is_symlink():
        raise InputError("is a symbolic link, not a file this program wrote: delete it or choose another output "
                         "folder", file=str(path))
    if out.is_dir():  # a process killed while claiming the folder leaves only the marker's temporary file
        for stray in out.glob(f".{marker}.*.tmp"):
            stray.unlink(missing_ok=True)
    if path.exists():
        try:
            held = json.loads(path.read_text(encoding="utf-8"))
            old = held[key]
        except (OSError, ValueError, KeyError, TypeError):
            raise InputError("is unreadable: delete the output folder or choose another one", file=str(path)) from None
        if old != value:
            raise InputError(other(held, old), file=str(out))
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"exists and is not an empty folder from a {what} (no {marker}): choose a new output folder",
                         file=str(out))
    output_dir(out)
    write_json_atomic(path, record)
