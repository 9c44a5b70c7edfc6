"""Music: mutagen reads the tags; soundfile or PyAV decodes a little at both ends to prove the audio is whole."""
from __future__ import annotations

import os
import re
import struct
from datetime import date
from pathlib import Path
from typing import Any

import mutagen
import soundfile

from anagnorisis.kinds import avtools
from anagnorisis.kinds.probing import (
    MUSIC,
    Content,
    extension_warning,
    id3_size,
    read_head,
    refuse_other_kinds,
    sniff_file,
)
from anagnorisis.kinds.registry import MediaError, MediaKind, Metadata, Probe, register

CHECK_SECONDS = 0.25  # audio decoded at the start (and at the end, with soundfile) to prove the file whole
# Samples the last window may lack and still count as whole: an MP3 decoder may be a frame (26 ms) off.
END_TOLERANCE_SECONDS = 0.1
MAX_TAG_CHARS = 300  # a tag value longer than this is cut: it is shown in a table cell
MP3_HEADER_SEARCH_BYTES = 2048  # the Xing/VBRI header sits inside the first frame, at most 1,441 bytes long
OGG_TAIL_BYTES = 65_536  # an Ogg page is at most 65,307 bytes, so the last page starts within this tail

# The formats (probing.Content.format) each extension may hold without a warning.
EXPECTED_FORMATS: dict[str, frozenset[str]] = {
    ".mp3": frozenset({"mp3"}),
    ".flac": frozenset({"flac"}),
    ".ogg": frozenset({"ogg", "opus"}),
    ".oga": frozenset({"ogg", "opus"}),
    ".opus": frozenset({"opus"}),
    ".wav": frozenset({"wav"}),
    ".m4a": frozenset({"m4a", "mp4"}),
    ".aac": frozenset({"aac"}),
}
# Content that libsndfile decodes exactly (with seeking); everything else goes through PyAV.
SOUNDFILE_FORMATS = frozenset({"wav", "aiff", "flac", "mp3"})
SOUNDFILE_OGG_LABELS = frozenset({"Ogg Vorbis", "Ogg FLAC"})

# Tag keys per tag system, first match wins.
_ID3_FRAMES = {"artist": "TPE1", "title": "TIT2", "album": "TALB", "date": "TDRC", "genre": "TCON"}
_MP4_ATOMS = {"artist": "\xa9ART", "title": "\xa9nam", "album": "\xa9alb", "date": "\xa9day", "genre": "\xa9gen"}
_VORBIS_KEYS = {"artist": ("artist", "albumartist"), "title": ("title",), "album": ("album",),
                "date": ("date", "year", "originaldate"), "genre": ("genre",)}
_ASF_KEYS = {"artist": "Author", "title": "Title", "album": "WM/AlbumTitle", "date": "WM/Year", "genre": "WM/Genre"}
_APE_KEYS = {"artist": "Artist", "title": "Title", "album": "Album", "date": "Year", "genre": "Genre"}


def read_music(path: Path) -> Probe:
    """Tags and stream facts of an audio file, after decoding a little of it; MediaError with the reason otherwise."""
    head = read_head(path)
    content = sniff_file(path, head)
    refuse_other_kinds(content, MUSIC, "audio")
    try:
        stream_facts = _decode_a_little(path, head, content)
    except MediaError:
        raise
    except Exception as error:  # noqa: BLE001 - decoders raise anything on hostile input; all mean "damaged"
        raise MediaError(avtools.damage_reason(path, content, error, "audio")) from error
    metadata = {**stream_facts, **_read_tags(path)}
    return Probe(metadata, extension_warning(content, path, EXPECTED_FORMATS))


def _decode_a_little(path: Path, head: bytes, content: Content | None) -> Metadata:
    if head.startswith(b"OggS"):
        _check_ogg_is_complete(path)
    if content is not None and content.format == "wav":
        _check_riff_is_complete(path)
    if content is not None and (content.format in SOUNDFILE_FORMATS or content.label in SOUNDFILE_OGG_LABELS):
        # An Ogg file's end was proven above (a whole end-of-stream page); libsndfile's seek within Vorbis may land
        # a little late, so reading the last window there could call a whole file short (it did, by 0.13 s).
        ogg = head.startswith(b"OggS")
        trust_length = not ogg and (content.format != "mp3" or _mp3_states_its_length(path))
        facts = _check_with_soundfile(path, trust_length=trust_length)
        if facts is not None:
            return {**facts, "format": content.format}
    facts = _check_with_pyav(path)
    return {**facts, "format": content.format if content is not None else facts["format"]}


def _check_with_soundfile(path: Path, trust_length: bool) -> Metadata | None:
    """Decode CHECK_SECONDS at the start and (when the stated length is exact) at the end.

    None when libsndfile cannot open the file (an unusual codec inside a WAV, say) or does not know its length,
    so that FFmpeg, which knows more codecs, decides instead.
    """
    try:
        sound = soundfile.SoundFile(os.fsencode(path))
    except (soundfile.LibsndfileError, RuntimeError):
        return None
    with sound:
        frames, rate = sound.frames, sound.samplerate
        if frames <= 0 or rate <= 0:
            return None
        window = max(1, min(frames, int(rate * CHECK_SECONDS)))
        if len(sound.read(window, dtype="float32")) == 0:
            raise MediaError("no audio could be decoded")
        if trust_length and frames > 2 * window:
            _read_the_end(sound, frames, window)
        facts = {"duration": round(frames / rate, 3), "sample_rate": rate, "channels": sound.channels}
        return {**facts, "codec": _soundfile_codec(sound)}


def _read_the_end(sound: soundfile.SoundFile, frames: int, window: int) -> None:
    stated = f"{frames / sound.samplerate:.1f} s"
    try:
        sound.seek(frames - window)
        got = len(sound.read(window, dtype="float32"))
    except (soundfile.LibsndfileError, RuntimeError) as error:
        raise MediaError(f"truncated: audio stops before its stated length ({stated})") from error
    if got < window - int(sound.samplerate * END_TOLERANCE_SECONDS):
        raise MediaError(f"truncated: audio stops before its stated length ({stated})")


def _mp3_states_its_length(path: Path) -> bool:
    """True when a Xing/Info/VBRI header gives the exact frame count; without one the length is a guess from
    the bitrate, and a VBR file may well end before the guess."""
    with open(path, "rb") as file:
        head = file.read(10)
        file.seek(id3_size(head) if head.startswith(b"ID3") and len(head) == 10 else 0)
        first_frame = file.read(MP3_HEADER_SEARCH_BYTES)
    return any(marker in first_frame for marker in (b"Xing", b"Info", b"VBRI"))


def _soundfile_codec(sound: soundfile.SoundFile) -> str:
    names = {"MPEG_LAYER_III": "mp3", "VORBIS": "vorbis", "OPUS": "opus"}
    if sound.format == "FLAC":
        return "flac"
    return names.get(sound.subtype, sound.subtype.lower())


def _check_with_pyav(path: Path) -> Metadata:
    with avtools.open_container(path) as container:
        if avtools.is_still_image_container(container):
            raise MediaError("content is an image, not audio")
        if avtools.real_video_streams(container):
            raise MediaError("content is a video, not music")
        if not container.streams.audio:
            raise MediaError("no audio stream")
        stream = container.streams.audio[0]
        avtools.require_a_decoder(stream)
        rate = stream.codec_context.sample_rate or 0
        avtools.decode_first_frames(container, stream, max(1, int(rate * CHECK_SECONDS)))
        seconds = avtools.container_seconds(container, stream)
        avtools.check_that_the_end_is_there(container, seconds)
        facts: Metadata = {"sample_rate": rate, "channels": stream.codec_context.channels}
        facts.update(codec=avtools.codec_name(stream), format=container.format.name.split(",")[0])
        if seconds is not None:
            facts["duration"] = round(seconds, 3)
        return facts


def _check_riff_is_complete(path: Path) -> None:
    """libsndfile quietly plays a cut-off WAV; the RIFF header says how long the file should be."""
    with open(path, "rb") as file:
        header = file.read(12)
        size = os.fstat(file.fileno()).st_size
    stated = struct.unpack_from("<I", header, 4)[0] + 8 if len(header) >= 8 else 0
    unknown = stated in (8, 0xFFFFFFFF + 8)  # streaming writers leave the size 0 or all ones
    if not unknown and stated > size:
        raise MediaError(f"truncated: {size:,} of the stated {stated:,} bytes")


def _check_ogg_is_complete(path: Path) -> None:
    """An Ogg stream ends with a whole page flagged end-of-stream; a cut-off file does not."""
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        file.seek(max(0, size - OGG_TAIL_BYTES))
        tail = file.read()
    start = tail.rfind(b"OggS")
    if start < 0 or len(tail) - start < 27:
        raise MediaError("truncated: the last Ogg page is missing")
    segments = tail[start + 27 : start + 27 + tail[start + 26]]
    page_end = start + 27 + tail[start + 26] + sum(segments)
    if len(segments) < tail[start + 26] or page_end > len(tail):
        raise MediaError("truncated: the last Ogg page is cut off")
    if not tail[start + 5] & 0x04:
        raise MediaError("truncated: the Ogg stream has no end-of-stream page")


# ---------------------------------------------------------------- tags


def _read_tags(path: Path) -> Metadata:
    """Artist, title, album, year, date, genre, cover and bitrate from mutagen; an unreadable tag yields nothing."""
    try:
        audio = mutagen.File(path)
    except Exception:  # noqa: BLE001 - the audio decoded; broken tags must not make the file bad
        return {}
    if audio is None:
        return {}
    found = {key: _clean(value) for key, value in _raw_tags(audio).items()}
    tags: Metadata = {key: value for key, value in found.items() if value}
    tags.update(_dates(tags.pop("date", None)))
    tags["cover"] = _has_cover(audio)
    bitrate = getattr(audio.info, "bitrate", 0)
    if bitrate:
        tags["bitrate"] = int(bitrate)
    return tags


def _raw_tags(audio: Any) -> dict[str, Any]:
    from mutagen.apev2 import APEv2
    from mutagen.asf import ASFTags
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    tags = audio.tags
    if tags is None:
        return {}
    if isinstance(tags, ID3):
        return _id3_tags(tags)
    if isinstance(tags, MP4Tags):
        found = {key: tags.get(atom) for key, atom in _MP4_ATOMS.items()}
        if not found["genre"] and tags.get("gnre"):
            found["genre"] = _id3_genre_name(tags["gnre"][0] - 1)
        return found
    if isinstance(tags, (ASFTags, APEv2)):
        keys = _ASF_KEYS if isinstance(tags, ASFTags) else _APE_KEYS
        return {key: tags.get(name) for key, name in keys.items()}
    return {key: next((tags.get(n) for n in names if tags.get(n)), None) for key, names in _VORBIS_KEYS.items()}


def _id3_tags(tags: Any) -> dict[str, Any]:
    found: dict[str, Any] = {key: tags.get(frame) for key, frame in _ID3_FRAMES.items()}
    if found["date"] is None and tags.get("TYER") is not None:
        found["date"] = tags.get("TYER")
    if found["genre"] is not None:
        found["genre"] = found["genre"].genres  # turns "(17)" into "Rock"
    return {key: getattr(value, "text", value) for key, value in found.items()}


def _id3_genre_name(index: int) -> str | None:
    from mutagen._constants import GENRES

    return GENRES[index] if 0 <= index < len(GENRES) else None


def _clean(value: Any) -> str | None:
    """One display string from a tag value (a list of values is joined), without NULs, cut to MAX_TAG_CHARS."""
    values = value if isinstance(value, list) else [value]
    texts = [str(item).replace("\x00", "").strip() for item in values if item is not None]
    unique = list(dict.fromkeys(text for text in texts if text))
    joined = ", ".join(unique)
    return joined[:MAX_TAG_CHARS] or None


def _dates(text: str | None) -> Metadata:
    """`year` as tagged, and `date` as a full ISO date (missing month/day taken as 01) so it parses and sorts."""
    if not text:
        return {}
    found = re.match(r"\s*(\d{4})(?:[-/.](\d{1,2})(?:[-/.](\d{1,2}))?)?", text)
    if not found or not 1000 <= int(found.group(1)) <= 2999:
        return {}
    year, month, day = int(found.group(1)), int(found.group(2) or 1), int(found.group(3) or 1)
    try:
        return {"year": year, "date": date(year, month, day).isoformat()}
    except ValueError:
        return {"year": year, "date": date(year, 1, 1).isoformat()}


def _has_cover(audio: Any) -> bool:
    tags = audio.tags
    if getattr(audio, "pictures", None):  # FLAC picture blocks
        return True
    if tags is None:
        return False
    if hasattr(tags, "getall"):  # ID3
        return bool(tags.getall("APIC"))
    keys = {str(key).lower() for key in tags.keys()}
    return bool(keys & {"covr", "metadata_block_picture", "coverart", "wm/picture", "cover art (front)"})


MUSIC_KIND = register(
    MediaKind(
        name=MUSIC,
        extensions=frozenset(EXPECTED_FORMATS),
        encoder="clap",
        fallback_encoder="basic-audio",
        read_metadata=read_music,
        extra_sorts=("length",),
        noun=("track", "tracks"),
        default_model="laion/clap-htsat-fused",
        played=True,
        tab="Music",
    )
)
