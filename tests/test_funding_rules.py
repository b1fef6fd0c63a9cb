"""Shared lines are split by a stated rule, not by list order; unspent money is carried over,
re-pooled or returned by the line's rule, and every yuan is accounted for."""
import numpy as np
import pytest

import fupin_sim as fs
from fupin_sim.errors import InputError
from fupin_sim.interventions import parse
from test_funding import check_books, scenario_with

PAIR = ["industry_menu", "skills_training"]


def _run(interventions, budgets, years=(2016, 2018), households=3000):
    result = fs.run(scenario_with(interventions, budgets, years=years, households=households, seed=3))
    check_books(result)
    return result


def _drawn(result, line):
    led = result.ledger[(result.ledger["line"] == line) & (result.ledger["category"] != "loan")]
    return led.groupby(["year", "instrument"])["amount"].sum()


def test_a_shared_line_does_not_depend_on_the_order_instruments_are_listed():
    budgets = {"integrated_agriculture": {"instruments": PAIR, "amounts": 3_000_000}}
    forward = _run({i: {} for i in PAIR}, budgets)
    backward = _run({i: {} for i in reversed(PAIR)}, {"integrated_agriculture": {"instruments": PAIR[::-1],
                                                                                 "amounts": 3_000_000}})
    cols = [f"{k}_{i}" for i in PAIR for k in ("served", "spending")]
    assert forward.summary[cols].equals(backward.summary[cols])
    first = forward.summary.iloc[0]
    assert first["served_industry_menu"] > 0 and first["served_skills_training"] > 0  # neither starves


def test_need_gives_each_instrument_at_most_its_demand_and_leaves_the_rest_to_whoever_needs_it():
    """With more money than both need, each is served in full and the rest is left on the line."""
    plenty = _run({i: {} for i in PAIR}, {"integrated_agriculture": {"instruments": PAIR, "amounts": "unlimited"}},
                  years=(2016, 2016))
    rich = _run({i: {} for i in PAIR}, {"integrated_agriculture": {"instruments": PAIR, "amounts": 1e10}},
                years=(2016, 2016))
    for i in PAIR:
        assert rich.summary[f"served_{i}"].iloc[0] == plenty.summary[f"served_{i}"].iloc[0]
    assert rich.budget["unspent"].iloc[0] == pytest.approx(1e10 - plenty.summary["spending"].iloc[0])


def test_proportional_shares_bind_each_instrument():
    amount = 3_000_000
    share = {"rule": "proportional", "shares": {"industry_menu": 0.25, "skills_training": 0.75}}
    result = _run({i: {} for i in PAIR}, {"integrated_agriculture": {"instruments": PAIR, "amounts": amount,
                                                                     "share": share}}, years=(2016, 2016))
    drawn = _drawn(result, "integrated_agriculture").loc[2016]
    for i, s in share["shares"].items():
        assert drawn[i] <= s * amount + 1e-6
        assert drawn[i] > s * amount - 5 * 3 * 1600 * result.summary["households"].iloc[0] / 3000  # a few households' cost


def _carry_run(rule, pooled=True, amounts=None):
    """Money in 2016 (and a yuan in 2018, so the line is still open), more than skills training
    can use in two years."""
    budgets = {"central_special": {"instruments": ["skills_training"], "amounts": amounts or {2016: 2e8, 2018: 1.0},
                                   "unspent": rule}}
    if pooled:
        budgets["provincial_special"] = {"amounts": 0}
    return _run({"skills_training": {}}, budgets)


def test_unspent_money_is_carried_over_once_then_re_pooled():
    b = _carry_run("carry").budget.set_index(["year", "line"])
    left16 = b.loc[(2016, "central_special"), "unspent"]
    assert b.loc[(2016, "central_special"), "carried"] == pytest.approx(left16)
    assert b.loc[(2017, "central_special"), "available"] == pytest.approx(left16)  # 结转: one more year
    left17 = b.loc[(2017, "central_special"), "unspent"]
    assert b.loc[(2017, "central_special"), "carried"] == 0  # two years old: re-pooled (收回统筹)
    assert b.loc[(2017, "central_special"), "pooled"] == pytest.approx(left17)
    assert b.loc[(2018, "provincial_special"), "available"] == pytest.approx(left17)
    assert b.loc[[2016, 2017], "returned"].sum() == 0  # nothing returned while it can still be used


def test_unspent_money_pooled_at_once_or_returned():
    pooled = _carry_run("pool").budget.set_index(["year", "line"])
    left16 = pooled.loc[(2016, "central_special"), "unspent"]
    assert pooled.loc[(2016, "central_special"), "pooled"] == pytest.approx(left16)
    assert pooled.loc[(2017, "provincial_special"), "available"] == pytest.approx(left16)
    returned = _carry_run("return").budget.set_index(["year", "line"])
    assert returned.loc[(2016, "central_special"), "returned"] == pytest.approx(
        returned.loc[(2016, "central_special"), "unspent"])
    assert (2017, "central_special") not in returned.index  # nothing is carried: the line is empty that year
    no_pool = _carry_run("pool", pooled=False)
    assert no_pool.summary["returned"].iloc[0] == pytest.approx(no_pool.summary["unspent"].iloc[0])


def test_a_line_whose_years_have_ended_carries_nothing_over():
    """What a dated line has left in its last year goes to the pooled line, or back."""
    b = _carry_run("carry", amounts={2016: 2e8}).budget.set_index(["year", "line"])
    left = b.loc[(2016, "central_special"), "unspent"]
    assert b.loc[(2016, "central_special"), "carried"] == 0
    assert b.loc[(2016, "central_special"), "pooled"] == pytest.approx(left)
    assert b.loc[(2017, "provincial_special"), "available"] == pytest.approx(left)


@pytest.mark.parametrize("line, message", [
    ({"instruments": PAIR, "amounts": 5, "share": "needs"},
     "budgets.integrated_agriculture.share: expected one of ['need', 'proportional']"),
    ({"instruments": PAIR, "amounts": "unlimited", "share": "need"},
     "budgets.integrated_agriculture.share: an entitlement line (unlimited) pays everyone due and has nothing to "
     "share; remove 'share'"),
    ({"instruments": ["industry_menu"], "amounts": 5, "share": "need"},
     "budgets.integrated_agriculture.share: the line pays one instrument only (['industry_menu']); there is "
     "nothing to share"),
    ({"instruments": PAIR, "amounts": 5, "share": {"rule": "proportional", "shares": {"industry_menu": 0.5,
                                                                                      "skills_training": 0.6}}},
     "budgets.integrated_agriculture.share.shares: the shares add up to 1.1, not 1"),
    ({"instruments": PAIR, "amounts": 5, "share": {"rule": "proportional", "shares": {"industry_men": 0.5,
                                                                                      "skills_training": 1.5}}},
     "budgets.integrated_agriculture.share.shares.industry_men: not an instrument this line pays (did you mean "
     "'industry_menu'?); budgets.integrated_agriculture.share.shares.skills_training: expected a share in [0, 1], "
     "got 1.5"),
    ({"instruments": PAIR, "amounts": "unlimited", "unspent": "carry"},
     "budgets.integrated_agriculture.unspent: an entitlement line (unlimited) pays whatever is due and has nothing "
     "left to carry over; remove 'unspent'"),
    ({"instruments": PAIR, "amounts": 5, "unspent": "cary"},
     "budgets.integrated_agriculture.unspent: unknown rule 'cary' (did you mean 'carry'?)"),
])
def test_bad_sharing_and_carry_over_rules_name_the_key_path(line, message):
    with pytest.raises(InputError) as err:
        parse({"interventions": {i: {} for i in PAIR}, "budgets": {"integrated_agriculture": line}},
              (2016, 2020), "s.yaml")
    assert str(err.value).startswith(f"s.yaml: {message}")


def test_a_banks_quota_carries_nothing_over():
    with pytest.raises(InputError, match="budgets.bank_credit.unspent: a bank's lending quota is not public money"):
        parse({"interventions": {"microloan": {}},
               "budgets": {"bank_credit": {"instruments": ["microloan"], "amounts": 5, "unspent": "carry"}}},
              (2016, 2020), "s.yaml")
    result = _run({"microloan": {}}, {"bank_credit": {"instruments": ["microloan"], "amounts": 1e9},
                                      "risk_compensation": {"instruments": ["microloan"], "amounts": 1e6}})
    bank = result.budget[result.budget["line"] == "bank_credit"]
    assert (bank["available"] == 1e9).all() and bank["carried"].isna().all()
