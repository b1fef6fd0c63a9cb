"""Reading users' YAML files: safely (no code runs), with errors naming the file and line."""
from __future__ import annotations

from pathlib import Path

import yaml

from fupin_sim.errors import InputError


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (the plain loader keeps
    the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"found the key {key!r} twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


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
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
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
