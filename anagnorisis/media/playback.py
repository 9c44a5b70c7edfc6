"""What a browser is given for a music track: its embedded cover art and audio it can play.

Both live in the previews cache, keyed by content hash and made once: covers as small JPEGs
(``previews/covers/<hash>.jpg``), audio the browser cannot decode as Ogg Opus (``previews/audio/<hash>.ogg``).
Everything else is served in place from its library root.
"""
from __future__ import annotations

import base64
import io
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import av
import mutagen
from PIL import Image

from anagnorisis.media.previews import small_picture

log = logging.getLogger(__name__)

COVER_PIXELS = 300  # longest side of a cached cover: sharp in the player, a few KB in a table row
COVER_JPEG_QUALITY = 85
TRANSCODE_RATE = 48_000  # Opus only runs at 48 kHz
TRANSCODE_BITRATE = 128_000  # bits/s: transparent for Opus stereo music
# Codecs every current browser decodes (checked in Debian's Chromium): names from the scanner's metadata, which
# come from libsndfile (pcm_16, float, ulaw…) or FFmpeg (pcm_s16le, mp3float…). ADPCM, GSM, ALAC, WMA, APE,
# 64-bit float PCM and anything unknown are transcoded.
BROWSER_CODECS = frozenset({
    "mp3", "mp3float", "flac", "vorbis", "opus", "aac",
    "pcm_u8", "pcm_16", "pcm_24", "pcm_32", "float", "ulaw", "alaw",
    "pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_mulaw", "pcm_alaw",
})
FILE_ROUTE = "gradio_api/file="  # Gradio serves allowed files here; relative, so a proxy's root path still works

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class PlaybackError(RuntimeError):
    """The track cannot be made playable (its audio does not decode); the message says why."""


def file_url(path: str | os.PathLike[str]) -> str:
    """The URL (relative to the app page) under which Gradio serves an allowed file in place."""
    return FILE_ROUTE + quote(os.fspath(path), safe="/")


def _lock_for(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def _write_atomically(target: Path, data: bytes) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, target)
    return target


# ---------------------------------------------------------------- covers


def cover_path(previews_dir: Path, content_hash: str) -> Path:
    return Path(previews_dir) / "covers" / f"{content_hash}.jpg"


def ensure_cover(previews_dir: Path, record: Mapping[str, Any]) -> Path | None:
    """The cached cover of a track, extracted now if missing; None when the file has no (readable) cover."""
    if not (record.get("metadata") or {}).get("cover"):
        return None
    target = cover_path(previews_dir, str(record["content_hash"]))
    if target.exists():
        return target
    with _lock_for("cover:" + str(record["content_hash"])):
        if target.exists():
            return target
        try:
            picture = embedded_cover(record["path"])
            return _write_atomically(target, cover_jpeg(picture)) if picture else None
        except (OSError, ValueError, Image.DecompressionBombError, mutagen.MutagenError) as error:
            log.warning("no cover for %s: %s", record["path"], error)
            return None


def embedded_cover(path: str | os.PathLike[str]) -> bytes | None:
    """The front cover's bytes (else the first picture) from ID3, MP4, FLAC, Vorbis/Opus, ASF or APE tags."""
    audio = mutagen.File(os.fsencode(path))
    if audio is None:
        return None
    pictures = _pictures(audio)
    front = [data for kind, data in pictures if kind == 3]
    chosen = front or [data for _kind, data in pictures]
    return chosen[0] if chosen else None


def _pictures(audio: Any) -> list[tuple[int, bytes]]:
    """(picture type, bytes) of every embedded picture; type 3 is the front cover, -1 unknown."""
    found: list[tuple[int, bytes]] = [(picture.type, picture.data) for picture in getattr(audio, "pictures", [])]
    tags = audio.tags
    if tags is None:
        return found
    if hasattr(tags, "getall"):  # ID3 (MP3, WAV, AIFF)
        return found + [(frame.type, frame.data) for frame in tags.getall("APIC")]
    for key in list(tags.keys()):
        name = str(key).lower()
        values = tags[key] if isinstance(tags[key], list) else [tags[key]]
        if name == "covr":  # MP4
            found += [(3, bytes(value)) for value in values]
        elif name == "metadata_block_picture":  # Vorbis comments (Ogg Vorbis, Opus)
            found += [_vorbis_picture(str(value)) for value in values]
        elif name in ("cover art (front)", "wm/picture"):
            found += [(3, _after_description(getattr(value, "value", value))) for value in values]
    return found


def _vorbis_picture(encoded: str) -> tuple[int, bytes]:
    from mutagen.flac import Picture

    picture = Picture(base64.b64decode(encoded))
    return picture.type, picture.data


def _after_description(value: Any) -> bytes:
    """APEv2 cover art is 'description\\0image bytes'; ASF pictures carry a small header before the image."""
    data = bytes(value)
    for magic in (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"RIFF", b"BM"):
        at = data.find(magic)
        if at >= 0:
            return data[at:]
    return data.split(b"\x00", 1)[-1]


def cover_jpeg(picture: bytes, size: int = COVER_PIXELS) -> bytes:
    """A small RGB JPEG of the picture, oriented by EXIF, transparency laid on dark grey."""
    with Image.open(io.BytesIO(picture)) as opened:
        image = small_picture(opened, size)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", quality=COVER_JPEG_QUALITY)
        return buffer.getvalue()


# ---------------------------------------------------------------- audio the browser can play


def browser_plays(record: Mapping[str, Any]) -> bool:
    """Whether a browser decodes this track as it is (by the codec the scanner found)."""
    codec = str((record.get("metadata") or {}).get("codec") or "").lower()
    return codec in BROWSER_CODECS


def transcoded_path(previews_dir: Path, content_hash: str) -> Path:
    return Path(previews_dir) / "audio" / f"{content_hash}.ogg"


def linked_path(previews_dir: Path, record: Mapping[str, Any]) -> Path:
    """A link in the cache to a file whose name is not UTF-8 (a URL cannot carry it)."""
    suffix = Path(os.fsdecode(record["path_bytes"]) if record.get("path_bytes") else str(record["path"])).suffix
    suffix = suffix.encode("utf-8", "replace").decode("ascii", "ignore") or ".audio"
    return Path(previews_dir) / "audio" / f"{record['content_hash']}{suffix}"


def playable_file(previews_dir: Path, record: Mapping[str, Any], *, transcode: bool = False) -> Path:
    """The file the browser should load for a track: the original when it can play it, else a cached transcode.

    ``transcode=True`` forces the transcode (the browser failed on the original). PlaybackError when the audio
    cannot be decoded at all.
    """
    path = Path(str(record["path"]))
    if transcode or not browser_plays(record):
        return ensure_transcoded(previews_dir, path, str(record["content_hash"]))
    if not _utf8_name(str(path)):
        return _ensure_link(linked_path(previews_dir, record), path)
    return path


def _utf8_name(path: str) -> bool:
    try:
        path.encode("utf-8")
        return True
    except UnicodeEncodeError:  # os.fsdecode kept undecodable bytes as surrogates
        return False


def _ensure_link(link: Path, target: Path) -> Path:
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.fsencode(target), os.fsencode(link))
    return link


def ensure_transcoded(previews_dir: Path, source: Path, content_hash: str) -> Path:
    """The cached Ogg Opus copy of a track, transcoded now (PyAV) when missing."""
    target = transcoded_path(previews_dir, content_hash)
    if target.exists():
        return target
    with _lock_for("audio:" + content_hash):
        if target.exists():
            return target
        try:
            data = transcode_to_opus(source)
        except (av.FFmpegError, OSError, ValueError) as error:
            raise PlaybackError(f"cannot decode {source}: {error}") from error
        log.info("transcoded %s for the browser (%d KB)", source, len(data) // 1024)
        return _write_atomically(target, data)


def transcode_to_opus(source: Path) -> bytes:
    """The first audio stream of a file as Ogg Opus at 48 kHz (mono stays mono, more channels become stereo)."""
    buffer = io.BytesIO()
    # FFmpeg reads through a Python file object: any file name works (not only UTF-8), and no protocol is parsed
    with open(os.fsencode(source), "rb") as raw, av.open(raw, metadata_errors="replace") as container:
        if not container.streams.audio:
            raise ValueError("no audio stream")
        stream = container.streams.audio[0]
        layout = "mono" if (stream.codec_context.channels or 2) == 1 else "stereo"
        with av.open(buffer, "w", format="ogg") as output:
            encoder = output.add_stream("libopus", rate=TRANSCODE_RATE, layout=layout)
            encoder.bit_rate = TRANSCODE_BITRATE
            resampler = av.AudioResampler(format="s16", layout=layout, rate=TRANSCODE_RATE,
                                          frame_size=encoder.codec_context.frame_size or 960)
            frames = 0
            for frame in container.decode(stream):
                frame.pts = None
                for chunk in resampler.resample(frame):
                    frames += 1
                    output.mux(encoder.encode(chunk))
            for chunk in resampler.resample(None):
                output.mux(encoder.encode(chunk))
            output.mux(encoder.encode(None))
            if frames == 0:
                raise ValueError("no audio could be decoded")
    return buffer.getvalue()
