import numpy as np
import pytest

import fupin_sim as fs
from fupin_sim.params import Params
from fupin_sim.population import schema as S
from fupin_sim.population.synthetic import generate

CAUSE = S.CODE["cause"]


def person_shares_by_cause(pop):
    h = pop.households
    sizes = pop.sizes()
    registered = h["status"] == S.POOR
    total = sizes[registered].sum()
    return {c: sizes[registered & (h["cause"] == code)].sum() / total for c, code in CAUSE.items()}, total


def test_kundulun_cause_mix_matches_the_district_report():
    # 002_33b9fa698911b5ee.txt: illness 55.1%, lacking skills 33.2%, aged 9.4%, schooling 2.3% of 479 people
    pop = generate(Params.defaults("kundulun_district"), 100_000, seed=11)
    shares, n = person_shares_by_cause(pop)
    for cause, target in (("illness", 0.551), ("skills", 0.332), ("aged", 0.094), ("schooling", 0.023)):
        se = np.sqrt(target * (1 - target) / (n / 2.1))  # households are the sampling unit
        assert abs(shares[cause] - target) < 4 * se + 0.005, (cause, shares[cause])


def test_kundulun_household_sizes_by_cause():
    pop = generate(Params.defaults("kundulun_district"), 100_000, seed=12)
    h, sizes = pop.households, pop.sizes()
    for cause, target in (("illness", 264 / 142), ("skills", 159 / 52), ("aged", 45 / 29)):
        rows = (h["status"] == S.POOR) & (h["cause"] == CAUSE[cause])
        assert sizes[rows].mean() == pytest.approx(target, abs=0.05)


def test_jiangsu_illness_or_disability_is_80_percent_of_registered_people():
    pop = generate(Params.defaults("jiangsu_low_income"), 100_000, seed=13)
    shares, _ = person_shares_by_cause(pop)
    assert shares["illness"] + shares["disability"] == pytest.approx(0.80, abs=0.02)


def test_registered_share_and_composition_follow_the_preset():
    params = Params.defaults()
    pop = generate(params, 50_000, seed=14)
    h = pop.households
    assert (h["status"] == S.POOR).mean() == pytest.approx(params.value("population.registered_share"), abs=0.006)
    # registered 'aged' households are all 65+; 'illness' heads are chronically ill
    hh = pop.household_index()
    p = pop.persons
    aged = (h["cause"] == CAUSE["aged"])[hh] & (pop.persons["person_id"] == pop.persons["person_id"])
    heads = np.r_[True, hh[1:] != hh[:-1]]
    assert (p["age"][heads & aged] >= 65).all()
    assert p["chronic"][heads & (h["cause"] == CAUSE["illness"])[hh]].all()
    # nobody of working age without health problems is recorded without labour unless a student
    working = (p["age"] >= 16) & (p["age"] < 65) & ~p["disabled"] & (p["school"] < S.HIGH)
    assert (p["labour"][working] > S.NO_LABOUR).all()


def test_income_composition_matches_poor_area_shares():
    # NBS 2020-02: wage 35.3%, operating 36.0%, property 1.4%, transfer 27.3% in poor areas.
    # The split depends on each household's labour and pensioners, so the total is near, not equal.
    pop = generate(Params.defaults(), 50_000, seed=15)
    h = pop.households
    totals = np.array([h[f"income_{s}"].sum() for s in S.INCOME_SOURCES])
    shares = totals / totals.sum()
    assert np.allclose(shares, [0.353, 0.360, 0.014, 0.273], atol=0.06)
    assert (totals > 0).all() and np.isfinite(totals).all()


def test_registered_income_sits_below_near_poor_and_others():
    params = Params.defaults()
    pop = generate(params, 30_000, seed=16)
    h = pop.households
    pc = sum(h[f"income_{s}"] for s in S.INCOME_SOURCES) / pop.sizes()
    line = params.at(2015)["poverty_line.national"]
    registered = h["status"] == S.POOR
    assert np.median(pc[registered]) == pytest.approx(0.85 * line, rel=0.05)
    assert np.median(pc[~registered]) > 1.5 * line


def test_generation_is_deterministic_and_seed_dependent():
    params = Params.defaults()
    a, b, c = generate(params, 2000, seed=1), generate(params, 2000, seed=1), generate(params, 2000, seed=2)
    assert all(np.array_equal(a.households[k], b.households[k]) for k in a.households.names())
    assert not np.array_equal(a.households["income_wage"], c.households["income_wage"])


def test_weights_scale_the_sample_to_the_county():
    params = Params.defaults()
    pop = generate(params, 4000, seed=3)
    assert pop.households["weight"].sum() == pytest.approx(params.value("population.households"))


def test_sample_keeps_ids_members_and_total_weight():
    pop = generate(Params.defaults(), 5000, seed=4)
    sub = pop.sample(1000, seed=9)
    assert len(sub.households) == 1000
    assert set(np.unique(sub.persons["household_id"])) == set(sub.households["household_id"])
    assert sub.households["weight"].sum() == pytest.approx(pop.households["weight"].sum())
    assert (sub.sizes() >= 1).all()


def test_api_generate_rejects_empty_population():
    with pytest.raises(ValueError, match="at least one household"):
        fs.generate(Params.defaults(), 0)
