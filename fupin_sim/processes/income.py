"""Income by source: wage 工资性, operating 经营性, property 财产性, transfer 转移性.

Wage and operating income follow the permanent–transitory model: a household's permanent
level grows at the trend and takes a persistent shock each year, and the year's income is
that level times a transitory shock (both mean-one lognormal). Wage income scales with the
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
STATE = Carried(values={"livestock_price": (float, 0.0),  # the regional price cycle's log deviation
                        "drought_villages": (float, None)})  # this year's share of villages in drought
METRICS = (Metric("livestock_price_index", "ratio", "index", "Livestock price index", "牲畜价格指数"),
           Metric("drought_village_share", "ratio", "share", "Share of villages in drought", "受旱村比例"))


def _lognormal_factor(z: np.ndarray, sd: float) -> np.ndarray:
    """exp(sd·z − sd²/2): mean one, so shocks do not shift the average."""
    return np.exp(np.float32(sd) * z - np.float32(0.5 * sd * sd))


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

    h["wage_level"] *= (1.0 + p["income.wage_growth"]) * _lognormal_factor(wage_perm, sd_p)
    wage = h["labour_units"] * h["wage_level"]  # products in place: fewer temporaries over every household
    wage *= _lognormal_factor(wage_tran, sd_t)
    h["income_wage"] = wage

    h["operating_level"] *= (1.0 + p["income.operating_growth"]) * _lognormal_factor(op_perm, sd_p)
    price = state.values["livestock_price"]
    price = p["shocks.livestock_price_rho"] * price + p["shocks.livestock_price_sd"] * float(
        rs.normal("shocks.livestock_price", year, _REGION)[0])
    state.values["livestock_price"] = price
    # factors applied to the rows they concern only (the others' factor is 1, exactly)
    covariate = np.subtract(1.0, covariate_loss(state, p, rs, year)).astype(np.float64)  # in float32, as the loss
    pastoral = np.flatnonzero(h["region_type"] == S.CODE["region_type"]["pastoral"])
    covariate[pastoral] *= np.exp(price)
    level = h["operating_level"]
    operating = level * covariate
    idle = np.flatnonzero(h["labour_units"] <= 0)
    operating[idle] = level.take(idle) * p["income.operating_without_labour"] * covariate.take(idle)
    operating *= _lognormal_factor(op_tran, sd_t)
    h["income_operating"] = operating

    h["property_base"] *= 1.0 + p["income.property_growth"]
    h["income_property"] = h["property_base"].copy()  # instruments add their streams on top each year
    h["transfer_base"] *= 1.0 + p["income.transfer_growth"]
    transfer = 12.0 * p["income.pension_monthly"] * h["pensioners"]
    transfer += h["transfer_base"]
    h["income_transfer"] = transfer
    return {"livestock_price_index": float(np.exp(price)), "drought_village_share": state.values["drought_villages"]}
