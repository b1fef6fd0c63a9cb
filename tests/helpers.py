"""Small hand-made populations for exact tests."""
import numpy as np

from fupin_sim.population import Population
from fupin_sim.population import schema as S
from fupin_sim.population.table import Table


def tiny_population(incomes, status=None, housing_safe=None, year=2019, ages=None):
    """One working-age person per household, all income as wage income."""
    n = len(incomes)
    status = np.zeros(n, np.int8) if status is None else np.asarray(status, np.int8)
    hh = Table({
        "household_id": np.arange(n, dtype=np.int64), "village": np.zeros(n, np.int32),
        "region_type": np.zeros(n, np.int8), "status": status,
        "cause": np.where(status > 0, S.CODE["cause"]["skills"], 0).astype(np.int8),
        "year_registered": np.where(status > 0, 2014, S.NO_YEAR).astype(np.int16),
        "year_exited": np.where(status == S.EXITED, 2018, S.NO_YEAR).astype(np.int16),
        "income_wage": np.asarray(incomes, float), "income_operating": np.zeros(n),
        "income_property": np.zeros(n), "income_transfer": np.zeros(n),
        "assets": np.zeros(n), "debt": np.zeros(n),
        "housing_safe": np.ones(n, bool) if housing_safe is None else np.asarray(housing_safe, bool),
        "insured": np.ones(n, bool), "weight": np.ones(n),
    })
    persons = Table({
        "person_id": np.arange(n, dtype=np.int64), "household_id": np.arange(n, dtype=np.int64),
        "age": np.full(n, 40) if ages is None else np.asarray(ages), "sex": np.zeros(n, np.int8),
        "labour": np.full(n, S.FULL, np.int8), "chronic": np.zeros(n, bool), "disabled": np.zeros(n, bool),
        "school": np.zeros(n, np.int8),
    })
    return Population(hh, persons, year, origin="test")
