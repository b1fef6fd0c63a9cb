"""The scorecard's one-page report: model against published figures, pass or miss, in
English or Chinese (`fupin_sim.scorecard`)."""
from __future__ import annotations

import html
from datetime import date

from fupin_sim.report.page import STYLE

WORDS = {
    "en": {"title": "Scorecard: the model against published figures", "fit": "used for fitting",
           "check": "held out for checking (no parameter tuned to it)", "pass": "pass", "miss": "miss",
           "survey": "income poverty (survey measure)", "register": "the register (administrative)",
           "programme": "programme volumes", "point": "≈", "upper": "≤", "lower": "≥",
           "summary": "{role}: {passed} pass, {missed} miss",
           "columns": ("figure", "scenario", "year", "published", "model (replicates: low–high)", "tolerance",
                       "result", "definition", "source"),
           "intro": "Each row is a published figure with its source and definition. Income poverty is what "
                    "a survey measures (per-capita income against the year's line); the register (建档立卡) "
                    "and monitoring are administrative processes with their own rules. Rows used for fitting "
                    "pinned a parameter; rows held out were predicted, and a miss there is reported, not hidden.",
           "run": "{households} households a scenario, {reps} replicate(s); fupin_sim {version}"},
    "zh": {"title": "计分卡：模型与公开数据对照", "fit": "用于拟合", "check": "留作检验（未据此调整任何参数）",
           "pass": "通过", "miss": "未通过", "survey": "收入贫困（调查口径）", "register": "建档立卡（行政口径）",
           "programme": "项目规模", "point": "≈", "upper": "≤", "lower": "≥",
           "summary": "{role}：{passed} 项通过，{missed} 项未通过",
           "columns": ("指标", "情景", "年份", "公开数据", "模型（各重复：最低–最高）", "容差", "结果", "定义", "来源"),
           "intro": "每一行是一项公开数据，附来源与定义。收入贫困指调查口径（人均收入与当年贫困线相比）；"
                    "建档立卡与防止返贫监测是行政过程，有其自身规则。用于拟合的数据确定了参数；留作检验的数据是预测，"
                    "未通过的如实报告。",
           "run": "每个情景 {households} 户，{reps} 次重复；fupin_sim {version}"},
}


def _number(x: float) -> str:
    if x != x:
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def render(result, lang: str) -> str:
    w = WORDS[lang]
    t = result.table
    counts = result.counts()
    m = result.manifest
    parts = [f"<h1>{html.escape(w['title'])}</h1>", f"<p>{html.escape(w['intro'])}</p>",
             f'<p class="kind">{html.escape(w["run"].format(households=m["households"] or "preset", reps=m["replicates"], version=m["fupin_sim"]))}</p>',
             "<ul>" + "".join(f"<li>{html.escape(w['summary'].format(role=w[role], passed=c['pass'], missed=c['miss']))}</li>"
                              for role, c in counts.items()) + "</ul>"]
    for role in ("fit", "check"):
        block = t[t["role"] == role]
        if not len(block):
            continue
        parts.append(f"<h2>{html.escape(w[role])}</h2>")
        for measure, rows in block.groupby("measure", sort=False):
            head = "".join(f"<th>{html.escape(c)}</th>" for c in w["columns"])
            body = []
            for r in rows.itertuples():
                colour = "#e6f4ea" if r.result == "pass" else "#fde7e7"
                body.append(
                    f'<tr style="background:{colour}"><td class="text">{html.escape(r.id)}</td>'
                    f"<td>{html.escape(r.scenario)}</td><td>{html.escape(str(r.year))}</td>"
                    f'<td class="num">{w[r.bound]} {_number(r.value)}</td>'
                    f'<td class="num">{_number(r.model)} ({_number(r.model_low)}–{_number(r.model_high)})</td>'
                    f'<td class="num">± {_number(r.tolerance)}</td><td>{html.escape(w[r.result])}</td>'
                    f'<td class="text">{html.escape(r.definition)}</td><td class="text">{html.escape(r.source)}</td></tr>')
            parts.append(f"<h3>{html.escape(w[measure])}</h3><div class='wide'><table><thead><tr>{head}</tr></thead>"
                         f"<tbody>{''.join(body)}</tbody></table></div>")
    parts.append(f"<footer>fupin_sim {html.escape(str(m['fupin_sim']))} · {date.today().isoformat()}</footer>")
    lang_attr = "zh-CN" if lang == "zh" else "en"
    return (f'<!doctype html>\n<html lang="{lang_attr}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(w["title"])}</title>'
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
