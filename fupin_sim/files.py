"""Writing output files safely, for every command: atomically (a temporary name, then a
rename), inside the output folder the user chose (never through a planted symbolic link, never
under a name that leaves the folder), and with errors that name the file and the cause.

A low room (like `errors`): the population, results and experiment modules all use it.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from fupin_sim.errors import InputError

TEMP_GLOB = ".*.tmp"  # what `atomic_path` leaves behind only when the process is killed mid-write


def _file_mode() -> int:
    """The mode a plain `open(path, "w")` would give a new file (0666 less the umask): `mkstemp`
    creates 0600, which would hide outputs from the rest of a team."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _temporary(path: Path) -> str:
    """A new, empty temporary file beside `path` (created exclusively: an existing file or a
    planted link there is never opened), with an ordinary file's permissions."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, _file_mode())
    finally:
        os.close(fd)
    return tmp


def _named(e: OSError, path: Path) -> OSError:
    """The same error (errno and cause) naming the file the user asked for, not a temporary name."""
    return OSError(e.errno, e.strerror or str(e), str(path)) if e.errno else OSError(f"{path}: {e}")


@contextmanager
def atomic_path(path: Path):
    """A temporary name in the same folder, renamed to `path` only once writing succeeded, so a
    killed process never leaves a partial file under the real name, and a full disk or a
    read-only folder leaves the previous file intact. The temporary file is created
    exclusively (`mkstemp`: never through a planted symbolic link) and the rename replaces a
    link at `path` rather than writing through it. An OSError names `path`."""
    path = Path(path)
    try:
        tmp = _temporary(path)
    except OSError as e:
        raise _named(e, path) from None
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as e:
        raise _named(e, path) from None
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """`write(tmp)` to a temporary file, then rename it to `path` (see `atomic_path`)."""
    with atomic_path(path) as tmp:
        write(tmp)
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: Path, obj, indent: int | None = None) -> Path:
    text = json.dumps(obj, ensure_ascii=False, default=str, indent=indent)
    return write_text_atomic(path, text)


def write_csv_atomic(frame, path: Path) -> Path:
    return write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False))


def remove_temporaries(folder: Path) -> int:
    """Delete the temporary files a killed writer left in `folder` (links are removed, never
    followed); returns how many."""
    n = 0
    for stray in Path(folder).glob(TEMP_GLOB):
        if stray.is_symlink() or stray.is_file():
            stray.unlink(missing_ok=True)
            n += 1
    return n


def plain_name(name: str, what: str = "file name") -> str:
    """`name` if it is one plain file name (no folder part, no '..', not absolute), so that a
    name built from user input can never point outside the output folder."""
    text = str(name)
    if not text or text in (".", "..") or any(c in text for c in "/\\\0") or os.path.isabs(text):
        raise InputError(f"{what} {text!r} is not a plain file name: outputs stay inside the output folder")
    return text


def output_dir(out: Path, name: str | None = None) -> Path:
    """The output folder (or its subfolder `name`), created when missing. A subfolder that is a
    symbolic link, or a path that is not a folder, is an error before anything is written:
    a link planted there would send outputs outside the folder the user chose."""
    out = Path(out)
    folder = out if name is None else out / plain_name(name, "folder name")
    if name is not None and folder.is_symlink():
        raise InputError(f"is a symbolic link (to {os.readlink(folder)}): outputs are written only inside the "
                         f"output folder; remove the link", file=str(folder))
    if folder.exists() and not folder.is_dir():
        raise InputError("exists and is not a folder", file=str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _named(e, folder) from None
    return folder


def commit_files(out: Path, files: dict[str, Callable[[Path], object]], marker: str = "manifest.json",
                 stale: tuple[str, ...] = ()) -> Path:
    """Write several files of one result into `out`, the `marker` (its manifest) last.

    Every file is first written in full under a temporary name: a full disk or a read-only
    folder fails here, and the previous result (files and manifest) is left intact. Only then
    is the old marker removed and the new files renamed into place, the marker last, so a
    process killed between renames leaves a folder without a marker (incomplete: never taken
    for a finished result) rather than new tables beside an old manifest. `stale` names files
    of an earlier result that this one does not have: removed with the old marker."""
    out = output_dir(out)
    for name in files:  # what an earlier writer killed mid-way left of these files
        for stray in out.glob(f".{plain_name(name)}.*.tmp"):
            stray.unlink(missing_ok=True)
    staged: list[tuple[Path, str]] = []
    try:
        for name, write in files.items():
            path = out / plain_name(name)
            try:
                tmp = _temporary(path)
            except OSError as e:
                raise _named(e, path) from None
            staged.append((path, tmp))
            try:
                write(Path(tmp))
            except OSError as e:
                raise _named(e, path) from None
        order = sorted(staged, key=lambda item: item[0].name == marker)  # the marker last
        for name in ([marker] if any(p.name == marker for p, _ in staged) else []) + list(stale):
            if os.path.lexists(out / plain_name(name)):
                os.unlink(out / name)
        for path, tmp in order:
            try:
                os.replace(tmp, path)
            except OSError as e:
                raise _named(e, path) from None
    finally:
        for _, tmp in staged:
            if os.path.lexists(tmp):
                os.unlink(tmp)
    return out
