"""Person shocks: illness (admissions by age, chronic status and register status, costs by
severity, the insurance layers of the reimbursement chain), chronic-disease and disability
onset, schooling costs.

The inpatient chain (兴安盟's five steps, 004_adfd829cfa619ca3.txt) starts here with the two
insurance layers every insured person has: basic medical insurance (above a deductible, up
to a ceiling) and critical-illness insurance (above a threshold); registered poor have the
deductible and threshold reduced. What is left falls on the household unless the health
instruments (medical assistance, the out-of-pocket cap and backstop, supplementary
insurance, chronic-disease assistance: `fupin_sim.interventions.health`) pay part of it;
the year's admissions and chronic-care costs are kept in `state.values["admissions"]` and
`state.values["chronic_costs"]` for them, and the students in `state.values["students"]` for
education subsidies (`STATE`).
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from fupin_sim.metrics import Metric
from fupin_sim.population import schema as S
from fupin_sim.population.rules import MAX_AGE, age_table, wsum
from fupin_sim.population.state import Carried

PAYERS = ("basic_insurance", "critical_insurance")
STATE = Carried(
    columns={"oop": (np.float64, 0.0), "school_cost": (np.float64, 0.0)},  # this year's costs, per household
    values={"risk_profile": (np.ndarray, None), "admission_key": (str, None), "admission_table": (np.ndarray, None),
            # this year's cases, for the health and education instruments: {"hh": household rows, ...}
            "admissions": (dict, None), "chronic_costs": (dict, None), "students": (dict, None)})
METRICS = (
    Metric("admissions", "flow", "admissions", "Hospital admissions", "住院人次"),
    Metric("medical_cost", "flow", "yuan", "Medical costs (yuan)", "医疗费用(元)"),
    Metric("new_chronic", "flow", "persons", "New chronic illnesses", "新增慢性病"),
    Metric("new_disabled", "flow", "persons", "New disabilities", "新增残疾"),
    Metric("paid_basic_insurance", "flow", "yuan", "Paid by basic medical insurance (yuan)", "基本医保支付(元)"),
    Metric("paid_critical_insurance", "flow", "yuan", "Paid by critical-illness insurance (yuan)", "大病保险支付(元)"),
    Metric("inpatient_left_after_insurance", "flow", "yuan", "Inpatient costs left after insurance (yuan)",
           "保险后住院自付(元)"),
    Metric("chronic_care_cost", "flow", "yuan", "Chronic care costs (yuan)", "慢病治疗费用(元)"))


def risk_profile(state) -> np.ndarray:
    """Persons of the starting population by [registered?, chronic?, age]: the weights that
    turn relative risks into the survey's mean admission rates."""
    pp = state.p
    registered = (state.h["status"] != S.NONPOOR)[pp["hh"]].astype(np.int64)
    index = (registered * 2 + pp["chronic"]) * (MAX_AGE + 1) + pp["age"]
    return np.bincount(index, minlength=4 * (MAX_AGE + 1)).reshape(2, 2, MAX_AGE + 1).astype(np.float64)


def admission_table(profile: np.ndarray, p) -> np.ndarray:
    """Admission probability by [registered?, chronic?, age] for a year's parameters, scaled so
    that the mean over the starting population equals the survey rates for non-poor and
    registered poor (flat index: (registered * 2 + chronic) * (MAX_AGE + 1) + age)."""
    by_age = age_table(p["health.age_risk"]).astype(np.float64)
    risk = np.stack([by_age, by_age * p["health.chronic_risk"]])  # [chronic, age]
    rates = np.asarray(p["health.admission_rate"], float)
    table = np.empty((2, 2, MAX_AGE + 1))
    for g in (0, 1):
        persons = profile[g].sum()
        mean = (profile[g] * risk).sum() / persons if persons else 1.0
        table[g] = risk * (rates[g] / max(mean, 1e-12))
    return np.minimum(table, 1.0).astype(np.float32).ravel()


def _sum_by(rows: np.ndarray, amounts: np.ndarray, n: int) -> np.ndarray:
    """Each household's total of `amounts` (yuan), in float64 even when nothing falls in the
    year (np.bincount of no weights counts in integers)."""
    return np.bincount(rows, weights=amounts, minlength=n).astype(np.float64, copy=False)


def insurance_layers(cost: np.ndarray, insured: np.ndarray, poor: np.ndarray, p) -> dict[str, np.ndarray]:
    """What basic and critical-illness insurance pay of each inpatient cost, and what is left.
    Worked out in place, in the order of operations of the formulas in the comments (a third
    faster than with a temporary array for each step, for the ~400k admissions at 10^6)."""
    factor = np.where(poor, p["health.poor_threshold_factor"], 1.0)
    # basic = min(basic_rate * max(cost - basic_deductible * factor, 0), basic_ceiling) * insured
    basic = np.multiply(p["health.basic_deductible"], factor)
    np.subtract(cost, basic, out=basic)
    np.maximum(basic, 0.0, out=basic)
    np.multiply(p["health.basic_rate"], basic, out=basic)
    np.minimum(basic, p["health.basic_ceiling"], out=basic)
    basic *= insured
    left = cost - basic
    # critical = critical_rate * max(left - critical_threshold * factor, 0) * insured
    critical = np.multiply(p["health.critical_threshold"], factor, out=factor)
    np.subtract(left, critical, out=critical)
    np.maximum(critical, 0.0, out=critical)
    np.multiply(p["health.critical_rate"], critical, out=critical)
    critical *= insured
    left -= critical
    return {"basic_insurance": basic, "critical_insurance": critical, "left": left}


def classes(edges: np.ndarray, u: np.ndarray) -> np.ndarray:
    """`np.searchsorted(edges, u, side="right")` for a few edges: how many edges are <= each u,
    counted edge by edge (comparisons in float64, as searchsorted's), four times as fast."""
    out = np.zeros(len(u), dtype=np.intp)
    for edge in np.asarray(edges, dtype=np.float64):
        out += u >= edge
    return out


def step(state, p, rs, year: int) -> dict:
    h, pp = state.h, state.p
    hh, pid, age = pp["hh"], pp["person_id"], pp["age"]
    if "risk_profile" not in state.values:
        state.values["risk_profile"] = risk_profile(state)
    key = (p["health.admission_rate"], p["health.age_risk"], p["health.chronic_risk"])
    if state.values.get("admission_key") != repr(key):  # rebuilt only when dated rates change
        state.values["admission_key"] = repr(key)
        state.values["admission_table"] = admission_table(state.values["risk_profile"], p)
    registered = h["status"] != S.NONPOOR  # poor and exited households keep the health policies
    poor_p = registered.take(hh)
    chronic = pp["chronic"]
    index = poor_p.astype(np.int16)  # (registered * 2 + chronic) * (MAX_AGE + 1) + age, in int16
    index *= 2
    index += chronic
    index *= MAX_AGE + 1
    index += age
    # the triple of draws under the admission rate and the two onset rates, each person's
    # by age (and more): tested on the draws' bits, without making them
    admit, chronic_onset, disabled_onset = rs.below(
        "shocks.illness", year, pid, "triple", [(state.values["admission_table"], index),
                                                 (age_table(p["health.chronic_onset"]), age),
                                                 (age_table(p["disability.onset"]), age)])
    admitted = np.flatnonzero(admit)

    # costs of the admitted: severity class, then a lognormal spread within the class
    u_sev, u_cost = rs.uniform_pair("shocks.illness_cost", year, pid.take(admitted))
    severity = np.minimum(classes(np.cumsum(p["health.severity_shares"]), u_sev), len(p["health.severity_cost"]) - 1)
    sd = p["health.cost_sd"]
    cost = np.asarray(p["health.severity_cost"], float)[severity] * np.exp(sd * ndtri(u_cost) - 0.5 * sd * sd)
    ha = hh.take(admitted)
    split = insurance_layers(cost, h["insured"].take(ha), poor_p.take(admitted), p)
    n = state.n
    state.values["admissions"] = {"hh": ha, "cost": cost, "left": split["left"].copy()}
    # chronic care: a yearly outpatient cost per patient, lognormal around its mean
    chronic_rows = np.flatnonzero(chronic)
    z = rs.normal("shocks.chronic_cost", year, pid.take(chronic_rows))
    sd_c = p["health.chronic_cost_sd"]
    chronic_cost = p["health.chronic_cost"] * np.exp(sd_c * z - 0.5 * sd_c * sd_c)
    chronic_hh = hh.take(chronic_rows)
    state.values["chronic_costs"] = {"hh": chronic_hh, "cost": chronic_cost}
    oop = _sum_by(ha, split["left"], n)  # written into the column in place (its
    oop += _sum_by(chronic_hh, chronic_cost, n)  # buffer grows with new households)
    np.copyto(h["oop"], oop)
    students = np.flatnonzero(pp["school"] > 0)
    student_hh, stage = hh.take(students), pp["school"].take(students)
    state.values["students"] = {"rows": students, "hh": student_hh, "stage": stage}
    stage_cost = np.array([0.0, *p["education.cost"]])
    np.copyto(h["school_cost"], _sum_by(student_hh, stage_cost.take(stage), n))

    # onset of chronic illness and disability (they lower labour capacity from now on)
    new_chronic = np.flatnonzero(chronic_onset & ~chronic)  # those not yet ill (or disabled)
    new_disabled = np.flatnonzero(disabled_onset & ~pp["disabled"])
    chronic[new_chronic] = True
    pp["disabled"][new_disabled] = True
    labour = pp["labour"]
    state.set_labour(new_chronic, np.minimum(labour.take(new_chronic), S.PARTIAL).astype(np.int8), p)
    state.set_labour(new_disabled, np.zeros(len(new_disabled), np.int8), p)

    w = h["weight"]
    wa = w.take(ha)
    out = {"admissions": float(wa.sum()), "medical_cost": wsum(cost, wa),
           "new_chronic": float(w.take(hh.take(new_chronic)).sum()),
           "new_disabled": float(w.take(hh.take(new_disabled)).sum())}
    for payer in PAYERS:
        out[f"paid_{payer}"] = wsum(split[payer], wa)
    out["inpatient_left_after_insurance"] = wsum(split["left"], wa)
    out["chronic_care_cost"] = wsum(chronic_cost, w.take(chronic_hh))
    return out
