"""The corpus of fuzz cases that once broke something (tests/corpus/*.yaml), each with the
outcome it must keep on its first line: `# expect: ok`, or `# expect: error: MESSAGE` (the
case's path written as {file}). Cases are added only deliberately, by
`scripts/add_corpus_case.py`, never by a test run."""
from __future__ import annotations

from pathlib import Path

import fupin_sim as fs
from fupin_sim.errors import InputError
from fupin_sim.scenario import load_scenario

CORPUS = Path(__file__).resolve().parent / "corpus"
EXPECT = "# expect: "


def outcome(path: Path) -> str:
    """'ok' after a one-year run, or 'error: MESSAGE' for an InputError naming the file."""
    try:
        sc = load_scenario(path)
        fs.run(sc.edit(households=40, years=(sc.years[0], sc.years[0])))
        return "ok"
    except InputError as e:
        assert str(path) in str(e) or e.file is None, f"error does not name the file: {e}"
        return f"error: {str(e).replace(str(path), '{file}')}"


def expected(path: Path) -> str:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(EXPECT), f"{path}: its first line must be '{EXPECT}...' (scripts/add_corpus_case.py)"
    return first[len(EXPECT):]


def add_case(case: Path, name: str) -> Path:
    """Copy `case` into the corpus as `name`.yaml, headed by the outcome it has now."""
    target = CORPUS / f"{name}.yaml"
    if target.exists():
        raise FileExistsError(target)
    body = case.read_text(encoding="utf-8")
    target.write_text(f"{EXPECT}pending\n{body}", encoding="utf-8")  # the outcome names the corpus file
    target.write_text(f"{EXPECT}{outcome(target)}\n{body}", encoding="utf-8")
    return target
