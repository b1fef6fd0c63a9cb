"""An instrument may be for households registered for some causes of poverty (因户施策)."""
import numpy as np
import pytest

from fupin_sim.errors import InputError
from fupin_sim.interventions import parse
from fupin_sim.population import schema as S
from test_interventions import CARRIED, YEAR, RandomStreams, State, demography, fs, income, shocks


def _served(entry):
    """Households skills training serves in one year with unlimited money, and their causes."""
    sc = fs.load_scenario("no_policy")
    programme = parse({"interventions": {"skills_training": entry},
                       "budgets": {"central_special": {"amounts": "unlimited"}}}, (2016, 2025), None).fresh()
    state = State(fs.generate(sc.params, 20_000, seed=4, year=YEAR - 1), sc.params, CARRIED)
    programme.prepare(state)
    p, rs = sc.params.at(YEAR), RandomStreams(4)
    for process in (demography.step, income.step, shocks.step):
        process(state, p, rs, YEAR)
    programme.step(state, p, rs, YEAR)
    return programme.served["skills_training"], state.h["cause"]


def test_an_instrument_for_some_causes_serves_only_those_households():
    rows, cause = _served({"causes": ["skills", "capital"]})
    everyone, _ = _served({})
    wanted = np.isin(cause, [S.CODE["cause"]["skills"], S.CODE["cause"]["capital"]])
    assert len(rows) > 0 and wanted[rows].all()
    assert set(rows) == set(everyone[wanted[everyone]])  # the same households as without, those of these causes
    assert len(everyone) > len(rows)


@pytest.mark.parametrize("causes, message", [
    (["ilness"], "interventions.skills_training.causes[0]: unknown cause of poverty 'ilness' (did you mean 'illness'?)"),
    ([], "interventions.skills_training.causes: expected a list of causes of poverty"),
    ({"illness": 1}, "interventions.skills_training.causes: expected a list of causes of poverty"),
])
def test_bad_causes_name_the_key_path(causes, message):
    with pytest.raises(InputError) as err:
        parse({"interventions": {"skills_training": {"causes": causes}}}, (2016, 2020), "s.yaml")
    assert str(err.value).startswith(f"s.yaml: {message}")
