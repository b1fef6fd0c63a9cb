"""Common random numbers (DESIGN.md): every draw is a pure function of
(seed, decision name, year, entity id).

A counter-based hash (SplitMix64's finaliser) maps each stable id to its own uniform, so
a household's draws never depend on how many other households exist, in which order they
are stored, or which of them a policy touched. Two scenarios run with one seed therefore
differ only where a policy made them differ, and a no-op change is bit-identical.

One 64-bit hash gives two independent 23-bit uniforms (high and low halves), or three
21-bit ones (23 bits is float32's limit: (2^24 − ½) / 2^24 would round to exactly 1); most decisions use a pair or a triple, and Box–Muller turns a pair into two
standard normals. Uniforms are (k + ½) / 2^bits, strictly inside (0, 1).
"""
from __future__ import annotations

import zlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1
_SCALE = np.float32(1.0 / (1 << 23))
_MASK23 = np.uint64((1 << 23) - 1)
_HALF = np.float32(0.5)


def _mix_int(z: int) -> int:
    """SplitMix64 finaliser on a Python int (for building stream keys)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def stream_key(seed: int, name: str, year: int) -> int:
    """64-bit key of the stream (seed, decision name, year)."""
    k = _mix_int(int(seed) * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019)
    k = _mix_int(k ^ zlib.crc32(name.encode("utf-8")) * 0xD1B54A32D192ED03)
    return _mix_int(k ^ (int(year) & 0xFFFF) * 0xAEF17502108EF2D9)


def _hash(ids: np.ndarray, key: int) -> np.ndarray:
    z = np.multiply(np.ascontiguousarray(ids, dtype=np.int64).view(np.uint64), _GOLDEN)  # a new array
    z += np.uint64(key)
    tmp = np.empty_like(z)
    np.right_shift(z, np.uint64(30), out=tmp)
    z ^= tmp
    z *= _M1
    np.right_shift(z, np.uint64(27), out=tmp)
    z ^= tmp
    z *= _M2
    np.right_shift(z, np.uint64(31), out=tmp)
    z ^= tmp
    return z


def _to_unit(bits: np.ndarray, scale: np.float32 = _SCALE) -> np.ndarray:
    u = bits.astype(np.float32)
    u += _HALF
    u *= scale
    return u


_SCALE21 = np.float32(1.0 / (1 << 21))
_MASK21 = np.uint64((1 << 21) - 1)


class RandomStreams:
    """Draws keyed by (seed, name, year) and indexed by stable entity ids."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def uniform_pair(self, name: str, year: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two independent float32 uniforms in (0, 1) per id."""
        z = _hash(ids, stream_key(self.seed, name, year))
        hi = _to_unit(z >> np.uint64(41))
        lo = _to_unit((z >> np.uint64(9)) & _MASK23)
        return hi, lo

    def uniform_triple(self, name: str, year: int, ids: np.ndarray) -> tuple[np.ndarray, ...]:
        """Three independent float32 uniforms in (0, 1) per id (21 bits each)."""
        z = _hash(ids, stream_key(self.seed, name, year))
        return (_to_unit(z >> np.uint64(43), _SCALE21),
                _to_unit((z >> np.uint64(22)) & _MASK21, _SCALE21),
                _to_unit((z >> np.uint64(1)) & _MASK21, _SCALE21))

    def uniform(self, name: str, year: int, ids: np.ndarray) -> np.ndarray:
        """One float32 uniform in (0, 1) per id."""
        z = _hash(ids, stream_key(self.seed, name, year))
        return _to_unit(z >> np.uint64(41))

    def normal_pair(self, name: str, year: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Two independent float32 standard normals per id (Box–Muller)."""
        u1, u2 = self.uniform_pair(name, year, ids)
        r = np.log(u1)
        r *= np.float32(-2.0)
        np.sqrt(r, out=r)
        u2 *= np.float32(2.0 * np.pi)
        return r * np.cos(u2), r * np.sin(u2)

    def normal(self, name: str, year: int, ids: np.ndarray) -> np.ndarray:
        return self.normal_pair(name, year, ids)[0]

    def replicate_seed(self, rep: int) -> int:
        """Seed of replicate `rep`, derived from this base seed (rep 0 is the base seed)."""
        return self.seed if rep == 0 else stream_key(self.seed, "replicate", rep) & 0x7FFFFFFF
