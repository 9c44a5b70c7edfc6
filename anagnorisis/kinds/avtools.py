"""PyAV helpers shared by the music and video readers: open safely, decode a little, check that the end is there."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import av
import av.container
import av.stream

from anagnorisis.kinds.probing import Content, short_reason
from anagnorisis.kinds.registry import MediaError

# The end of a file is proved present by demuxing (not decoding) its last seconds.
TAIL_SECONDS = 1.0
# Missing time at the end that still counts as complete: muxers round, encoders trim padding, and a last
# packet may carry no duration (one frame: 0.04 s at 25 fps, a quarter second only below 4 fps).
TAIL_TOLERANCE_SECONDS = 0.25
TAIL_TOLERANCE_SHARE = 0.02  # ... or this share of the whole duration, whichever is more
MAX_TAIL_PACKETS = 20_000  # give up checking (and accept) after this many packets: a seek landed far back
MAX_HEAD_PACKETS = 500  # packets demuxed while looking for the first decodable frame before calling it damaged
# Containers whose length is written in a header, so a shorter body means the file was cut off.
# (Raw streams such as ADTS or MP3 only estimate their length from the bitrate, so they are not checked here.)
LENGTH_IN_HEADER = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "asf", "avi", "flv", "flac", "wav"})
# FFmpeg demuxers that read still images; such content is an image, whatever its name says.
IMAGE_DEMUXERS_SUFFIX = "_pipe"
IMAGE_DEMUXERS = frozenset({"image2", "gif", "apng", "webp_pipe", "png_pipe", "jpeg_pipe"})
MAX_TOP_LEVEL_BOXES = 10_000  # real files have a handful; a hostile one must not keep the reader busy
ISO_MEDIA_FORMATS = frozenset({"mp4", "mov", "m4a"})  # probing formats built of ISO boxes, which iso_damage reads


def open_container(path: Path) -> av.container.InputContainer:
    """Open a media file for reading through FFmpeg's file protocol only.

    The "file:" prefix stops a name like "concat:x" from being read as a protocol, and the whitelist stops a
    playlist disguised as media from making FFmpeg fetch anything.
    """
    url = "file:" + os.fsdecode(os.path.abspath(path))
    return av.open(url, metadata_errors="replace", options={"protocol_whitelist": "file"})


def damage_reason(path: Path, content: Content | None, error: BaseException, noun: str) -> str:
    """The reason for a file FFmpeg could not read: precise for cut-off MP4s, else FFmpeg's own words."""
    if content is not None and content.format in ISO_MEDIA_FORMATS:
        try:
            found = iso_damage(path)
        except OSError:
            found = None
        if found:
            return found if found.startswith("truncated") else f"damaged {noun}: {found}"
    return f"damaged {noun}: {short_reason(error)}"


def iso_damage(path: Path) -> str | None:
    """Why an MP4/MOV/M4A file is unreadable, from its top-level boxes: cut off, or without its index."""
    size = os.path.getsize(path)
    offset, names = 0, set()
    with open(path, "rb") as file:
        while offset + 8 <= size and len(names) < MAX_TOP_LEVEL_BOXES:
            file.seek(offset)
            header = file.read(16)
            box_size, name = int.from_bytes(header[:4], "big"), header[4:8]
            if box_size == 1 and len(header) == 16:
                box_size = int.from_bytes(header[8:16], "big")  # a 64-bit size follows the name
            elif box_size == 0:
                box_size = size - offset  # "to the end of the file"
            if box_size < 8:
                return f"invalid {name.decode('latin-1')!r} box"
            if offset + box_size > size:
                return f"truncated: {size:,} of the {offset + box_size:,} bytes its boxes need"
            names.add((offset, name))
            offset += box_size
    return None if any(name == b"moov" for _, name in names) else "the index ('moov' box) is missing"


def is_still_image_container(container: av.container.InputContainer) -> bool:
    name = container.format.name
    return name in IMAGE_DEMUXERS or name.endswith(IMAGE_DEMUXERS_SUFFIX)


def real_video_streams(container: av.container.InputContainer) -> list[Any]:
    """Video streams that are not cover art (an attached picture is a 'video' stream to FFmpeg)."""
    attached = av.stream.Disposition.attached_pic
    return [stream for stream in container.streams.video if not stream.disposition & attached]


def require_a_decoder(stream: Any) -> None:
    """FFmpeg leaves the codec context empty when it has no decoder for the stream's codec."""
    if stream.codec_context is None:
        raise MediaError(f"unsupported {stream.type} codec")


def codec_name(stream: Any) -> str:
    """The codec's own name ("h264", "mp3"), not the decoder's ("mp3float", "libdav1d")."""
    codec = stream.codec_context.codec
    return str(getattr(codec, "canonical_name", None) or codec.name)


def container_seconds(container: av.container.InputContainer, stream: Any) -> float | None:
    """Duration from the container, else from the stream; None when neither knows."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    return None


def _packets(container: av.container.InputContainer, stream: Any, limit: int) -> Iterator[Any]:
    for count, packet in enumerate(container.demux(stream)):
        if count >= limit:
            return
        yield packet


def decode_first_frames(container: av.container.InputContainer, stream: Any, min_samples: int = 1) -> list[Any]:
    """Decode from the start until a video frame or `min_samples` audio samples come out; damaged → MediaError."""
    stream.codec_context.thread_count = 1  # one frame does not need threads; the scanner parallelises files
    frames: list[Any] = []
    samples = 0
    for packet in _packets(container, stream, MAX_HEAD_PACKETS):
        for frame in packet.decode():  # a decoding error here is damage: players would stumble on it too
            frames.append(frame)
            samples += getattr(frame, "samples", 1) or 1
            if samples >= min_samples:
                return frames
    if not frames:
        raise MediaError(f"no {stream.type} could be decoded")
    return frames


def check_that_the_end_is_there(container: av.container.InputContainer, seconds: float | None) -> None:
    """Raise "truncated" when the packets stop well before the length the container's header states."""
    if not seconds or container.format.name not in LENGTH_IN_HEADER:
        return
    start = (container.start_time or 0) / av.time_base
    try:
        container.seek(int((start + max(0.0, seconds - TAIL_SECONDS)) * av.time_base), backward=True, any_frame=True)
    except av.error.FFmpegError:
        pass  # no index to seek with: demux on from where we are, within the packet budget
    end = _last_packet_end(container)
    if end is None:
        raise MediaError(f"truncated: no data near the stated end ({seconds:.1f} s)")
    if end - start < seconds - max(TAIL_TOLERANCE_SECONDS, TAIL_TOLERANCE_SHARE * seconds):
        raise MediaError(f"truncated: data ends at {end - start:.1f} s of the stated {seconds:.1f} s")


def _last_packet_end(container: av.container.InputContainer) -> float | None:
    """The latest time any packet reaches, demuxing from the current position to the end (or the budget)."""
    latest: float | None = None
    try:
        for count, packet in enumerate(container.demux()):
            if count >= MAX_TAIL_PACKETS:
                return float("inf")  # too far to check cheaply; accept
            if packet.pts is None or packet.time_base is None:
                continue
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
            latest = end if latest is None else max(latest, end)
    except av.error.FFmpegError:
        pass  # a read error at the cut is what we are looking for: judge by what came before it
    return latest
