import pytest

import fupin_sim as fs


@pytest.fixture(scope="session")
def baseline():
    return fs.load_scenario("baseline")


@pytest.fixture()
def small(baseline):
    """The baseline at 3000 households over 2016-2020: fast, and big enough for flows."""
    return baseline.edit(households=3000, years=(2016, 2020))


@pytest.fixture()
def engine_only():
    """The county without policy instruments (no budgets to compete for), 2016-2020."""
    return fs.load_scenario("no_policy").edit(households=3000, years=(2016, 2020))
