"""Seeds of an experiment's runs, each a pure function of the experiment's seed and the run's
place in it (replicate, design point), so results never depend on how the runs are spread
over processes or machines."""
from __future__ import annotations

import hashlib

from fupin_sim.rng import RandomStreams, stream_key


def replicate_seeds(base_seed: int, reps: int) -> list[int]:
    """The seeds of replicates 0 … reps − 1 of an ensemble with base seed `base_seed`."""
    streams = RandomStreams(base_seed)
    return [streams.replicate_seed(r) for r in range(reps)]


def run_seed(seed: int, point: int | str, replicate: int, common: bool = False) -> int:
    """Seed of a sweep's run (point, replicate): a hash of (seed, point, replicate), or with
    common random numbers replicate r's seed of an ensemble with base `seed` (the same for
    every point)."""
    if common:
        return replicate_seeds(seed, replicate + 1)[replicate]
    digest = hashlib.blake2b(f"fupin_sim.sweep:{seed}:{point}:{replicate}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def derived_seed(seed: int, name: str, index: int) -> int:
    """A seed for another purpose than replicates (`name`), never one of `seed`'s replicates."""
    return stream_key(seed, name, index) & 0x7FFFFFFF
