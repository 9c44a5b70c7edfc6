"""What the Music and Videos players hold between events, and how it moves: dataclasses and pure functions.

No Gradio and no store here: the tabs (``ui/music.py``, ``ui/videos.py``) read the files, record the plays and
draw the page; this module is the queue arithmetic their handlers share — where Next and Previous go at the ends
of the list, which browser event belongs to the current load, where a click starts a list that moved since the
page was drawn, how the radio grows its list by drawing, and the words saying where in the list the player is.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from anagnorisis.recommend.radio import draw_next, radio_seed
from anagnorisis.search.engine import SearchRequest

Track = tuple[str, str]  # (path, content hash)
Record = Mapping[str, Any]
DEFAULT_RADIO_TEMPERATURE = 1.0  # SPEC §4: T = 1 draws in proportion to the score
END_OF_LIST = "End of the list."
RADIO_EMPTY = "The radio has nothing to play: no track passes the filters."


@dataclass
class PlayerState:
    """A list being played and where: what both players hold."""

    tracks: list[Track] = field(default_factory=list)  # in play order
    position: int = -1
    nonce: int = 0  # the current load (browse.next_load): a browser event names its load; late ones are ignored
    finished: bool = True  # the current track ended, was skipped or failed: Next counts no skip
    message: str = ""  # plain text (it names files): escaped where it is shown

    def current(self) -> Track | None:
        return self.tracks[self.position] if 0 <= self.position < len(self.tracks) else None


@dataclass
class MusicPlayer(PlayerState):
    """The music player: a playlist snapshot, or the radio's draws so far."""

    mode: str = ""  # "playlist", "radio", or "" when stopped
    transcoded: bool = False  # the current load is the cached transcode (the original failed or is unplayable)
    temperature: float = DEFAULT_RADIO_TEMPERATURE
    seed: int = 0
    draws: int = 0
    scope: SearchRequest | None = None  # radio: the filters of the scored set

    def current(self) -> Track | None:
        return super().current() if self.mode else None


@dataclass
class VideoPlayer(PlayerState):
    """The video player: the current order's videos (autoplay goes through them)."""

    forced: bool = False  # the current load is the cached MP4 because the browser failed on the original
    preparing: str = ""  # the job making the current video playable, while it runs
    reasons: dict[str, str] = field(default_factory=dict)  # content hash -> why it ranks where it does

    def rated(self) -> Track | None:
        """The video the slider rates: the current one, or after the end of the list the last one played."""
        if self.current() is None and self.tracks and self.position >= len(self.tracks):
            return self.tracks[-1]
        return self.current()


Player = TypeVar("Player", bound=PlayerState)


# ---------------------------------------------------------------------------------------------- both players


def tracks_of(records: Sequence[Record]) -> list[Track]:
    """(path, content hash) of each record, in order."""
    return [(str(record["path"]), str(record["content_hash"])) for record in records]


def event_nonce(data: Any) -> int | None:
    """The load a browser event belongs to (the media element's data-nonce), None when it names none."""
    value = (data or {}).get("nonce")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def is_current_load(player: PlayerState, data: Any) -> bool:
    """True when a browser event (end, error) is about the track now loaded and not yet over: a late event of an
    earlier load, or a second one of this load, changes nothing."""
    return player.current() is not None and not player.finished and event_nonce(data) == player.nonce


def path_of_hash(tracks: Sequence[Track], content_hash: str, *, latest: bool = False) -> str | None:
    """The path the list plays for a content hash (the first such track, or with latest the last one)."""
    found = [path for path, known in tracks if known == content_hash]
    return (found[-1] if latest else found[0]) if found else None


def nearest_position(tracks: Sequence[Track], content_hash: str | None, near: int) -> int | None:
    """Where in the list the track with this hash is, the one nearest to position near when it is there twice;
    None when it is not in the list (it left it since the page was drawn)."""
    positions = [i for i, (_path, known) in enumerate(tracks) if known == content_hash]
    return min(positions, key=lambda i: abs(i - near)) if positions else None


def previous_position(player: PlayerState) -> int:
    """Where Previous goes: one back; at the first track that track again; after the end the last one."""
    return max(0, min(player.position, len(player.tracks)) - 1)


def loaded(player: Player, nonce: int) -> Player:
    """The state once the current track is given to the browser as load number nonce."""
    return replace(player, nonce=nonce, finished=False)


# ---------------------------------------------------------------------------------------------- the music player


def playlist(tracks: list[Track], start: int = 0, content_hash: str | None = None) -> MusicPlayer:
    """Play tracks in order from start (0-based), or from the track with content_hash nearest to start."""
    found = nearest_position(tracks, content_hash, start)
    start = start if found is None else found
    return MusicPlayer(mode="playlist", tracks=tracks, position=max(0, min(start, len(tracks) - 1)))


def radio(temperature: float, seed: int, scope: SearchRequest | None) -> MusicPlayer:
    """A radio before its first draw (step_forward draws it)."""
    return MusicPlayer(mode="radio", temperature=max(0.0, float(temperature or 0)), seed=int(seed or 0),
                       scope=scope)


Pool = Callable[[SearchRequest | None], Sequence[Record]]  # the radio's scored set for its scope, read when drawn


def draw_radio_track(player: MusicPlayer, pool: Pool, kind: str = "music") -> Track | None:
    """The radio's next draw from its scored set, avoiding what it played lately; None for an empty set."""
    records = pool(player.scope)
    recent = [content_hash for _path, content_hash in player.tracks]
    index = draw_next(records, kind, temperature=player.temperature, seed=radio_seed(player.seed, player.draws),
                      recent=recent)
    return None if index is None else (str(records[index]["path"]), str(records[index]["content_hash"]))


def step_forward(player: MusicPlayer, pool: Pool) -> MusicPlayer:
    """The next position: the next of the playlist, or (radio) forward in its history, else a new draw. At the
    end of a playlist, or with nothing left to draw, the player stops with a message."""
    player = replace(player, transcoded=False)
    if player.position + 1 < len(player.tracks):
        return replace(player, position=player.position + 1)
    if player.mode != "radio":
        return replace(player, mode="", position=len(player.tracks), message=END_OF_LIST)
    drawn = draw_radio_track(player, pool)
    if drawn is None:
        return replace(player, mode="", message=RADIO_EMPTY)
    return replace(player, tracks=[*player.tracks, drawn], position=len(player.tracks), draws=player.draws + 1)


def move_on(player: MusicPlayer, pool: Pool, message: str = "") -> MusicPlayer:
    """Past the current track (ended, skipped, passed over): the next one, the message saying why if any."""
    return step_forward(replace(player, finished=True, message=message), pool)


def step_back(player: MusicPlayer) -> MusicPlayer:
    """Previous: one back (no penalty for the track left); a stopped player plays again in its old mode."""
    mode = player.mode or ("radio" if player.scope is not None else "playlist")
    return replace(player, mode=mode, position=previous_position(player), transcoded=False, message="")


def stopped(player: MusicPlayer, message: str) -> MusicPlayer:
    return replace(player, mode="", finished=True, message=message)


def music_place(player: MusicPlayer) -> str:
    """Where the player is, in words (numbers and fixed words): "track 2 of 5 · playlist", or the radio's."""
    if player.mode == "playlist":
        return f"track {player.position + 1:d} of {len(player.tracks)} · playlist"
    return f"radio at temperature {player.temperature:g} · track {player.position + 1:d}"


# ---------------------------------------------------------------------------------------------- the video player


def video_queue(tracks: list[Track], clicked: Track, near: int, reasons: dict[str, str]) -> VideoPlayer:
    """Play the current order from the clicked video (nearest to position near); a video no longer in the order
    plays alone."""
    found = nearest_position(tracks, clicked[1], near)
    if found is None:
        tracks, found = [clicked], 0
    return VideoPlayer(tracks=tracks, position=found, reasons=reasons)


def video_forward(player: VideoPlayer, message: str = "") -> VideoPlayer:
    """The next video of the order (past the end: no current video, and the slider rates the last one)."""
    return replace(player, position=player.position + 1, forced=False, finished=True, message=message)


def video_back(player: VideoPlayer) -> VideoPlayer:
    return replace(player, position=previous_position(player), forced=False, finished=True, message="")


def video_place(player: VideoPlayer) -> str:
    return f"Video {player.position + 1:d} of {len(player.tracks)} in the current order"
