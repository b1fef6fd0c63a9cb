"""Fuzzing user input: bundled scenario files and a generated register, mutated at random
(deleted and misspelt keys, wrong types, extreme numbers, truncation, wrong encodings,
empty files). Every case must end in a valid run or an InputError naming the file; any
other exception is a bug. A crashing case is kept beside the run (never in the corpus);
once fixed, `scripts/add_corpus_case.py` adds it to tests/corpus/ with its outcome, which
`test_corpus_cases_stay_fixed` then checks exactly."""
import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import fupin_sim as fs
from fupin_sim.errors import InputError
from corpus import CORPUS, expected, outcome
from fupin_sim.scenario import BUNDLED, load_scenario

NASTY = [None, "", "abc", -1, -1e308, 1e308, float("nan"), float("inf"), [], {}, True, "unlimited", 2**70,
         "2016-2020", [2020, 2016], {"2016": 5}, [1, "x"], "名字", 0]
CASES = 250


def leaves(tree, path=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from leaves(v, path + (k,))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from leaves(v, path + (i,))
    yield path


def mutate(tree, rng):
    tree = copy.deepcopy(tree)
    paths = [p for p in leaves(tree) if p]
    path = paths[rng.integers(len(paths))]
    parent = tree
    for k in path[:-1]:
        parent = parent[k]
    key = path[-1]
    action = rng.integers(3)
    if action == 0 and isinstance(parent, dict):
        del parent[key]
    elif action == 1 and isinstance(parent, dict) and isinstance(key, str):
        parent[key[:-1] + "x" if key else "x"] = parent.pop(key)
    else:
        parent[key] = NASTY[rng.integers(len(NASTY))]
    return tree


def fuzz_scenarios(folder: Path, cases: int, seed: int) -> dict:
    """`cases` mutated bundled scenario files in `folder`, each run or refused; counts of 'ok'
    and 'error'. A crash (any other exception) keeps its case in `folder` and is raised."""
    rng = np.random.default_rng(seed)
    sources = sorted(BUNDLED.glob("*.yaml"))
    trees = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sources}
    counts = {"ok": 0, "error": 0}
    for case in range(cases):
        name = sorted(trees)[rng.integers(len(trees))]
        tree = trees[name]
        for _ in range(rng.integers(1, 4)):
            tree = mutate(tree, rng)
        if isinstance(tree.get("extends"), str) and not tree["extends"].endswith(".yaml"):
            pass  # bundled names resolve anywhere
        elif "extends" in tree:
            tree["extends"] = str(BUNDLED / str(tree["extends"]))
        path = folder / f"case{case}.yaml"
        path.write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
        try:
            counts[outcome(path).split(":")[0]] += 1
        except Exception as e:  # a crash: keep the case beside the run and fail
            kept = path.rename(folder / f"crash_{seed}_{case}.yaml")
            raise AssertionError(f"case {case} (seed {seed}, from {name}) crashed: {type(e).__name__}: {e}; the case "
                                 f"is {kept}: once fixed, add it with scripts/add_corpus_case.py {kept}") from e
        path.unlink()
    return counts


@pytest.mark.slow
def test_mutated_scenarios_end_in_a_run_or_a_clear_error(tmp_path):
    counts = fuzz_scenarios(tmp_path, CASES, 2026)
    assert counts["ok"] > 10 and counts["error"] > 50, counts


BROKEN = {"empty": b"", "binary": b"\xff\xfe\x00garbage", "truncated": b"name: x\nyears: [2016",
          "a list": b"- a\n- b\n", "repeated keys": b"name: x\nyears: [2016, 2017]\n" * 1000,
          "gbk encoded": "名: 值\n".encode("gbk"), "wrong kind": b"name: x\nyears: [2016, 2017]\npopulation: []\n"}


@pytest.mark.parametrize("content", BROKEN.values(), ids=BROKEN.keys())
def test_broken_files_are_clear_errors(tmp_path, content):
    path = tmp_path / "broken.yaml"
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_scenario(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("corpus_file", sorted(CORPUS.glob("*.yaml")), ids=lambda p: p.name)
def test_corpus_cases_stay_fixed(corpus_file):
    """Each case that once broke something ends as it did when it was added: the same run,
    or the same error message (the case's first line, `# expect: ...`)."""
    assert outcome(corpus_file) == expected(corpus_file)


def fuzz_registers(folder: Path, cases: int, seed: int) -> dict:
    """`cases` registers with one damaged cell or a dropped column: each loads or is refused
    naming the file and the row or column; counts of 'ok' and 'error'."""
    pop = fs.generate(fs.Params.defaults(), 60, seed=1)
    base = folder / "base"
    fs.write_register(pop, base)
    rng = np.random.default_rng(seed)
    tables = {name: pd.read_csv(base / f"{name}.csv", dtype=str, keep_default_na=False)
              for name in ("households", "persons")}
    bad_values = ["", "nan", "-5", "1e400", "abc", "full ", "TRUE", "0.5", "名", "99999999999999999999"]
    counts = {"ok": 0, "error": 0}
    for case in range(cases):
        case_folder = folder / f"r{case}"
        case_folder.mkdir()
        (case_folder / "register.json").write_text((base / "register.json").read_text())
        name = ("households", "persons")[rng.integers(2)]
        for table_name, table in tables.items():
            table = table.copy()
            if table_name == name:
                col = table.columns[rng.integers(len(table.columns))]
                if rng.random() < 0.15:
                    table = table.drop(columns=[col])
                else:
                    table.loc[rng.integers(len(table)), col] = bad_values[rng.integers(len(bad_values))]
            table.to_csv(case_folder / f"{table_name}.csv", index=False)
        try:
            fs.read_register(case_folder)
            counts["ok"] += 1
        except InputError as e:
            assert str(case_folder) in str(e), f"case {case} (seed {seed}): {e}"
            assert "column" in str(e) or "row" in str(e) or "missing" in str(e), f"case {case} (seed {seed}): {e}"
            counts["error"] += 1
    return counts


@pytest.mark.slow
def test_mutated_registers_load_or_name_file_row_and_column(tmp_path):
    counts = fuzz_registers(tmp_path, 120, 7)
    assert counts["ok"] > 5 and counts["error"] > 60, counts


@pytest.mark.parametrize("where", ["instrument", "targets", "priority", "allocation", "source"])
@pytest.mark.parametrize("bad", [[], ["x"], {}, {"a": 1}], ids=["empty list", "list", "empty mapping", "mapping"])
def test_a_list_or_mapping_where_a_name_goes_is_a_clear_error(tmp_path, where, bad):
    """Found by scripts/soak.py (case 645 of seed 1: `source: []`): a list or a mapping where a
    name is expected was looked up in a dict and crashed (unhashable type)."""
    tree = yaml.safe_load((BUNDLED / "consolidation.yaml").read_text(encoding="utf-8"))
    line = next(iter(tree["budgets"]))
    dibao = dict(tree["interventions"].get("dibao") or {})
    if where == "instrument":
        tree["interventions"]["dibao"] = {"instrument": bad}
    elif where in ("targets", "priority"):
        tree["interventions"]["dibao"] = dict(dibao, **{where: bad if where == "targets" else [bad]})
    elif where == "allocation":
        tree["budgets"][line] = dict(tree["budgets"][line], allocation={"rule": bad})
    else:
        tree["budgets"][line] = dict(tree["budgets"][line], source=bad)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(tree, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_scenario(path)
    assert str(path) in str(err.value) and f".{where}" in str(err.value), err.value
