"""Income by source: wage 工资性, operating 经营性, property 财产性, transfer 转移性.

Wage and operating income follow the permanent–transitory model: a household's permanent
level grows at the trend and takes a persistent shock each year (an AR(1) in logs with
persistence `income.persistence`; 1 is a random walk), and the year's income is that level
times a transitory shock (both mean-one lognormal). Wage income scales with the
household's labour units; operating income falls to a share when nobody can work, and
is hit by covariate shocks: drought strikes whole villages (or the whole region at once),
and a regional livestock price cycle moves pastoral incomes together.
"""
from __future__ import annotations

import numpy as np

from fupin_sim.metrics import Metric
from fupin_sim.population import schema as S
from fupin_sim.population.state import Carried

_REGION = np.zeros(1, dtype=np.int64)  # the id of the one regional draw
STATE = Carried(columns={"wage_shock": (np.float32, 0.0), "operating_shock": (np.float32, 0.0)},  # the persistent
                inherited=frozenset({"wage_shock", "operating_shock"}),  # deviations, a family's fortune
                values={"livestock_price": (float, 0.0),  # the regional price cycle's log deviation
                        "drought_villages": (float, None),  # this year's share of villages in drought
                        "income_start": (int, None)})  # the first year of income shocks
METRICS = (Metric("livestock_price_index", "ratio", "index", "Livestock price index", "牲畜价格指数"),
           Metric("drought_village_share", "ratio", "share", "Share of villages in drought", "受旱村比例"))


def _lognormal_factor(z: np.ndarray, sd: float) -> np.ndarray:
    """exp(sd·z − sd²/2): mean one, so shocks do not shift the average."""
    return np.exp(np.float32(sd) * z - np.float32(0.5 * sd * sd))


def _persistent_factor(shock: np.ndarray, z: np.ndarray, sd: float, rho: float, t: int) -> np.ndarray:
    """The year's factor on a permanent level whose log deviation follows an AR(1), d' = ρ·d +
    sd·z (ρ = 1: a random walk), kept mean one: the level is trend × exp(d − v/2), with v the
    variance d has after the years of shocks so far. Updates `shock` (d, float32) in place."""
    var = lambda k: sd * sd * k if rho == 1.0 else sd * sd * (1.0 - rho ** (2 * k)) / (1.0 - rho * rho)  # noqa: E731
    step = np.multiply(z, np.float32(sd))   # d' − d = sd·z − (1 − ρ)·d, in float32 like the draws
    step -= np.float32(1.0 - rho) * shock
    shock += step
    step -= np.float32(0.5 * (var(t + 1) - var(t)))
    return np.exp(step, out=step)


def covariate_loss(state, p, rs, year: int) -> np.ndarray:
    """Share of operating income each household loses to drought this year."""
    villages = np.arange(int(state.h["village"].max(initial=0)) + 1)
    u_hit, u_sev = rs.uniform_pair("shocks.drought", year, villages)
    regional = rs.uniform("shocks.drought_region", year, _REGION)[0]
    prob = p["shocks.drought_probability"]
    share = p["shocks.drought_regional_share"]
    # a regional drought strikes every village; otherwise villages are struck one by one, with
    # the rates set so that each village's yearly probability is `prob` either way
    region_hit = regional < prob * share
    village_hit = region_hit | (u_hit < prob * (1 - share) / max(1 - prob * share, 1e-12))
    severity = np.where(village_hit, np.minimum(2.0 * p["shocks.drought_loss"] * u_sev, 1.0), 0.0)
    loss = severity.take(state.h["village"])
    loss *= state.h["region_type"] != S.CODE["region_type"]["urban_fringe"]  # urban-fringe incomes are not farm incomes
    state.values["drought_villages"] = float(village_hit.mean())
    return loss


def step(state, p, rs, year: int) -> dict:
    h = state.h
    hid = h["household_id"]
    sd_p, sd_t = p["income.sd_permanent"], p["income.sd_transitory"]
    wage_perm, wage_tran = rs.normal_pair("income.wage", year, hid)
    op_perm, op_tran = rs.normal_pair("income.operating", year, hid)

    # the year's incomes are written into their columns in place: a column kept in its buffer
    # grows with new households without a copy (`State.add_households`)
    rho = p["income.persistence"]
    if state.values.get("income_start") is None:
        state.values["income_start"] = year
    t = year - state.values["income_start"]  # years of shocks before this one
    h["wage_level"] *= (1.0 + p["income.wage_growth"]) * _persistent_factor(h["wage_shock"], wage_perm, sd_p, rho, t)
    wage = np.multiply(h["labour_units"], h["wage_level"], out=h["income_wage"])
    wage *= _lognormal_factor(wage_tran, sd_t)

    h["operating_level"] *= (1.0 + p["income.operating_growth"]) * _persistent_factor(
        h["operating_shock"], op_perm, sd_p, rho, t)
    price = state.values["livestock_price"]
    price = p["shocks.livestock_price_rho"] * price + p["shocks.livestock_price_sd"] * float(
        rs.normal("shocks.livestock_price", year, _REGION)[0])
    state.values["livestock_price"] = price
    # factors applied to the rows they concern only (the others' factor is 1, exactly)
    covariate = np.subtract(1.0, covariate_loss(state, p, rs, year)).astype(np.float64)  # in float32, as the loss
    pastoral = np.flatnonzero(h["region_type"] == S.CODE["region_type"]["pastoral"])
    covariate[pastoral] *= np.exp(price)
    level = h["operating_level"]
    operating = np.multiply(level, covariate, out=h["income_operating"])
    idle = np.flatnonzero(h["labour_units"] <= 0)
    operating[idle] = level.take(idle) * p["income.operating_without_labour"] * covariate.take(idle)
    operating *= _lognormal_factor(op_tran, sd_t)

    h["property_base"] *= 1.0 + p["income.property_growth"]
    np.copyto(h["income_property"], h["property_base"])  # instruments add their streams on top each year
    h["transfer_base"] *= 1.0 + p["income.transfer_growth"]
    transfer = np.multiply(12.0 * p["income.pension_monthly"], h["pensioners"], out=h["income_transfer"])
    transfer += h["transfer_base"]
    return {"livestock_price_index": float(np.exp(price)), "drought_village_share": state.values["drought_villages"]}
