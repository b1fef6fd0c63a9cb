"""Reading users' YAML files: safely (no code runs), with errors naming the file and line."""
from __future__ import annotations

from pathlib import Path

import yaml

from fupin_sim.errors import InputError


def read_mapping(path: str | Path, what: str) -> dict:
    """A YAML file that must hold a mapping; `what` names its keys for the error message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=str(path)) from None
    except UnicodeDecodeError:
        raise InputError("is not UTF-8 text", file=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        raise InputError(f"is not valid YAML: {getattr(e, 'problem', None) or e}", file=str(path),
                         where=where) from None
    if data is None:
        raise InputError(f"is empty: it needs {what}", file=str(path))
    if not isinstance(data, dict):
        raise InputError(f"must be a mapping of keys ({what}), not a {type(data).__name__}", file=str(path))
    return data
