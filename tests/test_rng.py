import numpy as np
from scipy import stats

from fupin_sim.rng import RandomStreams


def test_uniforms_strictly_inside_unit_interval_even_at_extreme_bits():
    rs = RandomStreams(1)
    ids = np.arange(2_000_000)
    for draw in (*rs.uniform_pair("x", 2016, ids), rs.uniform("x", 2016, ids), *rs.uniform_triple("x", 2016, ids)):
        assert draw.min() > 0.0 and draw.max() < 1.0
    normals = rs.normal_pair("x", 2016, ids)
    assert all(np.isfinite(z).all() for z in normals)


def test_uniform_and_normal_distributions():
    rs = RandomStreams(7)
    ids = np.arange(200_000)
    u, v = rs.uniform_pair("a", 2020, ids)
    assert stats.kstest(u, "uniform").pvalue > 1e-3
    assert stats.kstest(v, "uniform").pvalue > 1e-3
    assert abs(np.corrcoef(u, v)[0, 1]) < 0.01
    for w in rs.uniform_triple("a", 2020, ids):
        assert stats.kstest(w, "uniform").pvalue > 1e-3
    z1, z2 = rs.normal_pair("b", 2020, ids)
    assert abs(z1.mean()) < 0.01 and abs(z1.std() - 1) < 0.01 and abs(np.corrcoef(z1, z2)[0, 1]) < 0.01
    assert stats.kstest(z1[:50_000], "norm").pvalue > 1e-3


def test_streams_differ_by_seed_name_and_year():
    ids = np.arange(100_000)
    base = RandomStreams(1).uniform("a", 2020, ids)
    for other in (RandomStreams(2).uniform("a", 2020, ids), RandomStreams(1).uniform("b", 2020, ids),
                  RandomStreams(1).uniform("a", 2021, ids)):
        assert abs(np.corrcoef(base, other)[0, 1]) < 0.02


def test_a_draw_depends_only_on_the_id_not_on_who_else_is_drawn():
    rs = RandomStreams(3)
    ids = np.arange(10_000)
    full = rs.uniform("decision", 2018, ids)
    subset = np.array([9_999, 17, 4_242, 0])
    assert np.array_equal(rs.uniform("decision", 2018, subset), full[subset])
    assert np.array_equal(rs.uniform("decision", 2018, ids[::-1]), full[::-1])
    assert np.array_equal(RandomStreams(3).uniform("decision", 2018, ids), full)


def test_replicate_seeds_are_distinct_and_reproducible():
    seeds = [RandomStreams(5).replicate_seed(r) for r in range(100)]
    assert seeds[0] == 5 and len(set(seeds)) == 100
    assert seeds == [RandomStreams(5).replicate_seed(r) for r in range(100)]


def test_below_is_exactly_comparing_the_uniforms():
    rs = RandomStreams(3)
    ids = np.arange(200_000) * 7 + 11
    index = (ids % 200).astype(np.int16)
    table = np.random.default_rng(1).random(200).astype(np.float32) ** 3
    hi, lo = rs.uniform_pair("a", 2020, ids)
    table[:8] = [0.0, 1.0, 1e-30, np.float32(2**-24), *hi[:4]]  # edges, and thresholds equal to draws
    below_hi, same_lo = rs.below("a", 2020, ids, "pair", [(table, index), None])
    assert np.array_equal(below_hi, hi < table[index]) and np.array_equal(same_lo, lo)
    first, second, third = rs.uniform_triple("b", 2021, ids)
    b1, b2, b3 = rs.below("b", 2021, ids, "triple", [0.37, float(second[5]), (table, index)])
    assert np.array_equal(b1, first < 0.37) and np.array_equal(b2, second < float(second[5]))
    assert np.array_equal(b3, third < table[index]) and b1.dtype == b3.dtype == bool
    odds = np.linspace(0.0, 1.0, 200)  # float64 thresholds compare as float64
    assert np.array_equal(rs.below("c", 2022, ids, "one", [(odds, index)])[0],
                          rs.uniform("c", 2022, ids) < odds[index])


def test_normal_is_the_first_of_the_pair():
    rs = RandomStreams(5)
    ids = np.arange(100_003) * 3 + 1
    assert np.array_equal(rs.normal("x", 2020, ids), rs.normal_pair("x", 2020, ids)[0])
