"""Parameter uncertainty by approximate Bayesian computation (ABC): parameter sets whose
simulated moments lie near the targets, for ensembles, comparisons and forecasts to run
over (`--draws`), so that their bands carry the parameters' uncertainty as well as chance.

- **Round 0** is rejection ABC over the bounds (a uniform prior). Half of its draws come
  from a Latin hypercube of the box; when the best fit is known, the other half come from
  a normal kernel of 2% of each range around it, truncated to the bounds. A narrow valley
  of good fits is then found even when box draws miss it, and each kept draw is weighted
  by prior / the mixture it came from (defensive importance sampling: the box half keeps
  other modes in reach).
- **Rounds 1, 2, ...** are ABC-SMC (population Monte Carlo; Beaumont et al. 2009,
  Biometrika 96:983). Each draws `samples` proposals from the last round's weighted
  particles, moved by a normal kernel with twice their weighted variance, truncated to
  the bounds; kept draws are weighted by prior / Σ_j w_j K(θ | θ_j), so they sample the
  ABC posterior at the round's tolerance.
- **The tolerance** only shrinks: the `quantile` of the round's distances, at most the last
  round's, down to `tolerance`, the distance that means "consistent with the targets",
  which it takes as soon as two draws are within it. By default that is χ²(0.95) with one
  degree of freedom per fitted target (times their mean weight): if the targets' sds were
  independent measurement errors, the true parameters would miss it one time in twenty.
- **`draws.csv`** is an equal-weight sample of the last round (systematic resampling: a
  parameter set may appear more than once), in random order, so that fewer replicates than
  draws still use a random subset.

Every evaluation goes through the calibration's trial log, so a rerun reuses it.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy.stats import truncnorm

from fupin_sim.experiments.designs import unit_sample


def abc_tables(spec, ev, best=None) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Every proposal (`abc_draws.csv`: round, parameters, distance, accepted, weight), the
    equal-weight draws of the last round (`draws.csv`) and a summary for the manifest.
    `best`: the best-fitting parameter vector, around which half of round 0 is drawn."""
    a = spec.abc
    lo = np.array([b[0] for b in spec.bounds])
    hi = np.array([b[1] for b in spec.bounds])
    rng = np.random.default_rng(a["seed"])
    n_box = a["samples"] if best is None else a["samples"] - a["samples"] // 2
    xs = lo + unit_sample("latin_hypercube", len(lo), n_box, a["seed"]) * (hi - lo)
    if best is not None:
        centre = np.asarray(best, dtype=float)[None]
        local = 0.02 * (hi - lo)
        xs = np.vstack([xs, _propose(centre, np.ones(1), local, lo, hi, a["samples"] - n_box, rng)])
    tables, rounds = [], []
    floor = a["tolerance"] if a.get("tolerance") is not None else default_tolerance(spec.targets["weight"])
    tolerance = np.inf
    particles = weights = scale = None
    for r in range(a["rounds"]):
        if r:
            xs = _propose(particles, weights, scale, lo, hi, a["samples"], rng)
        d = np.asarray(ev.distances(list(xs), phase="abc"))
        tolerance = floor if (d <= floor).sum() >= 2 else min(tolerance, float(np.quantile(d, a["quantile"])))
        keep = d <= tolerance
        if r and keep.sum() < 2:  # too few to move on from: the last round's particles stand
            tables.append(_round_table(spec, r, xs, d, np.zeros(len(d), bool), np.zeros(len(d))))
            rounds.append({"round": r, "tolerance": tolerance, "accepted": 0})
            break
        if r:
            w = 1.0 / _kernel_mixture(xs[keep], particles, weights, scale, lo, hi)
        elif best is None:
            w = np.ones(int(keep.sum()))
        else:  # prior / (share from the box × prior + share around the best × kernel); prior = 1 / volume
            share = n_box / len(xs)
            w = 1.0 / (share / np.prod(hi - lo) + (1 - share) * _kernel_mixture(xs[keep], centre, np.ones(1), local,
                                                                                 lo, hi))
        w /= w.sum()
        full = np.zeros(len(d))
        full[keep] = w
        tables.append(_round_table(spec, r, xs, d, keep, full))
        rounds.append({"round": r, "tolerance": tolerance, "accepted": int(keep.sum())})
        particles, weights = xs[keep], w
        spread = np.sqrt(2.0 * np.average((particles - np.average(particles, axis=0, weights=w)) ** 2, axis=0,
                                          weights=w))
        scale = np.maximum(spread, 1e-3 * (hi - lo))  # a collapsed dimension still moves a little
    every = pd.concat(tables, ignore_index=True)
    every.insert(0, "draw", np.arange(len(every)))
    last_round = max(x["round"] for x in rounds if x["accepted"])
    last = every[(every["round"] == last_round) & (every["weight"] > 0)]
    picks = rng.permutation(_systematic(last["weight"].to_numpy(), len(last), rng))  # any first k: a random k
    draws = last.iloc[picks].drop(columns=["accepted", "weight", "draw"]).reset_index(drop=True)
    draws.insert(0, "particle", last["draw"].to_numpy()[picks])
    draws.insert(0, "draw", np.arange(len(draws)))
    effective = float(1.0 / np.sum(last["weight"].to_numpy() ** 2))
    summary = {"rounds": rounds, "target_tolerance": floor, "evaluations": int(len(every)), "draws": int(len(draws)),
               "effective_sample_size": effective, "bounds": dict(zip(spec.labels, map(list, spec.bounds)))}
    return every, draws, summary


def default_tolerance(weights) -> float:
    """χ²(0.95) with one degree of freedom per fitted target (weight > 0), times their mean weight."""
    from scipy.stats import chi2

    w = np.asarray(weights, dtype=float)
    w = w[w > 0]
    return float(chi2.ppf(0.95, len(w)) * w.mean())


def _round_table(spec, r: int, xs: np.ndarray, d: np.ndarray, keep: np.ndarray, w: np.ndarray) -> pd.DataFrame:
    t = pd.DataFrame(xs, columns=spec.labels)
    t.insert(0, "round", r)
    t["distance"] = d
    t["accepted"] = keep
    t["weight"] = w
    t["overrides"] = [json.dumps(spec.overrides(x)) for x in xs]
    return t


def _bounds_of(centres: np.ndarray, scale: np.ndarray, lo: np.ndarray, hi: np.ndarray):
    return (lo - centres) / scale, (hi - centres) / scale


def _propose(particles, weights, scale, lo, hi, n: int, rng) -> np.ndarray:
    """`n` proposals: a particle picked by weight, moved by the truncated normal kernel."""
    parents = particles[rng.choice(len(particles), size=n, p=weights)]
    a, b = _bounds_of(parents, scale, lo, hi)
    return truncnorm.rvs(a, b, loc=parents, scale=scale, size=parents.shape, random_state=rng)


def _kernel_mixture(xs, particles, weights, scale, lo, hi) -> np.ndarray:
    """Σ_j w_j K(x | θ_j) for each x: the density the proposals were drawn from (the prior
    is uniform on the box, so the importance weight is its inverse)."""
    a, b = _bounds_of(particles, scale, lo, hi)  # (parents, dims)
    dens = truncnorm.pdf(xs[:, None, :], a[None], b[None], loc=particles[None], scale=scale)
    return np.prod(dens, axis=2) @ weights


def _systematic(weights: np.ndarray, n: int, rng) -> np.ndarray:
    """Indexes of an equal-weight sample of size n (systematic resampling: each particle
    appears floor or ceil of n × its weight times)."""
    positions = (rng.random() + np.arange(n)) / n
    return np.minimum(np.searchsorted(np.cumsum(weights), positions), len(weights) - 1)
