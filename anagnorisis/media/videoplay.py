"""What a browser is given for a video: a preview frame, and a file it can play.

Both live in the previews cache, keyed by content hash and made once: frames as small JPEGs
(``previews/frames/<hash>.jpg``), videos the browser cannot play as MP4 (``previews/video/<hash>.mp4``).
An MP4 or WebM whose codecs every browser decodes is served in place from its library root. Anything else is
remuxed (streams copied into MP4, near-instant, lossless) when its codecs fit MP4 and the browser, else
transcoded (H.264 + AAC) with PyAV's bundled FFmpeg; only the streams that need it are re-encoded.
"""
from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from PIL import Image

from anagnorisis.kinds import avtools
from anagnorisis.kinds.probing import read_head, sniff

log = logging.getLogger(__name__)

FRAME_PIXELS = 320  # longest side of a grid preview frame: as sharp as the image thumbnails beside it
FRAME_JPEG_QUALITY = 82
# Codecs Chromium, Firefox and Safari-class browsers decode, per container they accept (SPEC §5: MP4 and WebM
# with H.264, VP9 or AV1). QuickTime .mov is MP4's sibling but not every browser takes it: it is remuxed.
BROWSER_VIDEO = {"mp4": frozenset({"h264", "av1", "vp9"}), "webm": frozenset({"vp8", "vp9", "av1"})}
BROWSER_AUDIO = {"mp4": frozenset({"aac", "mp3", "opus", "flac"}), "webm": frozenset({"opus", "vorbis"})}
DIRECT_EXTENSIONS = {".mp4": "mp4", ".m4v": "mp4", ".webm": "webm"}
# What an MP4 made by remuxing may carry as it is (the browser decodes it there too).
MP4_COPY_VIDEO = BROWSER_VIDEO["mp4"]
MP4_COPY_AUDIO = BROWSER_AUDIO["mp4"]
H264_PRESET = "veryfast"  # x264 speed/size trade-off: about real time for 1080p on 2 cores
H264_CRF = "23"  # x264's default quality: visually close to the source at a modest size
AAC_BITRATE = 160_000  # bits/s: transparent for stereo AAC
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)  # sample rates AAC-LC encodes
PROGRESS_EVERY_SECONDS = 0.5  # of media time between two progress reports

Progress = Callable[[float, float], None]  # (seconds done, seconds in all; 0 when unknown)

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class VideoError(RuntimeError):
    """The video cannot be shown or made playable; the message says why, in words a person can act on."""


@dataclass(frozen=True)
class Plan:
    """How a video reaches the browser: 'direct' (as it is), 'remux' (copy streams into MP4), 'transcode'."""

    action: str
    container: str
    video_codec: str
    audio_codec: str | None
    copy_video: bool = True
    copy_audio: bool = True

    def describe(self) -> str:
        sound = f" + {self.audio_codec}" if self.audio_codec else ""
        source = f"{self.container} ({self.video_codec}{sound})"
        if self.action == "direct":
            return f"{source} plays directly"
        if self.action == "remux":
            return f"{source} is remuxed into MP4 for the browser"
        video = "video copied" if self.copy_video else "video transcoded to H.264"
        audio = "" if not self.audio_codec else ", audio copied" if self.copy_audio else ", audio transcoded to AAC"
        return f"{source}: {video}{audio} into MP4 for the browser"


def _lock_for(key: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


# ---------------------------------------------------------------- preview frames


def frame_path(previews_dir: Path, content_hash: str) -> Path:
    return Path(previews_dir) / "frames" / f"{content_hash}.jpg"


def ensure_frame(previews_dir: Path, record: Mapping[str, Any]) -> Path | None:
    """The cached preview frame of a video (from its middle), made now if missing; None if it does not decode."""
    target = frame_path(previews_dir, str(record["content_hash"]))
    if target.exists():
        return target
    with _lock_for("frame:" + str(record["content_hash"])):
        if target.exists():
            return target
        try:
            picture = middle_frame(Path(str(record["path"])))
        except Exception as error:  # noqa: BLE001 - demuxers and decoders raise anything on hostile input
            log.warning("no preview frame for %s: %s", record["path"], error)
            return None
        picture.thumbnail((FRAME_PIXELS, FRAME_PIXELS))
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        picture.convert("RGB").save(partial, "JPEG", quality=FRAME_JPEG_QUALITY)
        os.replace(partial, target)
        return target


def middle_frame(path: Path) -> Image.Image:
    """The frame halfway through the video (the first one for a video that cannot seek)."""
    from anagnorisis.embed.video import video_frames

    frames = video_frames(str(path), 1)
    if not frames:
        raise ValueError("no video frame could be decoded")
    return frames[0]


# ---------------------------------------------------------------- what the browser can play


def plan_playback(path: Path) -> Plan:
    """Read the container and its first video and audio streams and decide how the browser gets them."""
    content = sniff(read_head(path))
    family = content.format if content is not None else "unknown"
    try:
        with avtools.open_container(path) as container:
            video = _first_video(container)
            audio = container.streams.audio[0] if container.streams.audio else None
            video_codec = avtools.codec_name(video)
            audio_codec = avtools.codec_name(audio) if audio is not None else None
    except VideoError:
        raise
    except Exception as error:  # noqa: BLE001 - demuxers raise anything on hostile input
        raise VideoError(f"cannot read {path.name}: {error}") from error
    direct = DIRECT_EXTENSIONS.get(path.suffix.lower())
    if direct is not None and family == direct and _browser_plays(direct, video_codec, audio_codec):
        return Plan("direct", family, video_codec, audio_codec)
    copy_video = video_codec in MP4_COPY_VIDEO
    copy_audio = audio_codec is None or audio_codec in MP4_COPY_AUDIO
    action = "remux" if copy_video and copy_audio else "transcode"
    return Plan(action, family, video_codec, audio_codec, copy_video, copy_audio)


def _browser_plays(container: str, video_codec: str, audio_codec: str | None) -> bool:
    return video_codec in BROWSER_VIDEO[container] and (audio_codec is None or audio_codec in BROWSER_AUDIO[container])


def _first_video(container: Any) -> Any:
    streams = avtools.real_video_streams(container)
    if not streams:
        raise VideoError("no video stream")
    return streams[0]


def cached_video_path(previews_dir: Path, content_hash: str) -> Path:
    return Path(previews_dir) / "video" / f"{content_hash}.mp4"


def is_prepared(previews_dir: Path, record: Mapping[str, Any]) -> bool:
    return cached_video_path(previews_dir, str(record["content_hash"])).exists()


def playable_path(record: Mapping[str, Any], previews_dir: Path, progress: Progress | None = None, *,
                  force: bool = False) -> Path:
    """The file the browser should load: the original when it plays as it is, else the cached MP4 (made now).

    ``force`` makes the MP4 even for a file that should play directly (the browser failed on it). VideoError
    when the video cannot be read or converted.
    """
    source = Path(str(record["path"]))
    target = cached_video_path(previews_dir, str(record["content_hash"]))
    if target.exists():
        return target
    plan = plan_playback(source)
    if plan.action == "direct" and not force:
        return source
    if force and plan.action == "direct":
        plan = Plan("transcode", plan.container, plan.video_codec, plan.audio_codec, False, False)
    with _lock_for("video:" + str(record["content_hash"])):
        if target.exists():
            return target
        convert(source, target, plan, progress)
    log.info("%s: %s", source, plan.describe())
    return target


def url_safe_path(previews_dir: Path, record: Mapping[str, Any], path: Path) -> Path:
    """path itself when its name is valid UTF-8 (a URL can carry it), else a link to it in the cache."""
    try:
        os.fspath(path).encode("utf-8")
        return path
    except UnicodeEncodeError:  # os.fsdecode kept the name's undecodable bytes as surrogates
        pass
    suffix = path.suffix.encode("utf-8", "replace").decode("ascii", "ignore") or ".video"
    link = Path(previews_dir) / "video" / f"{record['content_hash']}{suffix}"
    if not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.fsencode(path), os.fsencode(link))
    return link


def needs_preparing(record: Mapping[str, Any], previews_dir: Path) -> bool:
    """True when playing this video first takes a remux or transcode (not done yet)."""
    if cached_video_path(previews_dir, str(record["content_hash"])).exists():
        return False
    return plan_playback(Path(str(record["path"]))).action != "direct"


# ---------------------------------------------------------------- remux and transcode


def convert(source: Path, target: Path, plan: Plan, progress: Progress | None = None) -> Path:
    """Write target (an MP4) from source as the plan says, atomically: a partial file never has the final name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".partial.mp4")
    os.close(handle)
    partial = Path(partial_name)
    try:
        _write_mp4(source, partial, plan, progress or (lambda done, total: None))
        os.replace(partial, target)
    except VideoError:
        raise
    except Exception as error:  # noqa: BLE001 - decoders and encoders raise anything on hostile input
        raise VideoError(f"cannot convert {source.name} for the browser: {error}") from error
    finally:
        partial.unlink(missing_ok=True)
    return target


def _write_mp4(source: Path, target: Path, plan: Plan, progress: Progress) -> None:
    with avtools.open_container(source) as inp, av.open(str(target), "w", format="mp4",
                                                         options={"movflags": "+faststart"}) as out:
        video_in = _first_video(inp)
        audio_in = inp.streams.audio[0] if inp.streams.audio and plan.audio_codec else None
        total = avtools.container_seconds(inp, video_in) or 0.0
        video = _Track(video_in, out, copy=plan.copy_video, kind="video")
        audio = _Track(audio_in, out, copy=plan.copy_audio, kind="audio") if audio_in is not None else None
        reported = -PROGRESS_EVERY_SECONDS
        produced = 0
        for packet in inp.demux([s for s in (video_in, audio_in) if s is not None]):
            track = video if packet.stream is video_in else audio
            assert track is not None
            produced += track.take(packet)
            if packet.pts is not None and packet.time_base is not None:
                now = float(packet.pts * packet.time_base)
                if now - reported >= PROGRESS_EVERY_SECONDS:
                    reported = now
                    progress(min(now, total) if total else now, total)
        produced += video.finish() + (audio.finish() if audio is not None else 0)
        if video.written == 0:
            raise VideoError(f"no video frame of {source.name} could be decoded")
    progress(total, total)


class _Track:
    """One stream on its way into the MP4: packets copied as they are, or decoded and encoded anew."""

    def __init__(self, stream: Any, out: Any, *, copy: bool, kind: str) -> None:
        self.source, self.out, self.copy, self.kind = stream, out, copy, kind
        self.written = 0
        if copy:
            self.stream = out.add_stream_from_template(stream)
        elif kind == "video":
            self.stream = self._h264_stream(stream, out)
        else:
            self.stream, self.resampler = self._aac_stream(stream, out)

    @staticmethod
    def _h264_stream(stream: Any, out: Any) -> Any:
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        encoder = out.add_stream("libx264", rate=rate, options={"preset": H264_PRESET, "crf": H264_CRF})
        context = stream.codec_context
        encoder.width = max(2, (context.width or 2) // 2 * 2)  # 4:2:0 needs even sides
        encoder.height = max(2, (context.height or 2) // 2 * 2)
        encoder.pix_fmt = "yuv420p"
        encoder.codec_context.time_base = stream.time_base or Fraction(1, int(rate))
        return encoder

    @staticmethod
    def _aac_stream(stream: Any, out: Any) -> tuple[Any, Any]:
        rate = stream.rate if stream.rate in AAC_RATES else 48000
        layout = "mono" if (stream.codec_context.channels or 2) == 1 else "stereo"
        encoder = out.add_stream("aac", rate=rate, layout=layout)
        encoder.bit_rate = AAC_BITRATE
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate,
                                      frame_size=encoder.codec_context.frame_size or 1024)
        return encoder, resampler

    def take(self, packet: Any) -> int:
        """Pass one demuxed packet on; returns the number of packets written."""
        if self.copy:
            if packet.dts is None:  # the demuxer's flush packet
                return 0
            packet.stream = self.stream
            self.out.mux(packet)
            self.written += 1
            return 1
        count = 0
        for frame in packet.decode():
            count += self._encode(frame)
        return count

    def _encode(self, frame: Any) -> int:
        if self.kind == "video":
            frame = frame.reformat(width=self.stream.width, height=self.stream.height, format="yuv420p")
            frame.pict_type = av.video.frame.PictureType.NONE
            return self._mux(self.stream.encode(frame))
        frame.pts = None  # the resampler restamps the audio from zero
        return sum(self._mux(self.stream.encode(chunk)) for chunk in self.resampler.resample(frame))

    def _mux(self, packets: list[Any]) -> int:
        self.out.mux(packets)
        self.written += len(packets)
        return len(packets)

    def finish(self) -> int:
        if self.copy:
            return 0
        count = 0
        if self.kind == "audio":
            count += sum(self._mux(self.stream.encode(chunk)) for chunk in self.resampler.resample(None))
        return count + self._mux(self.stream.encode(None))
