import shutil

import numpy as np
import pandas as pd
import pytest

from fupin_sim.errors import InputError
from fupin_sim.params import Params
from fupin_sim.population.register import read_register, write_register
from fupin_sim.population.synthetic import generate
from fupin_sim.results import simulate


@pytest.fixture(scope="module")
def pop():
    return generate(Params.defaults(), 300, seed=5)


@pytest.fixture()
def folder(pop, tmp_path):
    return write_register(pop, tmp_path / "reg")


def edit(folder, name, change):
    path = folder / f"{name}.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame = change(frame)
    frame.to_csv(path, index=False)
    return path


def error_of(folder, **kw):
    with pytest.raises(InputError) as err:
        read_register(folder, **kw)
    return str(err.value)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_keeps_every_value(pop, tmp_path, fmt):
    back = read_register(write_register(pop, tmp_path / fmt, fmt=fmt))
    assert back.year == pop.year
    for table in ("households", "persons"):
        a, b = getattr(pop, table), getattr(back, table)
        for col in a.names():
            assert np.array_equal(a[col], b[col]), (table, col)


def test_missing_column(folder):
    path = edit(folder, "households", lambda f: f.drop(columns=["income_wage"]))
    assert error_of(folder) == f"{path}: missing column 'income_wage' (wage income 工资性收入, yuan/year, household total)"


def test_unknown_column_is_not_dropped_silently(folder):
    path = edit(folder, "households", lambda f: f.rename(columns={"debt": "debts"}))
    assert error_of(folder).startswith(f"{path}: unknown column 'debts' (did you mean 'debt'?)")


def test_negative_household_size(folder):
    def change(f):
        f["size"] = "2"
        f.loc[3, "size"] = "-1"
        return f
    path = edit(folder, "households", change)
    assert error_of(folder).startswith(f"{path}: row 5, column size: -1 is below the minimum 1")


def test_stated_size_must_match_members(pop, folder):
    sizes = pop.sizes()
    def change(f):
        f["size"] = [str(s) for s in sizes]
        f.loc[0, "size"] = str(sizes[0] + 1)
        return f
    path = edit(folder, "households", change)
    assert error_of(folder) == f"{path}: row 2, column size: size {sizes[0] + 1} but {sizes[0]} members in persons.csv"


def test_person_pointing_to_unknown_household(folder):
    path = edit(folder, "persons", lambda f: f.assign(household_id=f["household_id"].where(f.index != 7, "99999")))
    assert error_of(folder) == f"{path}: row 9, column household_id: household_id 99999 is not in households.csv"


@pytest.mark.parametrize("value, message", [
    ("", "expected a number, got an empty value"),
    ("nan", "expected a number, got 'nan'"),
    ("abc", "expected a number, got 'abc'"),
    ("-10", "-10 is below the minimum 0"),
])
def test_bad_income_values(folder, value, message):
    def change(f):
        f.loc[10, "income_transfer"] = value
        return f
    path = edit(folder, "households", change)
    assert error_of(folder) == f"{path}: row 12, column income_transfer: {message}"


def test_operating_income_may_be_negative(folder):
    edit(folder, "households", lambda f: f.assign(income_operating=f["income_operating"].where(f.index != 0, "-500")))
    assert read_register(folder).households["income_operating"][0] == -500


def test_unknown_category_with_suggestion(folder):
    def change(f):
        f.loc[4, "labour"] = "ful"
        return f
    path = edit(folder, "persons", change)
    assert error_of(folder) == (f"{path}: row 6, column labour: unknown category 'ful' (did you mean 'full'?); "
                                "allowed: ['none', 'partial', 'full']")


def test_many_bad_rows_are_counted(folder):
    path = edit(folder, "persons", lambda f: f.assign(age="x"))
    message = error_of(folder)
    assert message.startswith(f"{path}: row 2, column age: expected a whole number, got 'x' (and ")
    assert "more rows: 3, 4, 5, 6, ...)" in message


def test_duplicate_ids(folder):
    def change(f):
        f.loc[5, "person_id"] = f.loc[2, "person_id"]
        return f
    path = edit(folder, "persons", change)
    assert "appears twice (rows 4 and 7)" in error_of(folder) and str(path) in error_of(folder)


def test_household_without_members(folder):
    hid = pd.read_csv(folder / "households.csv")["household_id"].iloc[3]
    edit(folder, "persons", lambda f: f[f["household_id"] != str(hid)])
    assert error_of(folder) == f"{folder / 'households.csv'}: row 5: household {hid} has no members in persons.csv"


def test_fractional_age(folder):
    def change(f):
        f.loc[0, "age"] = "30.5"
        return f
    path = edit(folder, "persons", change)
    assert error_of(folder) == f"{path}: row 2, column age: 30.5 is not a whole number"


def test_empty_and_non_utf8_files(folder):
    (folder / "persons.csv").write_bytes(b"")
    assert error_of(folder).endswith("persons.csv: is empty: it needs a header row and one row per record")
    (folder / "persons.csv").write_bytes("person_id,household_id\n1,\xff\n".encode("latin-1"))
    assert "is not UTF-8 text" in error_of(folder)


def test_missing_year_and_missing_files(folder, tmp_path):
    (folder / "register.json").unlink()
    assert "the register's year is unknown" in error_of(folder)
    assert read_register(folder, year=2019).year == 2019
    shutil.rmtree(folder)
    assert "register folder not found" in error_of(folder)
    (tmp_path / "empty").mkdir()
    assert error_of(tmp_path / "empty", year=2019).endswith("needs households.csv or households.parquet")


def test_a_simulated_world_can_be_written_as_a_register_and_run_on(tmp_path):
    import fupin_sim as fs
    from fupin_sim.simulation import Simulation

    sim = Simulation(fs.load_scenario("no_policy").edit(households=800, years=(2016, 2018)), seed=3)
    sim.run()
    snapshot = sim.state.to_population()
    assert snapshot.year == 2018 and (snapshot.sizes() > 0).all()
    back = read_register(write_register(snapshot, tmp_path / "world"))
    assert len(back.persons) == sim.state.persons
    assert np.array_equal(back.households["status"], snapshot.households["status"])
    later = fs.load_scenario("no_policy").edit(years=(2019, 2020))
    result = simulate(later, population=back, seed=3)
    assert list(result.summary["year"]) == [2019, 2020]


def test_ids_too_large_to_be_exact_are_refused(folder):
    def change(f):
        f.loc[0, "person_id"] = "99999999999999999999"
        return f
    path = edit(folder, "persons", change)
    assert error_of(folder) == f"{path}: row 2, column person_id: 1e+20 is too large for a whole number (at most 2^53)"


def test_levels_read_from_a_register_are_shrunk_toward_their_group(tmp_path):
    """A register's incomes include the year's transitory shocks; the permanent levels the
    run starts from keep each group's mean but only the persistent part of the spread."""
    import fupin_sim as fs
    from fupin_sim.population.state import State
    from fupin_sim.simulation import CARRIED
    from fupin_sim.simulation import Simulation

    sc = fs.load_scenario("no_policy").edit(households=4000, years=(2016, 2018))
    sim = Simulation(sc, seed=4)
    sim.run()
    back = read_register(write_register(sim.state.to_population(), tmp_path / "reg"))
    state = State(back, sc.params, CARRIED)
    shrunk, units = state.h["wage_level"], state.h["labour_units"]
    earning = (back.households["income_wage"] > 0) & (back.households["status"] == 0) & (units > 0)
    raw = np.where(earning, back.households["income_wage"] / np.where(units > 0, units, 1), 0)
    assert np.log(shrunk[earning]).std() < np.log(raw[earning]).std()
    assert np.mean(shrunk[earning]) == pytest.approx(np.mean(raw[earning]), rel=0.1)
