"""Common random numbers (DESIGN.md): same seed, same numbers; a no-op change is
bit-identical; households a change never touches keep bit-identical trajectories."""
import numpy as np
import pandas as pd

import fupin_sim as fs
from fupin_sim.experiments.ensemble import run_ensemble
from fupin_sim.population import schema as S
from fupin_sim.results import simulate
from fupin_sim.simulation import build_population


def panel(scenario, seed=1, population=None):
    return simulate(scenario, seed=seed, population=population, panel=True)


def test_same_seed_same_numbers(small):
    a, b = fs.run(small, seed=3), fs.run(small, seed=3)
    pd.testing.assert_frame_equal(a.summary, b.summary, check_exact=True)
    assert not fs.run(small, seed=4).summary.equals(a.summary)


def test_a_no_op_change_is_bit_identical(small):
    default = small.params.value("health.basic_rate")
    same = small.edit(parameters={"health": {"basic_rate": default}})
    a, b = panel(small), panel(same)
    pd.testing.assert_frame_equal(a.summary, b.summary, check_exact=True)
    pd.testing.assert_frame_equal(a.panel, b.panel, check_exact=True)


def unplanned(scenario):
    """Without the exit plan's quota: every household ready to exit exits. The quota, like a
    limited budget, shares a number between households, so it couples them."""
    return scenario.edit(parameters={"register.exit_plan": 1.0})


def test_households_outside_a_changed_subset_keep_their_trajectories(engine_only):
    small = unplanned(engine_only)
    pop = build_population(small, seed=1)
    changed = pop.copy()
    touched = np.flatnonzero(changed.households["status"] == S.POOR)[:100]
    changed.households["housing_safe"][touched] = False  # e.g. a housing policy that was not funded
    a, b = panel(small, population=pop).panel, panel(small, population=changed).panel
    untouched = ~a["lineage"].isin(changed.households["household_id"][touched])  # with the households they found
    pd.testing.assert_frame_equal(a[untouched].reset_index(drop=True), b[untouched].reset_index(drop=True),
                                  check_exact=True)
    assert not a[~untouched].equals(b[~untouched])  # and the touched ones did change


def test_the_exit_plan_couples_households_as_a_quota_does(engine_only):
    """With the plan's quota, who exits depends on who else is ready (the highest assessed
    incomes first): a change to some households can move another's exit by a year."""
    pop = build_population(engine_only, seed=1)
    changed = pop.copy()
    touched = np.flatnonzero(changed.households["status"] == S.POOR)[:100]
    changed.households["housing_safe"][touched] = False  # they cannot exit, leaving room in the quota
    a, b = (panel(engine_only, population=x).panel for x in (pop, changed))
    untouched = ~a["lineage"].isin(changed.households["household_id"][touched])
    assert (a.loc[untouched, "status"].to_numpy() != b.loc[untouched, "status"].to_numpy()).any()


def test_entitlements_do_not_couple_households(engine_only):
    """With unlimited (entitlement) money nobody competes for a budget, so a change to some
    households still leaves every other household's trajectory bit-identical."""
    data = dict(engine_only.data, interventions={"dibao": {}, "health_assistance": {}},
                budgets={"civil_affairs": {"amounts": "unlimited"}})
    from fupin_sim.scenario import Scenario

    sc = unplanned(Scenario.from_data(data, None))
    pop = build_population(sc, seed=1)
    changed = pop.copy()
    touched = np.flatnonzero(changed.households["status"] == S.POOR)[:50]
    changed.households["housing_safe"][touched] = False  # they cannot exit: they keep drawing on entitlements
    a, b = panel(sc, population=pop).panel, panel(sc, population=changed).panel
    untouched = ~a["lineage"].isin(changed.households["household_id"][touched])
    pd.testing.assert_frame_equal(a[untouched].reset_index(drop=True), b[untouched].reset_index(drop=True),
                                  check_exact=True)


def test_a_change_that_only_touches_pastoral_households_leaves_the_rest_identical(engine_only):
    small = unplanned(engine_only)
    quiet = small.edit(parameters={"shocks.livestock_price_sd": 0.3})
    pop = build_population(small, seed=1)
    a, b = panel(small, population=pop).panel, panel(quiet, population=pop).panel
    pastoral = pop.households["household_id"][pop.households["region_type"] == S.CODE["region_type"]["pastoral"]]
    others = ~a["lineage"].isin(pastoral)
    pd.testing.assert_frame_equal(a[others].reset_index(drop=True), b[others].reset_index(drop=True),
                                  check_exact=True)
    assert not np.array_equal(a.loc[~others, "income_operating"], b.loc[~others, "income_operating"])


def test_ensembles_do_not_depend_on_n_jobs(small):
    one = run_ensemble(small, reps=3, n_jobs=1)
    two = run_ensemble(small, reps=3, n_jobs=2)
    pd.testing.assert_frame_equal(one.replicates, two.replicates, check_exact=True)
    pd.testing.assert_frame_equal(one.bands, two.bands, check_exact=True)
    assert one.replicates["seed"].nunique() == 3


def test_a_fixed_population_seed_keeps_the_population_across_replicates(tmp_path):
    path = tmp_path / "fixed.yaml"
    path.write_text("name: fixed\nextends: no_policy\npopulation: {households: 1500, seed: 42}\nyears: [2016, 2018]\n",
                    encoding="utf-8")
    sc = fs.load_scenario(path)
    a, b = build_population(sc, seed=1), build_population(sc, seed=2)
    assert all(np.array_equal(a.households[k], b.households[k]) for k in a.households.names())
    r1, r2 = fs.run(sc, seed=1), fs.run(sc, seed=2)
    assert r1.manifest["population"]["seed"] == 42
    assert not r1.summary.equals(r2.summary)  # the dynamics still differ by seed
    free = fs.load_scenario("no_policy").edit(households=1500)
    assert not np.array_equal(build_population(free, 1).households["income_wage"],
                              build_population(free, 2).households["income_wage"])
