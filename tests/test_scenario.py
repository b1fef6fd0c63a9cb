import pytest

import fupin_sim as fs
from fupin_sim.errors import InputError
from fupin_sim.scenario import bundled_scenarios, load_scenario


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path):
    with pytest.raises(InputError) as err:
        load_scenario(path)
    return str(err.value)


def test_bundled_scenarios_validate_and_run():
    assert {"baseline", "jiangsu"} <= set(bundled_scenarios())
    for name in bundled_scenarios():
        sc = load_scenario(name)
        result = fs.run(sc, households=400, years=(sc.years[0], sc.years[0] + 1))
        assert len(result.summary) == 2


def test_extends_merges_parameters_and_resolves_relative_paths(tmp_path):
    write(tmp_path / "base.yaml", "name: base\nyears: [2016, 2020]\nseed: 4\n"
                                  "parameters: {health: {basic_rate: 0.7, critical_threshold: 8000}}\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    child = write(sub / "child.yaml", "name: child\nextends: ../base.yaml\nyears: [2016, 2018]\n"
                                      "parameters: {health: {basic_rate: 0.65}}\n")
    sc = load_scenario(child)
    assert sc.years == (2016, 2018) and sc.seed == 4
    assert sc.params.value("health.basic_rate") == 0.65
    assert sc.params.value("health.critical_threshold") == 8000  # kept from the base


def test_extends_a_bundled_scenario_by_name(tmp_path):
    sc = load_scenario(write(tmp_path / "mine.yaml", "name: mine\nextends: baseline\n"))
    assert sc.years == load_scenario("baseline").years


def test_scenario_hash_tracks_content_not_name(tmp_path):
    a = load_scenario(write(tmp_path / "a.yaml", "name: a\nyears: [2016, 2020]\n"))
    b = load_scenario(write(tmp_path / "b.yaml", "name: b\nyears: [2016, 2020]\n"))
    c = load_scenario(write(tmp_path / "c.yaml", "name: c\nyears: [2016, 2020]\nparameters: {health.basic_rate: 0.7}\n"))
    assert a.hash == b.hash != c.hash


@pytest.mark.parametrize("text, message", [
    ("name: x\nyear: [2016, 2020]\n", "year: unknown key (did you mean 'years'?); known keys:"),
    ("name: x\nyears: [2016, 2020]\npopulation: {preset: inner_mongolia_countyy}\n",
     "population.preset: unknown preset 'inner_mongolia_countyy' (did you mean 'inner_mongolia_county'?)"),
    ("name: x\nyears: [2016, 2020]\npopulation: {househlds: 10}\n",
     "population.househlds: unknown key (did you mean 'households'?)"),
    ("name: x\nyears: [2016, 2020]\npopulation: {households: many}\n",
     "population.households: expected a whole number, got 'many'"),
    ("name: x\nyears: [2020, 2016]\n", "years: first year 2020 is after last year 2016"),
    ("name: x\nyears: [2016, 2020]\nseed: -1\n", "seed: -1 is outside"),
    ("name: x\n", "missing key 'years'"),
    ("name: x\nyears: [2016, 2020]\nparameters: {health: {basic_rate: 2}}\n",
     "parameters.health.basic_rate: 2 is outside [0, 1] for unit 'share'"),
    ("name: x\nyears: [2016, 2020\n", "is not valid YAML"),
    ("- just\n- a list\n", "must be a mapping of keys"),
    ("", "is empty"),
    ("name: x\nextends: nowhere.yaml\nyears: [2016, 2020]\n", "extends: scenario file not found"),
])
def test_bad_scenarios_name_file_and_key_path(tmp_path, text, message):
    path = write(tmp_path / "s.yaml", text)
    err = error_of(path)
    assert err.startswith(str(path)) and message in err


def test_extends_cycles_are_reported(tmp_path):
    write(tmp_path / "a.yaml", "name: a\nextends: b.yaml\nyears: [2016, 2020]\n")
    write(tmp_path / "b.yaml", "name: b\nextends: a.yaml\n")
    assert "extend each other in a cycle" in error_of(tmp_path / "a.yaml")


def test_unknown_bundled_name_suggests_the_closest():
    with pytest.raises(InputError, match="did you mean 'baseline'"):
        load_scenario("baselin")


def test_yaml_tags_that_would_run_code_are_refused(tmp_path):
    path = write(tmp_path / "evil.yaml", "name: !!python/object/apply:os.system ['echo hacked']\nyears: [2016, 2020]\n")
    assert "is not valid YAML" in error_of(path)


def test_instrument_rules_are_parameters_of_the_scenario():
    """`interventions.<label>.<rule>`: listed with the model parameters, read and overridden
    like them (sweeps, calibrations and parameter draws use this), validated with the rule's
    unit, and recorded in the scenario's data and hash."""
    sc = load_scenario("baseline")
    path = "interventions.industry_linkage.annual_gain"
    assert path in sc.parameter_paths() and "income.wage_growth" in sc.parameter_paths()
    assert sc.parameter(path).value == 1200
    changed = sc.edit(parameters={path: 2400, "income.wage_growth": 0.1})
    assert changed.parameter(path).value == 2400 and changed.params["income.wage_growth"].value == 0.1
    assert sc.parameter(path).value == 1200 and "rules" not in (sc.data["interventions"]["industry_linkage"] or {})
    assert changed.data["interventions"]["industry_linkage"]["rules"] == {"annual_gain": 2400}
    assert changed.hash != sc.hash == load_scenario("baseline").hash
    same_file = sc.edit(parameters={"income.wage_growth": 0.1})
    same_file.data["interventions"]["industry_linkage"] = {"rules": {"annual_gain": 2400}}
    from fupin_sim.scenario import Scenario
    rebuilt = Scenario.from_data(same_file.data, sc.file, declared=sc.declared_years)
    assert rebuilt.hash == changed.hash  # as if the file had said it


@pytest.mark.parametrize("overrides, message", [
    ({"interventions.dibao.exclusion_error": 1.5},
     "sweep.parameters.interventions.dibao.exclusion_error: 1.5 is outside [0, 1] for unit 'probability'"),
    ({"interventions.dibo.standard": 1},
     "sweep.parameters.interventions.dibo.standard: no instrument 'dibo' in scenario 'baseline' (did you mean 'dibao'?)"),
    ({"interventions.dibao.standrd": 1},
     "sweep.parameters.interventions.dibao.standrd: 'dibao' has no rule 'standrd' (did you mean 'standard'?)"),
])
def test_bad_rule_overrides_name_the_path(overrides, message):
    with pytest.raises(InputError) as err:
        load_scenario("baseline").edit(parameters=overrides, where="sweep")
    assert message in str(err.value)


def test_an_extending_file_replaces_a_dated_value_whole(tmp_path):
    """A dated value ({year: value}) or a leaf with `value:` in an extending file replaces
    the base file's value, as a parameter override does: its years are not merged into the
    base's (a calibrated scale factor on a schedule the base sets is written as a leaf)."""
    (tmp_path / "base.yaml").write_text("name: b\nextends: jiangsu\n"
                                        "parameters:\n  poverty_line.jiangsu: {2016: 6000, 2018: 6500}\n")
    (tmp_path / "leaf.yaml").write_text("name: l\nextends: base.yaml\nparameters:\n  poverty_line.jiangsu:\n"
                                        "    value: {2016: 6600, 2018: 7150}\n    source: calibrated\n")
    (tmp_path / "dated.yaml").write_text("name: d\nextends: base.yaml\n"
                                         "parameters:\n  poverty_line.jiangsu: {2016: 7000}\n")
    assert load_scenario(tmp_path / "leaf.yaml").params["poverty_line.jiangsu"].value == {2016: 6600, 2018: 7150}
    assert load_scenario(tmp_path / "dated.yaml").params["poverty_line.jiangsu"].value == {2016: 7000}


def test_an_instrument_that_carries_support_is_listed_once(tmp_path):
    """Instruments keep their state columns and random streams by class: a second entry of a
    class that carries support from year to year (under another label) would repay the
    first's loans again and overwrite its defaults, so it is refused, naming the file and the
    key path. One that carries nothing may appear again (the campaigns' deadline backstop is
    a second 低保)."""
    path = tmp_path / "twice.yaml"
    path.write_text("name: twice\nextends: baseline\ninterventions:\n  loans2: {instrument: microloan}\n",
                    encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_scenario(path)
    assert str(err.value) == (f"{path}: interventions.loans2: instrument 'microloan' is already listed as "
                              "'microloan'; an instrument that carries support from year to year (loans, income "
                              "streams, posts) may appear once")
    backstop = tmp_path / "backstop.yaml"
    backstop.write_text("name: backstop\nextends: baseline\ninterventions:\n  backstop: {instrument: dibao}\n"
                        "budgets:\n  civil_affairs: {instruments: [dibao, health_assistance, backstop]}\n",
                        encoding="utf-8")
    assert [it.label for it in load_scenario(backstop).programme.items][-1] == "backstop"
    from fupin_sim.interventions import REGISTRY
    assert [n for n, cls in REGISTRY.items() if cls.carries_over()] == [
        "industry_menu", "industry_linkage", "asset_income", "collective_economy", "solar", "microloan",
        "labour_transfer", "public_welfare_post", "forest_ranger", "relocation"]
    other = tmp_path / "other.yaml"  # a class under another label, once, is fine
    other.write_text("name: other\nyears: [2016, 2017]\ninterventions:\n  loans: {instrument: microloan}\n"
                     "budgets:\n  bank_credit: {instruments: [loans], amounts: 1.0e+6}\n", encoding="utf-8")
    assert [it.label for it in load_scenario(other).programme.items] == ["loans"]
