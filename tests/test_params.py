import pytest
import yaml
from importlib import resources

from fupin_sim.errors import InputError
from fupin_sim.params import NotInForce, Params, available_presets


def test_every_parameter_has_unit_source_and_confidence():
    for preset in available_presets():
        params = Params.defaults(preset)
        for path in params.paths():
            leaf = params[path]
            assert leaf.unit and leaf.source and leaf.confidence in ("high", "medium", "low"), path


def test_defaults_file_states_sources_not_placeholders():
    text = resources.files("fupin_sim.params").joinpath("defaults.yaml").read_text(encoding="utf-8")
    tree = yaml.safe_load(text)
    assert "TODO" not in text and "TBD" not in text
    assert tree["poverty_line"]["national"]["value"][2014] == 2800


def test_dated_values_step_from_each_year_on():
    p = Params.defaults().override({"poverty_line.national": {2021: 5547, 2023: 6100}})
    assert [p.at(y)["poverty_line.national"] for y in (2021, 2022, 2023, 2030)] == [5547, 5547, 6100, 6100]
    assert Params.defaults().at(2019)["poverty_line.national"] == 3218


def test_a_year_before_the_first_dated_value_is_an_error_naming_the_parameter_not_a_later_value():
    p = Params.defaults().override({"poverty_line.national": {2021: 5547, 2023: 6100}})
    values = p.at(2019)
    assert values["health.basic_rate"] == 0.6  # the parameters in force are there
    with pytest.raises(NotInForce, match=r"poverty_line\.national: no value in force in 2019: its first dated "
                                         r"value is for 2021"):
        values["poverty_line.national"]
    assert "poverty_line.national" not in values


def test_a_year_with_values_not_in_force_keeps_nothing_of_its_caller_alive():
    """The error kept for a parameter not in force holds no traceback, which would hold the
    frame that first asked for the year and every array in it (300 MB at 10^6 households)."""
    import weakref

    import numpy as np

    p = Params.defaults().override({"poverty_line.national": {2021: 5547}})

    def caller():
        big = np.zeros(1000)
        p.at(2019)
        return weakref.ref(big)

    assert caller()() is None
    with pytest.raises(NotInForce, match="poverty_line.national"):
        p.at(2019)["poverty_line.national"]


def test_nested_and_dotted_overrides_are_equivalent():
    a = Params.defaults().override({"health": {"basic_rate": 0.7}})
    b = Params.defaults().override({"health.basic_rate": 0.7})
    assert a.to_dict() == b.to_dict() and a.fingerprint() == b.fingerprint()
    assert a["health.basic_rate"].source.startswith("scenario override")


@pytest.mark.parametrize("override, message", [
    ({"health.basic_rat": 0.7}, "s.yaml: parameters.health.basic_rat: unknown parameter (did you mean 'health.basic_rate'?)"),
    ({"health": {"basic_rate": 1.7}}, "s.yaml: parameters.health.basic_rate: 1.7 is outside [0, 1] for unit 'share'"),
    ({"health.basic_rate": "high"}, "s.yaml: parameters.health.basic_rate: expected a number, got 'high'"),
    ({"health.critical_threshold": -5}, "s.yaml: parameters.health.critical_threshold: -5 is outside >= 0 for unit 'yuan/person/year'"),
    ({"status.line": "jiangsuu"}, "s.yaml: parameters.status.line: 'jiangsuu' is not one of ['national', 'jiangsu'] (did you mean 'jiangsu'?)"),
    ({"poverty_line.national": {"2021": 5547}}, "s.yaml: parameters.poverty_line.national: dated values are keyed by year (1900-2100), got '2021'"),
    ({"health.basic_rate": {"value": 0.7, "unit": "yuan"}}, "s.yaml: parameters.health.basic_rate: unit 'yuan' does not match the parameter's unit 'share'"),
    ({"register.identification": float("nan")}, "s.yaml: parameters.register.identification: expected a finite number, got nan"),
])
def test_bad_overrides_name_the_file_and_key_path(override, message):
    with pytest.raises(InputError) as err:
        Params.defaults().override(override, file="s.yaml")
    assert str(err.value) == message


def test_tables_may_change_length_but_not_shape():
    p = Params.defaults().override({"health.age_risk": [[0, 1.0], [50, 2.0]]})
    assert p["health.age_risk"].value == [[0, 1.0], [50, 2.0]]
    with pytest.raises(InputError, match="expected a list shaped like"):
        Params.defaults().override({"health.age_risk": [1, 2]})
    with pytest.raises(InputError, match="expected a list shaped like"):
        Params.defaults().override({"health.severity_shares": [0.5, 0.5]})


def test_unknown_preset_is_reported_with_a_suggestion():
    with pytest.raises(InputError, match="did you mean 'jiangsu_low_income'"):
        Params.defaults("jiangsu_low_incom")
