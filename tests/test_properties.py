"""Properties that must hold for any scenario and population (Hypothesis): persons change
only by births and deaths, registered stocks only by their flows, money is conserved, no
output is NaN or infinite, poverty measures stay in their bounds, and more money for an
instrument never serves fewer households."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fupin_sim.interventions import REGISTRY
from fupin_sim.interventions.base import PRIORITY_RULES
from fupin_sim.scenario import Scenario
from fupin_sim.results import Result
from fupin_sim.simulation import Simulation
from test_funding import check_books

INSTRUMENTS = sorted(REGISTRY)
SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def scenarios(draw):
    first = draw(st.integers(2016, 2022))
    years = (first, first + draw(st.integers(0, 2)))
    chosen = draw(st.lists(st.sampled_from(INSTRUMENTS), max_size=6, unique=True))
    interventions = {name: {"priority": draw(st.lists(st.sampled_from(PRIORITY_RULES), min_size=1, max_size=2,
                                                      unique=True))} for name in chosen}
    amount = st.one_of(st.just("unlimited"), st.sampled_from([0, 1e4, 1e6, 1e8]))
    budgets = {}
    if chosen:
        budgets["pool"] = {"source": "central_special", "amounts": draw(amount)}
        budgets["some"] = {"source": "donations", "instruments": chosen[:1], "amounts": draw(amount)}
        if "microloan" in chosen:
            budgets["bank"] = {"source": "bank_credit", "instruments": ["microloan"], "amounts": 1e6}
    parameters = {
        "income.wage_growth": draw(st.floats(-0.1, 0.3)),
        "income.sd_transitory": draw(st.floats(0.0, 1.0)),
        "register.identification": draw(st.floats(0.0, 1.0)),
        "register.assessment_error": draw(st.floats(0.0, 0.5)),
        "register.exit_plan": draw(st.floats(0.0, 1.0)),
        "monitoring.identification": draw(st.floats(0.0, 1.0)),
        "policy.support_until": draw(st.integers(2016, 2026)),
        "households.split_rate": draw(st.floats(0.0, 0.3)),
        "health.admission_rate": [draw(st.floats(0.0, 0.6)), draw(st.floats(0.0, 0.9))],
        "shocks.drought_probability": draw(st.floats(0.0, 1.0)),
    }
    data = {"name": "prop", "population": {"preset": draw(st.sampled_from(
        ["inner_mongolia_county", "jiangsu_low_income", "kundulun_district"])),
        "households": draw(st.integers(30, 250))},
        "years": list(years), "seed": draw(st.integers(0, 2**31)), "parameters": parameters,
        "interventions": interventions, "budgets": budgets}
    return Scenario.from_data(data, None)


@SETTINGS
@given(scenarios())
def test_invariants_hold_for_any_scenario(sc):
    sim = Simulation(sc)
    persons = float(sim.state.h["size"] @ sim.state.h["weight"])
    registered = float(sim.state.h["weight"] @ (sim.state.h["status"] == 1))
    while not sim.done:
        row = sim.step()
        assert np.isclose(row["persons"], persons + row["births"] - row["deaths"], rtol=1e-9)
        assert np.isclose(row["registered_poor"], registered - row["exits"] + row["reregistered"] + row["new_poor"]
                          - row["dissolved_poor"] + row["formed_poor"], rtol=1e-9, atol=1e-6)
        persons, registered = row["persons"], row["registered_poor"]
    result = Result.of(sim)
    s = result.summary
    assert np.isfinite(s.select_dtypes("number").to_numpy()).all()
    assert ((0 <= s["fgt2"]) & (s["fgt2"] <= s["fgt1"] + 1e-12) & (s["fgt1"] <= s["fgt0"] + 1e-12)
            & (s["fgt0"] <= 1)).all()
    assert ((0 <= s["relapse_rate"]) & (s["relapse_rate"] <= 1)).all()
    if len(result.budget):
        check_books(result)


@SETTINGS
@given(st.sampled_from([n for n in INSTRUMENTS if n not in ("collective_economy",)]),
       st.floats(1e3, 1e7), st.floats(1.0, 20.0), st.integers(0, 1000))
def test_more_money_never_serves_fewer(instrument, amount, factor, seed):
    served = []
    for budget in (amount, amount * factor):
        budgets = {"line": {"source": "bank_credit" if instrument == "microloan" else "central_special",
                            "instruments": [instrument], "amounts": budget}}
        if instrument == "microloan":
            budgets["interest"] = {"source": "risk_compensation", "instruments": [instrument], "amounts": "unlimited"}
        data = {"name": "m", "population": {"households": 300}, "years": [2017, 2017], "seed": seed,
                "interventions": {instrument: {}}, "budgets": budgets}
        served.append(Simulation(Scenario.from_data(data, None)).step()[f"served_{instrument}"])
    assert served[1] >= served[0] - 1e-9
