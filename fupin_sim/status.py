"""Poverty status: the year's line, the income test, "两不愁三保障", register transitions
(poor → exited → relapsed 返贫; non-registered → newly poor 新致贫) and the monitoring flag
(防止返贫监测), and the year's poverty metrics.

The income test uses per-capita income net of out-of-pocket medical and schooling costs
(the share set by `exit.deduct_expenditure`), as registration counts heavy spending as
a cause of poverty. The three guarantees (三保障) are read as: every compulsory-age child
in school, basic medical insurance, a safe house; enough food and clothing (两不愁) is
read as income above the line.
"""
from __future__ import annotations

import numpy as np

from fupin_sim.metrics import Metric
from fupin_sim.population import schema as S
from fupin_sim.population.rules import Weights, poverty_line
from fupin_sim.population.state import Carried

STATE = Carried(columns={"monitored": (np.bool_, False), "relapses": (np.int16, 0)},
                values={"previous_line": (float, None)})  # last year's line (the anti-poverty insurance trigger)
METRICS = (
    Metric("households", "stock", "households", "Households", "户数"),
    Metric("persons", "stock", "persons", "Persons", "人口"),
    Metric("poverty_line", "stock", "yuan per person", "Poverty line (yuan per person)", "贫困线(元/人)"),
    Metric("registered_poor", "stock", "households", "Registered poor households", "建档立卡贫困户"),
    Metric("registered_poor_persons", "stock", "persons", "Registered poor (persons)", "建档立卡贫困人口"),
    Metric("exited", "stock", "households", "Exited households (stock)", "已脱贫户(存量)"),
    Metric("income_poor_persons", "stock", "persons", "Persons below the line", "收入低于贫困线人口"),
    Metric("headcount_ratio", "ratio", "share", "Headcount ratio", "贫困发生率"),
    Metric("fgt0", "ratio", "share", "Headcount ratio (FGT0)", "贫困发生率(FGT0)"),
    Metric("fgt1", "ratio", "share", "Poverty gap index (FGT1)", "贫困距指数(FGT1)"),
    Metric("fgt2", "ratio", "share", "Squared poverty gap (FGT2)", "贫困强度指数(FGT2)"),
    Metric("exits", "flow", "households", "Exits (households)", "脱贫户数"),
    Metric("relapses", "flow", "households", "Relapses, 返贫 (households)", "返贫户数"),
    Metric("relapse_rate", "ratio", "share", "Relapse rate", "返贫率",
           about="relapses over exited households at the start of the year"),
    Metric("new_poor", "flow", "households", "Newly poor (households)", "新致贫户数"),
    Metric("dissolved_poor", "flow", "households", "Registered poor households dissolved", "消亡贫困户"),
    Metric("dissolved_exited", "flow", "households", "Exited households dissolved", "消亡已脱贫户"),
    Metric("monitored", "stock", "households", "Monitored households (监测)", "监测户数"),
    Metric("income_wage_per_capita", "ratio", "yuan per person", "Wage income per person (yuan)", "人均工资性收入(元)"),
    Metric("income_operating_per_capita", "ratio", "yuan per person", "Operating income per person (yuan)",
           "人均经营性收入(元)"),
    Metric("income_property_per_capita", "ratio", "yuan per person", "Property income per person (yuan)",
           "人均财产性收入(元)"),
    Metric("income_transfer_per_capita", "ratio", "yuan per person", "Transfer income per person (yuan)",
           "人均转移性收入(元)"),
    Metric("income_per_capita_registered_poor", "ratio", "yuan per person",
           "Income per person of the registered poor (yuan)", "贫困户人均纯收入(元)"),
    Metric("out_of_pocket_medical", "flow", "yuan", "Out-of-pocket medical costs (yuan)", "医疗自付费用(元)"))


def guarantees_met(state, p) -> np.ndarray:
    pp = state.p
    comp, high = p["education.stage_ages"][1:3]
    out_of_school = np.flatnonzero((pp["age"] >= comp) & (pp["age"] < high) & (pp["school"] != S.COMPULSORY))
    ok = state.h["insured"] & state.h["housing_safe"]
    ok[pp["hh"][out_of_school]] = False
    return ok


def test_income(state, p, total: np.ndarray | None = None, expense: np.ndarray | None = None,
                rows: np.ndarray | None = None) -> np.ndarray:
    """Per-capita income used for the poverty test (yuan/person/year), of every household or
    of `rows` only: the one test, which the instruments' ranking, the panel, calibration
    moments, forecasts and backtests all use. `total` income and `expense` (out-of-pocket
    medical and schooling costs) of the same households when the caller has them; otherwise
    they are summed here, in place (the same operations as `State.income_total`)."""
    h = state.h
    pick = (lambda a: a) if rows is None else (lambda a: a.take(rows))  # take: a fifth faster than a[rows]
    if expense is None:
        expense = pick(h["oop"]) + pick(h["school_cost"])
        expense *= p["exit.deduct_expenditure"]
    else:
        expense = p["exit.deduct_expenditure"] * expense
    if total is None:
        net = pick(h["income_wage"]) + pick(h["income_operating"])
        net += pick(h["income_property"])
        net += pick(h["income_transfer"])
        net -= expense
    else:
        net = total - expense
    net /= np.maximum(pick(h["size"]), 1)
    return net


def below_line(state, p, y: np.ndarray | None = None) -> np.ndarray:
    """Households alive whose test income (`y` when the caller has it) is under the line in
    force (`p`: a year's parameters)."""
    return (state.h["size"] > 0) & ((test_income(state, p) if y is None else y) < poverty_line(p))


def infer_cause(state, rows: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Main cause for newly registered households `rows`, from what pushed them under the line:
    illness or schooling costs above a quarter of income, else disability, old age (everyone
    65+), no labour, or lacking skills."""
    h, pp = state.h, state.p
    c = S.CODE["cause"]
    flag = np.zeros(state.n, dtype=bool)
    flag[rows] = True
    members = np.flatnonzero(flag.take(pp["hh"]))
    at = np.empty(state.n, dtype=np.intp)  # each household's position in `rows` (read for theirs only)
    at[rows] = np.arange(len(rows))
    local = at.take(pp["hh"].take(members))
    disabled = np.bincount(local, weights=pp["disabled"].take(members), minlength=len(rows)) > 0
    aged = np.bincount(local, weights=pp["age"].take(members) < 65, minlength=len(rows)) == 0
    income = np.maximum(total[rows], 1.0)
    cause = np.full(len(rows), c["skills"], dtype=np.int8)
    cause[h["labour_units"].take(rows) == 0] = c["other"]
    cause[aged] = c["aged"]
    cause[disabled] = c["disability"]
    cause[h["school_cost"].take(rows) > 0.25 * income] = c["schooling"]
    cause[h["oop"].take(rows) > 0.25 * income] = c["illness"]
    return cause


def step(state, p, rs, year: int) -> dict:
    """Apply this year's register transitions; return the year's metrics."""
    h = state.h
    line = poverty_line(p)
    total = state.income_total()
    expense = h["oop"] + h["school_cost"]
    y = test_income(state, p, total, expense)
    ok = guarantees_met(state, p)
    status = h["status"]
    alive = h["size"] > 0
    below = (y < line) & alive
    exits = (status == S.POOR) & (y >= line * p["exit.income_ratio"]) & ok & alive
    relapses = (status == S.EXITED) & (below | ~ok) & alive
    new_poor = (status == S.NONPOOR) & below
    w = Weights(h["weight"])
    exited_before = w.count((status == S.EXITED) & alive)
    dissolved = np.flatnonzero(~alive)  # every member died this year
    dissolved_status = status.take(dissolved)

    # by rows: each flow's few percent of households are found once, not by a mask per column
    exit_rows, relapse_rows, new_rows = np.flatnonzero(exits), np.flatnonzero(relapses), np.flatnonzero(new_poor)
    identification = p["exit.identification"]
    if identification < 1.0:  # at 1 no draw is made, so no stream moves
        # drawn for the candidates only: a household's draw is the same whoever else is drawn
        relapse_rows, new_rows = (rows[rs.uniform("status.identification", year, h["household_id"].take(rows))
                                       < identification] for rows in (relapse_rows, new_rows))
    status[exit_rows] = S.EXITED
    h["year_exited"][exit_rows] = year
    status[relapse_rows] = S.POOR
    status[new_rows] = S.POOR
    h["relapses"][relapse_rows] += 1
    h["cause"][new_rows] = infer_cause(state, new_rows, total)
    h["year_registered"][new_rows] = year
    # a household whose members have all died leaves the register
    status[dissolved] = S.NONPOOR

    state.values["previous_line"] = line  # next year's anti-poverty insurance trigger
    h["monitored"] = alive & (status != S.POOR) & (
        (y < p["monitoring.income_multiple"] * line)
        | (expense > p["monitoring.expenditure_share"] * np.maximum(total, 0.0)))

    flows = {name: w.count(rows) for name, rows in (
        ("exits", exit_rows), ("relapses", relapse_rows), ("new_poor", new_rows),
        ("dissolved_poor", dissolved[dissolved_status == S.POOR]),
        ("dissolved_exited", dissolved[dissolved_status == S.EXITED]))}
    return metrics(state, y, total, line, w, exited_before=exited_before, **flows)


def metrics(state, y, total, line, w: Weights, **flows: float) -> dict:
    """The year's aggregates, weighted by household weights `w` (persons by household size);
    `flows`: the year's weighted register flows (exits, relapses, new_poor, dissolved_poor,
    dissolved_exited) and the exited households at the start of the year (exited_before).

    Sums over the poor and the registered go over their rows only (a few percent of
    households)."""
    h = state.h
    size = h["size"]
    registered = np.flatnonzero(h["status"] == S.POOR)
    poor = np.flatnonzero(y < line)  # their gap is > 0 (only theirs: line > 0)
    gap = line - y.take(poor)
    gap *= 1.0 / line
    np.minimum(gap, 1.0, out=gap)
    wp = w.take(poor) * size.take(poor)  # persons they stand for
    poor_persons = float(wp.sum())
    reg_persons = float((w.take(registered) * size.take(registered)).sum())
    persons = w.total(size)
    per_person = 1.0 / persons if persons else 0.0
    out = {
        "households": w.count(size > 0),
        "persons": persons,
        "poverty_line": line,
        "registered_poor": w.count(registered),
        "registered_poor_persons": reg_persons,
        "exited": w.count(h["status"] == S.EXITED),
        "income_poor_persons": poor_persons,
        "headcount_ratio": poor_persons * per_person,
        "fgt0": poor_persons * per_person,
        "fgt1": float((wp * gap).sum()) * per_person,
        "fgt2": float((wp * gap * gap).sum()) * per_person,
        "exits": flows["exits"],
        "relapses": flows["relapses"],
        "relapse_rate": flows["relapses"] / flows["exited_before"] if flows["exited_before"] else 0.0,
        "new_poor": flows["new_poor"],
        "dissolved_poor": flows["dissolved_poor"],
        "dissolved_exited": flows["dissolved_exited"],
        "monitored": w.count(h["monitored"]),
    }
    for source in S.INCOME_SOURCES:
        out[f"income_{source}_per_capita"] = w.total(h[f"income_{source}"]) * per_person
    registered_income = float((w.take(registered) * total.take(registered)).sum())
    out["income_per_capita_registered_poor"] = registered_income / reg_persons if reg_persons else 0.0
    out["out_of_pocket_medical"] = w.total(h["oop"])
    return out
