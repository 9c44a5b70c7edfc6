"""Radio: the next track drawn from the recommendation order at a temperature (SPEC §4, §5).

Pure: given the scored set (the files passing the current filters, with their current plays, skips and last
played times) and what was played recently, pick one. The scores are ``recommend.recommendation_scores``, the
function behind ``search music --sort recommendation``; at T > 0 the pick is the first item of
``search.draw_order`` (p ∝ s^(1/T), ``numpy.random.default_rng(seed)``), at T = 0 the top score.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from anagnorisis.recommend.scores import recommendation_scores
from anagnorisis.search import draw_order

Record = Mapping[str, Any]

# Tracks played this recently are not drawn again, so the radio does not come back to a song it just played
# (S_time already makes the last one score 0; this also keeps the few before it out) ...
RECENT_TRACKS_AVOIDED = 5
# ... but never more than this share of the scored set, so a small library still leaves a real choice.
MAX_AVOIDED_SHARE = 0.5


def radio_seed(seed: int, draw: int) -> int:
    """The seed of the draw-th draw of a radio started with seed: reproducible, and different every draw."""
    return int(np.random.SeedSequence([int(seed), int(draw)]).generate_state(1)[0])


def avoided_hashes(recent: Sequence[str], count: int) -> set[str]:
    """The content hashes not to draw now: the last few played, at most MAX_AVOIDED_SHARE of the set."""
    window = min(RECENT_TRACKS_AVOIDED, int(count * MAX_AVOIDED_SHARE))
    avoided = set(recent[-window:]) if window > 0 else set()
    if recent and count > 1:
        avoided.add(recent[-1])  # the track just played never comes straight back while another is left
    return avoided


def candidate_indices(records: Sequence[Record], recent: Sequence[str]) -> list[int]:
    """Indices of the records the radio may draw now; everything when the avoided tracks are all there is."""
    avoided = avoided_hashes(recent, len(records))
    allowed = [i for i, record in enumerate(records) if record.get("content_hash") not in avoided]
    return allowed or list(range(len(records)))


def draw_next(records: Sequence[Record], kind: str, *, temperature: float, seed: int,
              recent: Sequence[str] = ()) -> int | None:
    """The index (into records) of the next track, or None for an empty set.

    Scores cover the whole set (N includes the recent tracks, as in `search --sort recommendation`); the recent
    tracks are then left out of the draw.
    """
    if not records:
        return None
    scores = recommendation_scores(records, kind)
    allowed = np.array(candidate_indices(records, recent), dtype=np.int64)
    if temperature <= 0:
        paths = [str(records[i].get("path", "")) for i in allowed]
        best = min(range(len(allowed)), key=lambda j: (-scores[allowed[j]], paths[j]))  # ties: by path
        return int(allowed[best])
    return int(allowed[draw_order(scores[allowed], temperature, seed)[0]])
