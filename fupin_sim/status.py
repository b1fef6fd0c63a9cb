"""Poverty status, measured two ways apart, and the year's poverty metrics.

*Income poverty* is what a survey measures: per-capita income against the year's line (the
NBS definition: per-capita disposable income, no expenditure deducted unless
`poverty.deduct_expenditure` says so). It is reported for everyone, whatever the register
says (`income_poor_persons`, `headcount_ratio`, `fgt1`, `fgt2`, `income_poor_exited_persons`).

The *register* (建档立卡) is an administrative process with its own steps:

- identification (识别): from `register.start_year` (the 2014 精准识别) a household whose
  income, as the assessment sees it, is under the line is registered: everyone found in
  the first year, then in each year's dynamic adjustment (动态调整, 民主评议 and 公示) with
  probability `register.identification`; relapse (返贫) is an exited household registered
  again. The assessment sees income with a household's own persistent error
  (`register.assessment_error`), so some households above the line are registered and some
  below are missed. No household enters after `register.last_entry_year`;
- exit assessment (退出): a registered household whose assessed income is at least
  `exit.income_ratio` × the line and whose three guarantees (三保障) are met exits;
- monitoring (防止返贫监测), from `monitoring.start_year`: exited and non-registered households
  under the year's monitoring threshold that a risk struck this year (脱贫不稳定户, 边缘易致贫户,
  突发严重困难户: see `_monitor`) become monitoring objects with probability
  `monitoring.identification` a year, are helped (the `monitoring_assistance` instrument), and
  leave when the risk is eliminated (风险消除). Once no household can enter the register,
  relapse (返贫) means what it meant officially: an exited monitoring object, found in an
  earlier year, whose assessed income is still or again under the line.

The three guarantees (三保障) are read as: every compulsory-age child in school, basic
medical insurance, a safe house; enough food and clothing (两不愁) is read as income above
the line.
"""
from __future__ import annotations

import numpy as np

from fupin_sim.metrics import Metric
from fupin_sim.population import schema as S
from fupin_sim.population.rules import Weights, guarantees_met, monitoring_threshold, poverty_line
from fupin_sim.population.state import Carried

# monitoring objects by kind (监测对象): 0 not monitored
UNSTABLE, EDGE, HARDSHIP = 1, 2, 3  # 脱贫不稳定户, 边缘易致贫户, 突发严重困难户
MONITOR_KINDS = {UNSTABLE: "unstable_exited", EDGE: "edge", HARDSHIP: "hardship"}

# what the register and monitoring keep per household; a household formed during the run
# starts with these (no monitoring object, no assessment drawn yet, no income last year: no fall)
STATE = Carried(columns={"relapses": (np.int16, 0), "monitored": (np.bool_, False), "monitor_kind": (np.int8, 0),
                         "monitor_stable": (np.int8, 0), "year_monitored": (np.int16, S.NO_YEAR),
                         "relapse_counted": (np.bool_, False), "below_line": (np.bool_, False),
                         "income_last": (np.float64, 0.0), "assessment_factor": (np.float32, 0.0)},
                values={"previous_line": (float, None)})  # last year's line (the anti-poverty insurance trigger)
SURVEY, REGISTER = "income poverty, the survey measure: ", "the register (administrative): "
METRICS = (
    Metric("households", "stock", "households", "Households", "户数"),
    Metric("persons", "stock", "persons", "Persons", "人口"),
    Metric("poverty_line", "stock", "yuan per person", "Poverty line (yuan per person)", "贫困线(元/人)"),
    Metric("registered_poor", "stock", "households", "Registered poor households", "建档立卡贫困户",
           about=REGISTER + "registered (建档立卡) and not exited"),
    Metric("registered_poor_persons", "stock", "persons", "Registered poor (persons)", "建档立卡贫困人口",
           about=REGISTER + "members of registered households not exited"),
    Metric("exited", "stock", "households", "Exited households (stock)", "已脱贫户(存量)", about=REGISTER),
    Metric("income_poor_persons", "stock", "persons", "Persons below the line", "收入低于贫困线人口",
           about=SURVEY + "per-capita income under the year's line"),
    Metric("headcount_ratio", "ratio", "share", "Headcount ratio", "贫困发生率", about=SURVEY),
    Metric("fgt0", "ratio", "share", "Headcount ratio (FGT0)", "贫困发生率(FGT0)", about=SURVEY),
    Metric("fgt1", "ratio", "share", "Poverty gap index (FGT1)", "贫困距指数(FGT1)", about=SURVEY),
    Metric("fgt2", "ratio", "share", "Squared poverty gap (FGT2)", "贫困强度指数(FGT2)", about=SURVEY),
    Metric("income_poor_exited_persons", "stock", "persons", "Exited persons below the line",
           "已脱贫人口中收入低于贫困线者", about=SURVEY + "members of exited households under the line"),
    Metric("exits", "flow", "households", "Exits (households)", "脱贫户数", about=REGISTER),
    Metric("exits_persons", "flow", "persons", "Exits (persons)", "脱贫人数", about=REGISTER),
    Metric("exits_development_persons", "flow", "persons", "Exits by development (persons)", "开发式脱贫人数",
           about=REGISTER + "exits whose income clears the line without the year's programme transfers"),
    Metric("relapses", "flow", "households", "Relapses, 返贫 (households)", "返贫户数",
           about=REGISTER + "registered again while the register takes entries; after, exited monitoring "
                            "objects found in an earlier year and under the line"),
    Metric("relapses_persons", "flow", "persons", "Relapses, 返贫 (persons)", "返贫人数", about=REGISTER),
    Metric("reregistered", "flow", "households", "Exited households registered again", "重新建档立卡户",
           about=REGISTER),
    Metric("relapse_rate", "ratio", "share", "Relapse rate", "返贫率",
           about="relapses over exited households at the start of the year"),
    Metric("new_poor", "flow", "households", "Newly poor (households)", "新致贫户数", about=REGISTER),
    Metric("new_poor_persons", "flow", "persons", "Newly poor (persons)", "新致贫人数", about=REGISTER),
    Metric("dissolved_poor", "flow", "households", "Registered poor households dissolved", "消亡贫困户"),
    Metric("dissolved_exited", "flow", "households", "Exited households dissolved", "消亡已脱贫户"),
    Metric("monitored", "stock", "households", "Monitoring objects (监测对象, households)", "监测对象户数",
           about=REGISTER + "households under relapse monitoring at the end of the year"),
    Metric("monitored_persons", "stock", "persons", "Monitoring objects (persons)", "监测对象人数", about=REGISTER),
    Metric("monitored_unstable_exited", "stock", "households", "Monitored: unstable exited (脱贫不稳定户)",
           "脱贫不稳定户", about=REGISTER),
    Metric("monitored_edge", "stock", "households", "Monitored: marginal, at risk (边缘易致贫户)", "边缘易致贫户",
           about=REGISTER),
    Metric("monitored_hardship", "stock", "households", "Monitored: sudden hardship (突发严重困难户)",
           "突发严重困难户", about=REGISTER),
    Metric("new_monitored", "flow", "households", "Monitoring objects found", "新识别监测对象户数", about=REGISTER),
    Metric("risk_eliminated", "flow", "households", "Monitoring objects whose risk was eliminated (风险消除)",
           "风险消除户数", about=REGISTER),
    Metric("income_wage_per_capita", "ratio", "yuan per person", "Wage income per person (yuan)", "人均工资性收入(元)"),
    Metric("income_operating_per_capita", "ratio", "yuan per person", "Operating income per person (yuan)",
           "人均经营性收入(元)"),
    Metric("income_property_per_capita", "ratio", "yuan per person", "Property income per person (yuan)",
           "人均财产性收入(元)"),
    Metric("income_transfer_per_capita", "ratio", "yuan per person", "Transfer income per person (yuan)",
           "人均转移性收入(元)"),
    Metric("income_per_capita_registered_poor", "ratio", "yuan per person",
           "Income per person of the registered poor (yuan)", "贫困户人均纯收入(元)"),
    Metric("income_per_capita_filed", "ratio", "yuan per person",
           "Income per person of registered households, poor and exited (yuan)", "建档立卡户人均纯收入(元)",
           about=REGISTER + "the register's own income figure"),
    Metric("out_of_pocket_medical", "flow", "yuan", "Out-of-pocket medical costs (yuan)", "医疗自付费用(元)"))


def test_income(state, p, total: np.ndarray | None = None, expense: np.ndarray | None = None,
                rows: np.ndarray | None = None) -> np.ndarray:
    """Per-capita income as a survey measures it (yuan/person/year), of every household or of
    `rows` only: the one test, which the instruments' ranking, the panel, calibration moments,
    forecasts and backtests all use. Total income, less the share `poverty.deduct_expenditure`
    (0 by default: NBS deducts none) of out-of-pocket medical and schooling costs; `total`
    income and `expense` of the same households when the caller has them."""
    h = state.h
    pick = (lambda a: a) if rows is None else (lambda a: a.take(rows))  # take: a fifth faster than a[rows]
    if total is None:
        net = pick(h["income_wage"]) + pick(h["income_operating"])
        net += pick(h["income_property"])
        net += pick(h["income_transfer"])
    else:
        net = total.copy()
    share = p["poverty.deduct_expenditure"]
    if share:
        net -= share * (pick(h["oop"]) + pick(h["school_cost"]) if expense is None else expense)
    net /= np.maximum(pick(h["size"]), 1)
    return net


def below_line(state, p, y: np.ndarray | None = None) -> np.ndarray:
    """Households alive whose survey income (`y` when the caller has it) is under the line in
    force (`p`: a year's parameters)."""
    return (state.h["size"] > 0) & ((test_income(state, p) if y is None else y) < poverty_line(p))


def assessment_factor(state, p, rs) -> np.ndarray:
    """Each household's persistent error of the register's income assessment (a factor on
    income with mean one; drawn once by household id: the same cadres judge a household the
    same way year after year). Households formed later get theirs when they appear."""
    h = state.h
    factor = h["assessment_factor"]
    new = np.flatnonzero(factor <= 0)
    if len(new):
        sd = p["register.assessment_error"]
        z = rs.normal("register.assessment", 0, h["household_id"].take(new))
        factor[new] = np.exp(np.float32(sd) * z - np.float32(0.5 * sd * sd))
    return factor


def infer_cause(state, rows: np.ndarray, total: np.ndarray, p) -> np.ndarray:
    """Main cause for newly registered households `rows`, from what pushed them under the line:
    illness or schooling costs above `register.cost_cause_share` of income, else disability,
    old age (everyone 65+), no labour, or lacking skills."""
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
    heavy = p["register.cost_cause_share"] * np.maximum(total[rows], 1.0)
    cause = np.full(len(rows), c["skills"], dtype=np.int8)
    cause[h["labour_units"].take(rows) == 0] = c["other"]
    cause[aged] = c["aged"]
    cause[disabled] = c["disability"]
    cause[h["school_cost"].take(rows) > heavy] = c["schooling"]
    cause[h["oop"].take(rows) > heavy] = c["illness"]
    return cause


def exit_ready(state, p, assessed, line, ok) -> np.ndarray:
    """Registered households the exit assessment would pass: assessed income at least
    `exit.income_ratio` × the line, and the three guarantees met (`ok`)."""
    return (state.h["status"] == S.POOR) & (assessed >= line * p["exit.income_ratio"]) & ok


def planned_exits(state, p, w: Weights, assessed, line, ok) -> np.ndarray:
    """The exit assessment under the county's exit plan (脱贫计划): of the households ready to
    exit, those with the highest assessed income, up to the plan's share
    `register.exit_plan` of the households registered at the start of the year (all of them
    when the share is 1, as at the deadline). Returns their rows, ascending."""
    h = state.h
    ready = np.flatnonzero(exit_ready(state, p, assessed, line, ok))
    share = p["register.exit_plan"]
    if share >= 1.0 or not len(ready):
        return ready
    quota = share * w.count((h["status"] == S.POOR) & (h["size"] > 0))
    weights = w.take(ready)
    if weights.sum() <= quota:
        return ready
    order = np.lexsort((h["household_id"].take(ready), -assessed.take(ready)))  # highest first
    keep = order[np.cumsum(weights.take(order)) <= quota * (1 + 1e-12)]
    return np.sort(ready.take(keep))


def _draw(rs, name: str, year: int, h, rows: np.ndarray, rate: float) -> np.ndarray:
    """The `rows` a yearly decision with probability `rate` picks (no draw at 1: no stream moves)."""
    if rate >= 1.0 or not len(rows):
        return rows
    return rows[rs.uniform(name, year, h["household_id"].take(rows)) < rate]


def step(state, p, rs, year: int) -> dict:
    """Apply this year's register and monitoring steps; return the year's metrics."""
    h = state.h
    line = poverty_line(p)
    total = state.income_total()
    expense = h["oop"] + h["school_cost"]
    y = test_income(state, p, total, expense)
    ok = guarantees_met(state, p)
    status = h["status"]
    alive = h["size"] > 0
    w = Weights(h["weight"])
    exited_before = w.count((status == S.EXITED) & alive)
    dissolved = np.flatnonzero(~alive)  # every member died this year
    dissolved_status = status.take(dissolved)
    assessed = y * assessment_factor(state, p, rs)  # income as the register's assessment sees it

    # the register: exits every year from its start, as many as the exit plan asks for at
    # most; entries in its open years
    exit_rows = relapse_rows = new_rows = np.zeros(0, dtype=np.intp)
    if year >= p["register.start_year"]:
        exit_rows = planned_exits(state, p, w, assessed, line, ok & alive)
    entry_open = p["register.start_year"] <= year <= p["register.last_entry_year"]
    if entry_open:
        seen = assessed
        if p["register.deduct_expenditure"]:  # a local rule admits heavy rigid medical spending (004)
            seen = assessed - p["register.deduct_expenditure"] * h["oop"] / np.maximum(h["size"], 1)
        below = (seen < line) & alive
        first = year == p["register.start_year"] and not (status != S.NONPOOR).any()  # 精准识别: everyone found
        rate = 1.0 if first else p["register.identification"]
        relapse_rows = _draw(rs, "status.identification", year, h,
                             np.flatnonzero((status == S.EXITED) & (below | ~ok) & alive), rate)
        new_rows = _draw(rs, "status.identification", year, h, np.flatnonzero((status == S.NONPOOR) & below), rate)
    status[exit_rows] = S.EXITED
    h["year_exited"][exit_rows] = year
    status[relapse_rows] = S.POOR
    status[new_rows] = S.POOR
    h["relapses"][relapse_rows] += 1
    h["cause"][new_rows] = infer_cause(state, new_rows, total, p)
    h["year_registered"][new_rows] = year
    # a household whose members have all died leaves the register
    status[dissolved] = S.NONPOOR
    state.values["previous_line"] = line  # next year's anti-poverty insurance trigger

    closed = not entry_open and year >= p["register.start_year"]
    monitoring, fell = _monitor(state, p, rs, year, assessed, y, total, expense, alive, w)
    if closed:  # 返贫 as it was counted once nobody could enter the register
        relapse_rows = fell
        h["relapses"][relapse_rows] += 1
    np.less(assessed, line, out=h["below_line"])  # in place: the columns' buffers grow with splits
    np.copyto(h["income_last"], y)

    # development exits (开发式): the income the assessment counts clears the exit line without
    # this year's programme transfers (social-assistance backstop 兜底 and the like)
    own = (total.take(exit_rows) - h["programme_transfer"].take(exit_rows)) / np.maximum(h["size"].take(exit_rows), 1)
    developed = exit_rows[own * h["assessment_factor"].take(exit_rows) >= line * p["exit.income_ratio"]]
    flows = {name: w.count(rows) for name, rows in (
        ("exits", exit_rows), ("relapses", relapse_rows), ("new_poor", new_rows),
        ("reregistered", relapse_rows if entry_open else new_rows[:0]),
        ("dissolved_poor", dissolved[dissolved_status == S.POOR]),
        ("dissolved_exited", dissolved[dissolved_status == S.EXITED]))}
    size = h["size"]
    persons = {f"{name}_persons": float((w.take(rows) * size.take(rows)).sum()) for name, rows in (
        ("exits", exit_rows), ("exits_development", developed), ("relapses", relapse_rows), ("new_poor", new_rows))}
    return {**metrics(state, y, total, line, w, exited_before=exited_before, **flows), **persons, **monitoring}


def _monitor(state, p, rs, year, assessed, y, total, expense, alive, w: Weights) -> tuple[dict, np.ndarray]:
    """Monitoring objects (防止返贫监测对象): who leaves, who has fallen back, who is found.

    A household is at risk when its assessed income is under the year's threshold and a risk
    has struck it this year: rigid spending over `monitoring.expenditure_share` of income, or
    income fallen by more than `monitoring.income_drop` (因病因残因灾, 收入大幅缩减); a household under
    the line itself is at risk whatever the cause. The risk is eliminated
    (风险消除) after `monitoring.stable_years` assessments above the threshold without hardship.
    Returns the metrics and the exited monitoring objects found before this year, helped since,
    and under the line now, each counted once a spell: relapse (返贫) as it was counted once the
    register closed."""
    h = state.h
    kind = h["monitor_kind"]
    none = np.zeros(0, dtype=np.intp)
    if year < p["monitoring.start_year"]:
        return {"monitored": 0.0, "monitored_persons": 0.0, "new_monitored": 0.0, "risk_eliminated": 0.0,
                **{f"monitored_{name}": 0.0 for name in MONITOR_KINDS.values()}}, none
    status = h["status"]
    line, threshold = poverty_line(p), monitoring_threshold(p)
    # leaving: the risk is eliminated after enough years above the threshold without hardship
    watched = np.flatnonzero(kind > 0)
    w_total, w_expense = total.take(watched), expense.take(watched)
    safe = ((assessed.take(watched) >= threshold) & (w_expense <= p["monitoring.expenditure_share"] * np.maximum(w_total, 0.0))
            & alive.take(watched) & (status.take(watched) != S.POOR))
    stable = h["monitor_stable"]
    stable[watched] = np.where(safe, stable.take(watched) + 1, 0)
    gone = watched[(stable.take(watched) >= p["monitoring.stable_years"])
                   | ~alive.take(watched) | (status.take(watched) == S.POOR)]
    kind[gone] = 0
    stable[gone] = 0
    h["relapse_counted"][gone] = False
    # fallen back despite the help: monitored since an earlier year, exited, under the line
    still = watched[kind.take(watched) > 0]
    fell = still[(status.take(still) == S.EXITED) & (assessed.take(still) < line)
                 & ~h["relapse_counted"].take(still) & alive.take(still)]
    h["relapse_counted"][fell] = True
    # entering: households under the threshold (the candidates, found by one pass) that a risk
    # struck, found with the year's identification rate
    under = np.flatnonzero((assessed < threshold) & (kind == 0))
    under = under[alive.take(under) & (status.take(under) != S.POOR)]
    c_total = total.take(under)
    hardship = expense.take(under) > p["monitoring.expenditure_share"] * np.maximum(c_total, 0.0)
    dropped = y.take(under) < (1.0 - p["monitoring.income_drop"]) * h["income_last"].take(under)
    at_risk = hardship | dropped | (assessed.take(under) < line)
    found = _draw(rs, "status.monitoring", year, h, under[at_risk], p["monitoring.identification"])
    hard = hardship[at_risk]
    hard = hard if len(found) == len(hard) else hard[np.searchsorted(under[at_risk], found)]
    kind[found] = np.where(status.take(found) == S.EXITED, UNSTABLE, np.where(hard, HARDSHIP, EDGE)).astype(np.int8)
    h["year_monitored"][found] = year
    np.greater(kind, 0, out=h["monitored"])
    watched = np.flatnonzero(h["monitored"])
    out = {"monitored": w.count(watched),
           "monitored_persons": float((w.take(watched) * h["size"].take(watched)).sum()),
           "new_monitored": w.count(found), "risk_eliminated": w.count(gone)}
    kinds = kind.take(watched)
    for code, name in MONITOR_KINDS.items():
        out[f"monitored_{name}"] = w.count(watched[kinds == code])
    return out, fell


def metrics(state, y, total, line, w: Weights, **flows: float) -> dict:
    """The year's aggregates, weighted by household weights `w` (persons by household size);
    `flows`: the year's weighted register flows (exits, relapses, reregistered, new_poor,
    dissolved_poor, dissolved_exited) and the exited households at the start of the year
    (exited_before). Relapses are exited households registered again (`reregistered`) while the
    register takes entries, and exited monitoring objects fallen under the line after it.

    Sums over the poor and the registered go over their rows only (a few percent of
    households)."""
    h = state.h
    size = h["size"]
    registered = np.flatnonzero(h["status"] == S.POOR)
    filed = np.flatnonzero(h["status"] != S.NONPOOR)  # ever registered (建档立卡户): poor and exited
    poor = np.flatnonzero(y < line)  # their gap is > 0 (only theirs: line > 0)
    gap = line - y.take(poor)
    gap *= 1.0 / line
    np.minimum(gap, 1.0, out=gap)
    wp = w.take(poor) * size.take(poor)  # persons they stand for
    poor_persons = float(wp.sum())
    reg_persons = float((w.take(registered) * size.take(registered)).sum())
    filed_persons = float((w.take(filed) * size.take(filed)).sum())
    persons = w.total(size)
    per_person = 1.0 / persons if persons else 0.0
    exited_poor = poor[h["status"].take(poor) == S.EXITED]
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
        "income_poor_exited_persons": float((w.take(exited_poor) * size.take(exited_poor)).sum()),
        "exits": flows["exits"],
        "relapses": flows["relapses"],
        "reregistered": flows["reregistered"],
        "relapse_rate": flows["relapses"] / flows["exited_before"] if flows["exited_before"] else 0.0,
        "new_poor": flows["new_poor"],
        "dissolved_poor": flows["dissolved_poor"],
        "dissolved_exited": flows["dissolved_exited"],
    }
    for source in S.INCOME_SOURCES:
        out[f"income_{source}_per_capita"] = w.total(h[f"income_{source}"]) * per_person
    registered_income = float((w.take(registered) * total.take(registered)).sum())
    out["income_per_capita_registered_poor"] = registered_income / reg_persons if reg_persons else 0.0
    filed_income = float((w.take(filed) * total.take(filed)).sum())
    out["income_per_capita_filed"] = filed_income / filed_persons if filed_persons else 0.0
    out["out_of_pocket_medical"] = w.total(h["oop"])
    return out
