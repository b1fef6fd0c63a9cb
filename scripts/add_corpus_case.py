"""Add a fuzz case to the corpus (tests/corpus/), headed by the outcome it has now, which
`tests/test_fuzz.py::test_corpus_cases_stay_fixed` then checks exactly. Run it only once
the crash the case found is fixed:

    PYTHONPATH=. python3 scripts/add_corpus_case.py CASE.yaml [NAME]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from corpus import add_case  # noqa: E402

if __name__ == "__main__":
    case = Path(sys.argv[1])
    target = add_case(case, sys.argv[2] if len(sys.argv) > 2 else case.stem)
    print(f"added {target}: {target.read_text(encoding='utf-8').splitlines()[0]}")
