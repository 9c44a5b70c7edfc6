"""Videos: PyAV reads the container, decodes the first frame and checks that the end of the file is there."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from anagnorisis.kinds import avtools
from anagnorisis.kinds.probing import (
    VIDEOS,
    Content,
    extension_warning,
    read_head,
    refuse_other_kinds,
    sniff_file,
)
from anagnorisis.kinds.registry import MediaError, MediaKind, Metadata, Probe, register

# The container families (probing.Content.format) each extension may hold without a warning.
# MP4 and QuickTime are one family (same boxes, and browsers play both), so they never warn about each other.
EXPECTED_FORMATS: dict[str, frozenset[str]] = {
    ".mp4": frozenset({"mp4", "mov", "m4a"}),
    ".m4v": frozenset({"mp4", "mov", "m4a"}),
    ".mov": frozenset({"mp4", "mov", "m4a"}),
    ".mkv": frozenset({"matroska", "webm"}),
    ".webm": frozenset({"webm"}),
    ".avi": frozenset({"avi"}),
}
# Dates some cameras and muxers write when they know none; not worth showing or sorting by.
_PLACEHOLDER_YEARS = (1904, 1970)


def read_video(path: Path) -> Probe:
    """Duration, size, codec, frame rate and audio presence of a video, after decoding its first frame."""
    head = read_head(path)
    content = sniff_file(path, head)
    refuse_other_kinds(content, VIDEOS, "a video")
    try:
        with avtools.open_container(path) as container:
            metadata = _probe_container(container, content)
    except MediaError:
        raise
    except Exception as error:  # noqa: BLE001 - demuxers and decoders raise anything on hostile input
        raise MediaError(avtools.damage_reason(path, content, error, "video")) from error
    return Probe(metadata, extension_warning(content, path, EXPECTED_FORMATS))


def _probe_container(container: Any, content: Content | None) -> Metadata:
    if avtools.is_still_image_container(container):
        raise MediaError("content is an image, not a video")
    streams = avtools.real_video_streams(container)
    if not streams:
        raise MediaError("content is audio only, not a video" if container.streams.audio else "no video stream")
    stream = streams[0]
    avtools.require_a_decoder(stream)
    first = avtools.decode_first_frames(container, stream)[0]
    seconds = avtools.container_seconds(container, stream)
    metadata = _describe(container, stream, first, seconds, content)
    avtools.check_that_the_end_is_there(container, seconds)
    return metadata


def _describe(container: Any, stream: Any, first: Any, seconds: float | None, content: Content | None) -> Metadata:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    metadata: Metadata = {
        "width": int(stream.codec_context.width or first.width),
        "height": int(stream.codec_context.height or first.height),
        "codec": avtools.codec_name(stream),
        "fps": round(float(rate), 3) if rate else None,
        "has_audio": bool(container.streams.audio),
        "format": _container_format(container, content),
    }
    if seconds is not None:
        metadata["duration"] = round(seconds, 3)
    date = _creation_date(container.metadata.get("creation_time") or stream.metadata.get("creation_time"))
    if date:
        metadata["date"] = date
    return metadata


def _container_format(container: Any, content: Content | None) -> str:
    """A short name ("mp4", "webm"): the sniffed family when known, else FFmpeg's first name for the demuxer."""
    if content is not None and VIDEOS in content.kinds:
        return "mp4" if content.format == "m4a" else content.format
    return str(container.format.name).split(",")[0]


def _creation_date(value: Any) -> str | None:
    """ISO-8601 from a container's creation_time tag (e.g. 2023-05-01T10:00:00.000000Z), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.year in _PLACEHOLDER_YEARS:
        return None
    return parsed.replace(microsecond=0).isoformat()


VIDEOS_KIND = register(
    MediaKind(
        name=VIDEOS,
        extensions=frozenset(EXPECTED_FORMATS),
        encoder="siglip-frames",
        fallback_encoder="basic-video",
        read_metadata=read_video,
        extra_sorts=("length", "resolution", "proportion"),
        noun=("video", "videos"),
        default_model="google/siglip-base-patch16-224",
        played=True,
        tab="Videos",
    )
)
