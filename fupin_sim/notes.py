"""Notes on a result (a comparison's caveats, a backtest's), in English and Chinese.

A note is written to a result's manifest as its English text, with its key and values
beside it, so that a report read in Chinese gives it in Chinese too.
"""
from __future__ import annotations

LANGUAGES = ("en", "zh")  # the languages of reports and figures

NOTES = {
    "population_differs": (
        "{name}: its population ({alt}) differs from the baseline's ({base}), so its differences include "
        "population differences and pair less well",
        "{name}:其人口({alt})与基准({base})不同,差值中含有人口差异,配对效果较差"),
    "no_spending": (
        "value for money omitted: the yearly summary has no 'spending' column (no intervention spends money "
        "in this engine version or these scenarios)",
        "未计算资金效益:年度汇总中没有支出(spending)列(这些情景中没有花钱的政策工具)"),
    "same_spending": ("{name}: spends the same as the baseline, so value-for-money ratios are undefined",
                      "{name}:支出与基准相同,资金效益比无定义"),
    "less_spending": (
        "{name}: spends less than the baseline, so its value-for-money ratios compare money saved with outcomes "
        "gained or forgone (read the signs of extra_exits and relapses_averted)",
        "{name}:支出少于基准,其资金效益比是节省的资金与多得或少得的结果之比(请看 extra_exits 和 "
        "relapses_averted 的正负号)"),
    "unbounded_ratio": (
        "{name}: {metric} has no bounded 95% interval (the interval of its denominator contains zero), so ci_low "
        "and ci_high are left empty",
        "{name}:{metric} 没有有界的95%置信区间(其分母的区间包含零),故 ci_low 和 ci_high 留空"),
    "one_replicate": ("one replicate: no standard errors or confidence intervals (use reps >= 2)",
                      "仅一次重复:没有标准误和置信区间(请用 reps >= 2)"),
    "baseline_seeds": ("alternatives run with the baseline's replicate seeds (base seed {seed}), not their own",
                       "备选情景使用基准情景的重复种子(基础种子 {seed}),而非各自的种子"),
    "backtest_in_sample": (
        "rules read the world's state at t (including the year's out-of-pocket costs, which the register does "
        "not carry); their Brier scores use in-sample observed rates (flattering)",
        "规则读取的是t年的真实状态(包括当年的自付费用,而登记数据中没有);其Brier评分使用样本内观测比例(偏乐观)"),
    "scenario_unreadable": ("the scenario file ({ref}) could not be read: parameter sources are left out",
                            "无法读取情景文件({ref}):略去参数来源"),
}


class Note(str):
    """A note on a result: its English text, which remembers its `NOTES` key and values so that
    a report can give it in the reader's language (`note_text`)."""

    def __new__(cls, key: str, **values):
        note = super().__new__(cls, NOTES[key][0].format(**values))
        note.key, note.values = key, values
        return note

    def __reduce__(self):  # pickled (and copied) as its key and values, not its text
        return _note, (self.key, self.values)


def _note(key: str, values: dict) -> Note:
    return Note(key, **values)


def note_fields(notes: list) -> dict:
    """A manifest's notes: the English texts, and beside them the key and values of each
    (None for plain text), from which `read_notes` rebuilds them."""
    return {"notes": [str(n) for n in notes],
            "note_keys": [{"key": n.key, "values": n.values} if isinstance(n, Note) else None for n in notes]}


def read_notes(manifest: dict) -> list:
    """The notes of a manifest written with `note_fields` (plain texts stay as they are)."""
    notes, keys = manifest.get("notes", []), manifest.get("note_keys")
    if not isinstance(keys, list) or len(keys) != len(notes):
        return list(notes)
    out = []
    for note, k in zip(notes, keys):
        try:
            out.append(Note(k["key"], **k["values"]) if k else note)
        except (KeyError, TypeError, IndexError, ValueError):  # a key this version does not know
            out.append(note)
    return out


def note_text(note, lang: str = "en") -> str:
    """A note in `lang` (plain text as it is)."""
    return NOTES[note.key][LANGUAGES.index(lang)].format(**note.values) if isinstance(note, Note) else str(note)
