"""Poverty-alleviation microloans (扶贫小额信贷): collateral-free loans up to 50,000 yuan for
up to 3 years, interest subsidised from public funds, defaults borne by the county's
risk-compensation fund.

A loan's principal comes from bank credit and is household debt. While it runs, the
invested sum earns operating income; the principal is repaid in equal parts from income;
the interest subsidy is paid from the instrument's public lines (what they cannot pay, the
household pays); a default, likelier in a year of heavy medical, schooling or drought
costs, is covered by the risk-compensation lines (or lost by the bank).
"""
from __future__ import annotations

import numpy as np

from fupin_sim.interventions.base import Instrument
from fupin_sim.population.rules import select


class Microloan(Instrument):
    name, family = "microloan", "credit"
    description = "collateral-free microloans with subsidised interest and a risk-compensation fund"
    priority = ("lowest_income",)
    loan = True
    category = "loan"
    columns = {"loan_balance": (np.float64, 0.0), "loan_invested": (np.float64, 0.0),
               "loan_years_left": (np.int16, 0)}
    values = {"loan_defaults": (float, None), "loan_repaid": (float, None)}  # this year's, yuan

    def carry(self, ctx, rules):
        h = ctx.h
        rows = np.flatnonzero(h["loan_balance"] > 0)
        ctx.state.values["loan_defaults"] = 0.0
        ctx.state.values["loan_repaid"] = 0.0
        if not len(rows):
            return
        # the borrowers' columns are gathered once and written back once
        funds, w, balance = ctx.funds, ctx.weights.take(rows), h["loan_balance"].take(rows)
        operating = h["income_operating"].take(rows)
        operating += h["loan_invested"].take(rows) * rules["return_on_investment"]
        interest = balance * rules["interest_rate"]
        due = interest * rules["interest_subsidy"]
        paid = funds.charge(self.name, rows, due * w, "interest_subsidy") / w
        operating -= interest - paid  # what the subsidy does not cover, the household pays
        h["income_operating"][rows] = operating

        income = h["income_wage"].take(rows) + operating + h["income_property"].take(rows) + h["income_transfer"].take(rows)
        shocked = (h["oop"].take(rows) + h["school_cost"].take(rows)
                   > rules["shock_share"] * np.maximum(income, 1))
        risk = rules["default_rate"] * np.where(shocked, rules["default_after_shock"], 1.0)
        default = ctx.rs.uniform("microloan.default", ctx.year, h["household_id"].take(rows)) < risk
        gone = rows[default]
        if len(gone):
            lost, w_gone = balance[default], w[default]
            funds.charge(self.name, gone, lost * w_gone, "default_cover")
            ctx.state.values["loan_defaults"] = float((lost * w_gone).sum())
            h["debt"][gone] = np.maximum(h["debt"][gone] - lost, 0.0)
            h["loan_balance"][gone] = 0.0
            h["loan_invested"][gone] = 0.0
            h["loan_years_left"][gone] = 0
        keep = ~default
        running, balance, years = rows[keep], balance[keep], h["loan_years_left"][rows[keep]]
        repay = balance / np.maximum(years, 1)
        ctx.state.values["loan_repaid"] = float((repay * w[keep]).sum())
        balance -= repay
        h["debt"][running] = np.maximum(h["debt"][running] - repay, 0.0)
        years -= 1
        done = years <= 0
        balance[done] = 0.0
        h["loan_balance"][running] = balance
        h["loan_years_left"][running] = years
        h["loan_invested"][running[done]] = 0.0

    def eligible(self, ctx, rules, rows):
        h = ctx.h
        rows = select(rows, (h["labour_units"].take(rows) >= 1) & (h["loan_balance"].take(rows) == 0))
        wants = ctx.rs.uniform("microloan.take_up", ctx.year, h["household_id"].take(rows)) < rules["take_up"]
        return select(rows, wants)

    def cost(self, ctx, rules, rows):
        return np.full(len(rows), float(rules["amount"]))

    def serve(self, ctx, rules, rows, amount):
        h = ctx.h
        h["loan_balance"][rows] = amount
        h["loan_invested"][rows] = amount
        h["loan_years_left"][rows] = int(rules["term_years"])
        h["debt"][rows] += amount
