"""Designs of experiments: points of the unit cube (a grid, a Latin hypercube or a scrambled
Sobol' sample, `scipy.stats.qmc`), mapped to parameter values by `ParameterRange`."""
from __future__ import annotations

import itertools
import math

import numpy as np

DESIGNS = ("grid", "latin_hypercube", "sobol")


def _qmc(kind: str, d: int, seed: int):
    from scipy.stats import qmc

    cls = qmc.Sobol if kind == "sobol" else qmc.LatinHypercube
    rng = np.random.default_rng(seed)
    try:
        return cls(d, scramble=True, rng=rng)
    except TypeError:  # SciPy < 1.15 calls it `seed`
        return cls(d, scramble=True, seed=rng)


def unit_sample(design: str, d: int, n: int, seed: int) -> np.ndarray:
    """n points of the d-dimensional unit cube: scrambled Sobol' or a Latin hypercube."""
    engine = _qmc(design, d, seed)
    if design == "sobol":
        return engine.random_base2(int(math.log2(n)))
    return engine.random(n)


def design_points(ranges: list, design: str, samples: int | None, levels: int, seed: int) -> list[tuple]:
    """The design's points as tuples of parameter values: every combination of the ranges'
    levels (grid), or `samples` points of the unit cube mapped through each range."""
    if design == "grid":
        return list(itertools.product(*(r.levels(levels) for r in ranges)))
    unit = unit_sample(design, len(ranges), samples, seed)
    return list(zip(*(r.from_unit(unit[:, j]) for j, r in enumerate(ranges))))
