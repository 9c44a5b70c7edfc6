"""Orders from values and the temperature draw (SPEC §4): reproducible by seed, pages of one seed join up.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from anagnorisis.search.request import Floats, Order


NO_VALUE_STRENGTH = 1e-9  # SPEC §4: an item without a value is drawn with this strength at T > 0


MIN_STRENGTH = 1e-300  # floor that keeps log() finite for a zero score (a song played a second ago)


def draw_order(strengths: npt.ArrayLike, temperature: float, seed: int) -> Order:
    """A random order drawn without replacement with p ∝ s^(1/T) (SPEC §4), reproducible by seed.

    Exponential race (equivalent to the Gumbel-top-k trick): item i finishes at E_i / w_i with E_i ~ Exp(1) and
    w_i = s_i^(1/T); the earliest finisher is item i with probability w_i / Σw, and by memorylessness the rest of
    the race is the same draw over the remaining items. Sorting log(E_i) − log(s_i)/T orders all n items in
    O(n log n) and never forms s^(1/T), which underflows for small T.
    """
    s = np.maximum(np.asarray(strengths, dtype=np.float64), MIN_STRENGTH)
    if temperature <= 0:
        raise ValueError("draw_order needs a temperature above 0; T = 0 is the plain sort")
    race = np.random.default_rng(seed).standard_exponential(len(s))
    with np.errstate(divide="ignore"):
        keys = np.log(race) - np.log(s) / temperature
    return np.argsort(keys, kind="stable").astype(np.int64)


def rank_strengths(order: Order, has_value: npt.NDArray[np.bool_]) -> Floats:
    """s = (n − rank) / n along the chosen order; items without a value get 1e-9 (SPEC §4)."""
    count = len(order)
    strengths = np.full(count, NO_VALUE_STRENGTH, dtype=np.float64)
    ranks = np.empty(count, dtype=np.float64)
    ranks[order] = np.arange(count)
    strengths[has_value] = (count - ranks[has_value]) / max(count, 1)
    return strengths


def order_by_values(values: Floats, paths: Sequence[str], descending: bool) -> Order:
    """Items with a value by value (ties by path), then the items without one (NaN) by path, in both orders."""
    path_rank = np.empty(len(paths), dtype=np.int64)
    path_rank[sorted(range(len(paths)), key=paths.__getitem__)] = np.arange(len(paths))
    has = ~np.isnan(values)
    with_value = np.flatnonzero(has)
    keys = -values[with_value] if descending else values[with_value]
    first = with_value[np.lexsort((path_rank[with_value], keys))]
    without = np.flatnonzero(~has)
    rest = without[np.argsort(path_rank[without], kind="stable")]
    return np.concatenate([first, rest]).astype(np.int64)

