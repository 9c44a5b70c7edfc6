"""Real, small media files for tests: good ones of every format, bad ones of every kind of badness, odd names.

Every writer encodes in memory and then writes the bytes itself, so a path may be a `str`, a `Path` or
`bytes` (names that are not valid UTF-8). Everything is deterministic: fixed seeds, fixed content.
"""
from __future__ import annotations

import io
import os
import random
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Union

import av
import mutagen
import numpy as np
import soundfile
from mutagen.flac import Picture
from PIL import Image

PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]
Color = tuple[int, int, int]

SEED = 20240601  # one seed for every random byte these helpers write

# The smallest valid PNG we can make, used as embedded cover art.
_COVER_SIZE = (8, 8)


@dataclass(frozen=True)
class GoodFile:
    """A valid file and what its metadata should say."""

    path: Path
    kind: str
    expected: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BadFile:
    """A file every reader must refuse: `kind` is the kind its extension claims."""

    path: Path
    kind: str
    badness: str
    note: str = ""


# ---------------------------------------------------------------- paths


def as_path(path: PathArg) -> Path:
    """A `Path` for any path argument, bytes included (undecodable bytes become surrogates)."""
    return Path(os.fsdecode(os.fspath(path)))


def _extension(path: PathArg) -> str:
    return as_path(path).suffix.lower()


def _write_bytes(path: PathArg, data: bytes) -> Path:
    target = as_path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(os.fsencode(target), "wb") as file:
        file.write(data)
    return target


# ---------------------------------------------------------------- images


def _image(color: Color, size: tuple[int, int]) -> Image.Image:
    """A solid colour with a darker left-to-right ramp, so the picture is not flat."""
    width, height = size
    ramp = np.linspace(0.6, 1.0, width, dtype=np.float32)[None, :, None]
    pixels = np.broadcast_to(np.array(color, dtype=np.float32), (height, width, 3)) * ramp
    return Image.fromarray(pixels.round().astype(np.uint8), "RGB")


def _exif_bytes(exif_date: datetime | str | None) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Anagnorisis"  # Make
    exif[0x0110] = "Test Camera"  # Model
    exif[0x0112] = 1  # Orientation
    if exif_date is not None:
        stamp = exif_date.strftime("%Y:%m:%d %H:%M:%S") if isinstance(exif_date, datetime) else exif_date
        exif[0x0132] = stamp  # DateTime
        exif.get_ifd(0x8769)[0x9003] = stamp  # DateTimeOriginal, in the Exif IFD
    return exif.tobytes()


def _save_image(path: PathArg, image: Image.Image, image_format: str, **options: Any) -> Path:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return _write_bytes(path, buffer.getvalue())


def write_jpeg(
    path: PathArg, color: Color = (200, 60, 40), size: tuple[int, int] = (64, 48),
    exif_date: datetime | str | None = None,
) -> Path:
    """A baseline JPEG with Make/Model EXIF, and DateTimeOriginal when `exif_date` is given."""
    return _save_image(path, _image(color, size), "JPEG", quality=90, exif=_exif_bytes(exif_date))


def write_png(path: PathArg, color: Color = (40, 160, 90), size: tuple[int, int] = (64, 48)) -> Path:
    return _save_image(path, _image(color, size), "PNG")


def write_webp(path: PathArg, color: Color = (50, 80, 200), size: tuple[int, int] = (64, 48)) -> Path:
    return _save_image(path, _image(color, size), "WEBP", quality=80)


def write_bmp(path: PathArg, color: Color = (120, 120, 20), size: tuple[int, int] = (64, 48)) -> Path:
    return _save_image(path, _image(color, size), "BMP")


def write_tiff(path: PathArg, color: Color = (20, 120, 120), size: tuple[int, int] = (64, 48)) -> Path:
    return _save_image(path, _image(color, size), "TIFF")


def write_gif(
    path: PathArg, colors: tuple[Color, ...] = ((255, 0, 0), (0, 255, 0), (0, 0, 255)),
    size: tuple[int, int] = (32, 24), color: Color | None = None,
) -> Path:
    """An animated GIF, one frame per colour; `color` (or a single colour) makes a still GIF.

    Pillow merges identical neighbouring frames, so give distinct colours for distinct frames.
    """
    colors = (color,) if color is not None else colors
    frames = [_image(color, size).convert("P", palette=Image.Palette.ADAPTIVE) for color in colors]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=len(frames) > 1, append_images=frames[1:], duration=100, loop=0)
    return _write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------- audio


def _tone(freq: float, seconds: float, sr: int, channels: int = 1) -> np.ndarray:
    """A sine at `freq` Hz, half amplitude, shape (samples, channels)."""
    t = np.arange(int(round(seconds * sr)), dtype=np.float64) / sr
    wave = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.repeat(wave[:, None], channels, axis=1).astype(np.float32)


def _sound_bytes(freq: float, seconds: float, sr: int, audio_format: str, subtype: str | None, channels: int) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, _tone(freq, seconds, sr, channels), sr, format=audio_format, subtype=subtype)
    return buffer.getvalue()


def _cover_png() -> bytes:
    buffer = io.BytesIO()
    _image((250, 200, 0), _COVER_SIZE).save(buffer, format="PNG")
    return buffer.getvalue()


def set_tags(path: PathArg, cover: bool = False, **tags: str) -> Path:
    """Write tags (artist, title, album, date, genre) into an existing MP3/FLAC/OGG/Opus/M4A/WAV file in place.

    Used by the writers below and by tests that change a file's content by rewriting its tags.
    """
    target = as_path(path)
    audio = mutagen.File(target)
    if audio is None:
        raise ValueError(f"mutagen cannot tag {target}")
    if audio.tags is None:
        audio.add_tags()
    _apply_tags(audio, tags, cover)
    audio.save()
    return target


def _apply_tags(audio: Any, tags: dict[str, str], cover: bool) -> None:
    from mutagen.id3 import APIC, ID3, TALB, TCON, TDRC, TIT2, TPE1
    from mutagen.mp4 import MP4, MP4Cover

    if isinstance(audio.tags, ID3):
        frames = {"artist": TPE1, "title": TIT2, "album": TALB, "date": TDRC, "genre": TCON}
        for key, value in tags.items():
            audio.tags.setall(frames[key].__name__, [frames[key](encoding=3, text=[value])])
        if cover:
            audio.tags.setall("APIC", [APIC(encoding=3, mime="image/png", type=3, desc="cover", data=_cover_png())])
    elif isinstance(audio, MP4):
        atoms = {"artist": "\xa9ART", "title": "\xa9nam", "album": "\xa9alb", "date": "\xa9day", "genre": "\xa9gen"}
        for key, value in tags.items():
            audio.tags[atoms[key]] = [value]
        if cover:
            audio.tags["covr"] = [MP4Cover(_cover_png(), imageformat=MP4Cover.FORMAT_PNG)]
    else:  # Vorbis comments: FLAC, Ogg Vorbis, Ogg Opus
        for key, value in tags.items():
            audio.tags[key] = [value]
        if cover:
            _add_vorbis_cover(audio)


def _add_vorbis_cover(audio: Any) -> None:
    import base64

    picture = Picture()
    picture.type, picture.mime, picture.desc = 3, "image/png", "cover"
    picture.width, picture.height, picture.depth = _COVER_SIZE[0], _COVER_SIZE[1], 24
    picture.data = _cover_png()
    if hasattr(audio, "add_picture"):  # FLAC keeps pictures in their own metadata block
        audio.add_picture(picture)
    else:
        audio.tags["metadata_block_picture"] = [base64.b64encode(picture.write()).decode("ascii")]


def _write_tagged(path: PathArg, data: bytes, tags: dict[str, str] | None, cover: bool) -> Path:
    target = _write_bytes(path, data)
    if tags or cover:
        set_tags(target, cover=cover, **(tags or {}))
    return target


def write_wav(
    path: PathArg, freq: float = 440, seconds: float = 1.0, sr: int = 22050, channels: int = 1,
    tags: dict[str, str] | None = None, cover: bool = False,
) -> Path:
    """16-bit PCM WAV; tags, when given, go into an ID3 chunk (as mutagen and many players write them)."""
    return _write_tagged(path, _sound_bytes(freq, seconds, sr, "WAV", "PCM_16", channels), tags, cover)


def write_flac(
    path: PathArg, freq: float = 440, seconds: float = 1.0, sr: int = 22050, channels: int = 1,
    tags: dict[str, str] | None = None, cover: bool = False,
) -> Path:
    return _write_tagged(path, _sound_bytes(freq, seconds, sr, "FLAC", "PCM_16", channels), tags, cover)


def write_ogg(
    path: PathArg, freq: float = 440, seconds: float = 1.0, sr: int = 22050, channels: int = 1,
    tags: dict[str, str] | None = None, cover: bool = False,
) -> Path:
    """Ogg Vorbis."""
    return _write_tagged(path, _sound_bytes(freq, seconds, sr, "OGG", "VORBIS", channels), tags, cover)


def write_opus(
    path: PathArg, freq: float = 440, seconds: float = 1.0, channels: int = 1,
    tags: dict[str, str] | None = None, cover: bool = False,
) -> Path:
    """Ogg Opus (always 48 kHz, the only rate Opus has)."""
    return _write_tagged(path, _sound_bytes(freq, seconds, 48000, "OGG", "OPUS", channels), tags, cover)


def write_mp3(
    path: PathArg, freq: float = 440, seconds: float = 1.0, sr: int = 22050, channels: int = 1,
    tags: dict[str, str] | None = None, cover: bool = False,
) -> Path:
    """MPEG layer III via libsndfile's LAME, always with an ID3v2 tag (so mutagen can rewrite it in place)."""
    data = _sound_bytes(freq, seconds, sr, "MP3", "MPEG_LAYER_III", channels)
    tags = {"title": "Untitled", **(tags or {})}
    return _write_tagged(path, data, tags, cover)


def _add_audio_stream(container: Any, codec: str, sr: int, channels: int) -> Any:
    return container.add_stream(codec, rate=sr, layout="mono" if channels == 1 else "stereo")


def _encode_audio(container: Any, stream: Any, freq: float, seconds: float) -> None:
    sr, channels = stream.rate, stream.channels
    layout = "mono" if channels == 1 else "stereo"
    samples = _tone(freq, seconds, sr, channels).T.copy()  # planar: (channels, samples)
    chunk = 1024
    for start in range(0, samples.shape[1], chunk):
        frame = av.AudioFrame.from_ndarray(samples[:, start : start + chunk], format="fltp", layout=layout)
        frame.sample_rate, frame.pts, frame.time_base = sr, start, Fraction(1, sr)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def write_m4a(
    path: PathArg, freq: float = 440, seconds: float = 1.0, sr: int = 22050, channels: int = 1,
    tags: dict[str, str] | None = None, cover: bool = False,
) -> Path:
    """AAC in an MPEG-4 audio container (M4A brand), encoded by PyAV's FFmpeg."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="ipod") as container:
        _encode_audio(container, _add_audio_stream(container, "aac", sr, channels), freq, seconds)
    return _write_tagged(path, buffer.getvalue(), tags, cover)


def write_aac(path: PathArg, freq: float = 440, seconds: float = 1.0, sr: int = 22050) -> Path:
    """Raw AAC in ADTS frames (.aac)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="adts") as container:
        _encode_audio(container, _add_audio_stream(container, "aac", sr, 1), freq, seconds)
    return _write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------- text


def write_text(path: PathArg, text: str, encoding: str = "utf-8") -> Path:
    """`text` encoded as given ("utf-16" and "utf-8-sig" write a BOM, as Python's codecs do)."""
    return _write_bytes(path, text.encode(encoding))


# ---------------------------------------------------------------- video

# The usual codec of each container, for `write_video(codec=None)`.
_VIDEO_CONTAINERS: dict[str, tuple[str, str]] = {
    ".mp4": ("mp4", "libx264"),
    ".m4v": ("mp4", "libx264"),
    ".mov": ("mov", "libx264"),
    ".mkv": ("matroska", "libx264"),
    ".webm": ("webm", "libvpx-vp9"),
    ".avi": ("avi", "mpeg4"),
}
# Encoder options that keep tiny test videos fast to write (seconds matter in a test suite).
_FAST_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "ultrafast"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8"},
    "libvpx": {"deadline": "realtime", "cpu-used": "8"},
}


def _video_frame(index: int, frames: int, size: tuple[int, int], color: Color) -> np.ndarray:
    """A colour with a bright bar sweeping left to right, so every frame differs."""
    width, height = size
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = color
    bar = int(index * max(1, width - 8) / max(1, frames - 1)) if frames > 1 else 0
    pixels[:, bar : bar + 8] = 255
    return pixels


def write_video(
    path: PathArg, frames: int = 20, size: tuple[int, int] = (64, 48), codec: str | None = None, fps: int = 10,
    color: Color = (30, 90, 160), audio: bool = False, faststart: bool = False,
) -> Path:
    """A short video; the container follows the extension (.mp4 .m4v .mov .mkv .webm .avi).

    `codec=None` takes the container's usual codec (H.264; VP9 for WebM; MPEG-4 part 2 for AVI).
    `audio=True` adds a 440 Hz track as long as the video (AAC, or Opus in WebM).
    `faststart=True` (MP4/MOV) puts the index before the media data, as files made for streaming have it.
    """
    container_format, default_codec = _VIDEO_CONTAINERS[_extension(path)]
    codec = codec or default_codec
    if faststart:  # FFmpeg moves the index to the front in a second pass over a real file
        with tempfile.TemporaryDirectory() as folder:
            scratch = os.path.join(folder, "video" + _extension(path))
            _encode_video(scratch, container_format, codec, frames, size, fps, color, audio, {"movflags": "faststart"})
            return _write_bytes(path, Path(scratch).read_bytes())
    buffer = io.BytesIO()
    _encode_video(buffer, container_format, codec, frames, size, fps, color, audio, {})
    return _write_bytes(path, buffer.getvalue())


def _encode_video(
    target: Any, container_format: str, codec: str, frames: int, size: tuple[int, int], fps: int, color: Color,
    audio: bool, options: dict[str, str],
) -> None:
    with av.open(target, "w", format=container_format, options=options) as container:
        stream: Any = container.add_stream(codec, rate=fps, options=_FAST_OPTIONS.get(codec, {}))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        sound_codec = "libopus" if container_format == "webm" else "aac"
        sound = _add_audio_stream(container, sound_codec, 48000, 1) if audio else None
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(_video_frame(index, frames, size, color), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if sound is not None:
            _encode_audio(container, sound, 440, frames / fps)


# ---------------------------------------------------------------- a whole good library


def make_good_files(folder: PathArg) -> list[GoodFile]:
    """Valid files of every supported format (in images/, music/, text/, videos/), with the metadata each yields."""
    root = as_path(folder)
    return [*_good_images(root / "images"), *_good_music(root / "music"), *_good_texts(root / "text"),
            *_good_videos(root / "videos")]


def _good_images(folder: Path) -> list[GoodFile]:
    def image(path: Path, fmt: str, size: tuple[int, int], **expected: Any) -> GoodFile:
        return GoodFile(path, "images", {"width": size[0], "height": size[1], "format": fmt, **expected})

    return [
        image(write_jpeg(folder / "photo.jpg", size=(80, 60), exif_date="2021:07:04 12:34:56"), "JPEG", (80, 60),
              date="2021-07-04T12:34:56"),
        image(write_jpeg(folder / "plain.jpeg", size=(33, 17)), "JPEG", (33, 17)),
        image(write_png(folder / "drawing.png", size=(40, 30)), "PNG", (40, 30)),
        image(write_webp(folder / "web.webp", size=(50, 20)), "WEBP", (50, 20)),
        image(write_gif(folder / "anim.gif", size=(32, 24)), "GIF", (32, 24), animated=True, frames=3),
        image(write_bmp(folder / "bitmap.bmp", size=(16, 16)), "BMP", (16, 16)),
        image(write_tiff(folder / "scan.tif", size=(24, 12)), "TIFF", (24, 12)),
        image(write_tiff(folder / "scan2.tiff", size=(12, 24)), "TIFF", (12, 24)),
    ]


_TAGS = {"artist": "Test Artist", "title": "Test Title", "album": "Test Album", "date": "2019-05-03", "genre": "Jazz"}
_TAGS_READ = {**_TAGS, "year": 2019}  # what the reader gives back


def _good_music(folder: Path) -> list[GoodFile]:
    def track(path: Path, fmt: str, seconds: float, **expected: Any) -> GoodFile:
        return GoodFile(path, "music", {"format": fmt, "duration": seconds, **expected})

    return [
        track(write_wav(folder / "tone.wav"), "wav", 1.0, sample_rate=22050, channels=1, cover=False),
        track(write_flac(folder / "tone.flac", seconds=1.5, channels=2, tags=_TAGS, cover=True), "flac", 1.5,
              sample_rate=22050, channels=2, cover=True, **_TAGS_READ),
        track(write_ogg(folder / "tone.ogg", tags=_TAGS, cover=True), "ogg", 1.0, sample_rate=22050, cover=True,
              **_TAGS_READ),
        track(write_ogg(folder / "tone.oga", seconds=0.5), "ogg", 0.5, cover=False),
        track(write_opus(folder / "tone.opus", tags=_TAGS), "opus", 1.0, sample_rate=48000, **_TAGS_READ),
        track(write_mp3(folder / "tone.mp3", seconds=2.0, tags=_TAGS, cover=True), "mp3", 2.0, sample_rate=22050,
              cover=True, **_TAGS_READ),
        track(write_m4a(folder / "tone.m4a", tags=_TAGS, cover=True), "m4a", 1.0, sample_rate=22050, cover=True,
              **_TAGS_READ),
        track(write_aac(folder / "tone.aac"), "aac", 1.0),
    ]


def _good_texts(folder: Path) -> list[GoodFile]:
    page = "<!doctype html>\n<html><head><title>A page</title></head><body><p>Hello</p></body></html>\n"
    return [
        GoodFile(write_text(folder / "notes.txt", "Shopping list\nmilk\neggs\n"), "text",
                 {"encoding": "utf-8", "lines": 3, "chars": 24, "title": "Shopping list"}),
        GoodFile(write_text(folder / "readme.md", "\n\n# A heading\n\nSome *markdown*.\n"), "text",
                 {"encoding": "utf-8", "lines": 5, "title": "A heading"}),
        GoodFile(write_text(folder / "page.html", page), "text", {"encoding": "utf-8", "title": "A page"}),
        GoodFile(write_text(folder / "bom.txt", "Mit BOM geschrieben\nÄrger\n", "utf-8-sig"), "text",
                 {"encoding": "utf-8-sig", "chars": 26, "title": "Mit BOM geschrieben"}),
        GoodFile(write_text(folder / "wide.txt", "Wide characters\nZeile zwei\n", "utf-16"), "text",
                 {"encoding": "utf-16", "lines": 2, "title": "Wide characters"}),
        GoodFile(write_text(folder / "legacy.markdown", "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e\n", "cp1252"), "text",
                 {"encoding": "cp1252", "title": "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e"}),
        GoodFile(write_text(folder / "old.htm", "<h1>\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440</h1>\n"
                            "<p>\u042d\u0442\u043e \u043f\u0440\u043e\u0432\u0435\u0440\u043a\u0430.</p>\n", "cp1251"),
                 "text", {"encoding": "cp1251", "title": "\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440"}),
    ]


def _good_videos(folder: Path) -> list[GoodFile]:
    def clip(path: Path, fmt: str, codec: str, seconds: float, **expected: Any) -> GoodFile:
        return GoodFile(path, "videos", {"format": fmt, "codec": codec, "duration": seconds, **expected})

    return [
        clip(write_video(folder / "clip.mp4", frames=20), "mp4", "h264", 2.0, width=64, height=48, has_audio=False),
        clip(write_video(folder / "clip with sound.mp4", frames=10, size=(32, 32), audio=True), "mp4", "h264", 1.0,
             width=32, height=32, has_audio=True),
        clip(write_video(folder / "clip.mkv", frames=20), "matroska", "h264", 2.0, width=64, height=48),
        clip(write_video(folder / "clip.webm", audio=True, frames=10), "webm", "vp9", 1.0, has_audio=True),
        clip(write_video(folder / "clip.mov", frames=10), "mov", "h264", 1.0),
        clip(write_video(folder / "clip.m4v", frames=10), "mp4", "h264", 1.0),
        clip(write_video(folder / "clip.avi", frames=10), "avi", "mpeg4", 1.0, width=64, height=48),
    ]


# ---------------------------------------------------------------- bad files


def _random_bytes(count: int, seed: int) -> bytes:
    return random.Random(SEED + seed).randbytes(count)


def _truncate_file(path: Path) -> Path:
    """Cut a valid file in half."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _corrupt_at(path: Path, offset: int, length: int = 4) -> Path:
    """Flip every bit of `length` bytes at `offset` (negative: from the end)."""
    data = bytearray(path.read_bytes())
    start = offset if offset >= 0 else len(data) + offset
    for index in range(start, start + length):
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _find(path: Path, marker: bytes) -> int:
    offset = path.read_bytes().find(marker)
    if offset < 0:
        raise ValueError(f"{marker!r} not found in {path}")
    return offset


def _empty_files(folder: Path) -> list[BadFile]:
    names = {"empty.jpg": "images", "empty.png": "images", "empty.mp3": "music", "empty.flac": "music",
             "empty.txt": "text", "empty.md": "text", "empty.mp4": "videos", "empty.webm": "videos"}
    return [BadFile(_write_bytes(folder / name, b""), kind, "empty", "0 bytes") for name, kind in names.items()]


def _truncated_files(folder: Path) -> list[BadFile]:
    made = [
        (write_jpeg(folder / "truncated.jpg", size=(160, 120)), "images"),
        (write_png(folder / "truncated.png", size=(160, 120)), "images"),
        (write_gif(folder / "truncated.gif", size=(64, 48)), "images"),
        (write_webp(folder / "truncated.webp", size=(160, 120)), "images"),
        (write_wav(folder / "truncated.wav"), "music"),
        (write_flac(folder / "truncated.flac", seconds=2.0), "music"),
        (write_ogg(folder / "truncated.ogg", seconds=2.0), "music"),
        (write_mp3(folder / "truncated.mp3", seconds=2.0), "music"),
        (write_m4a(folder / "truncated.m4a", seconds=2.0), "music"),
        (write_video(folder / "truncated.mp4", frames=40), "videos"),
        (write_video(folder / "truncated faststart.mp4", frames=40, faststart=True), "videos"),
        (write_video(folder / "truncated.mkv", frames=40), "videos"),
        (write_video(folder / "truncated.webm", frames=40), "videos"),
    ]
    cut = [BadFile(_truncate_file(path), kind, "truncated", "cut in half") for path, kind in made]
    wide = write_text(folder / "truncated.txt", "UTF-16 text cut inside a character\n" * 3, "utf-16")
    wide.write_bytes(wide.read_bytes()[:51])  # an odd byte count cannot be UTF-16
    return [*cut, BadFile(wide, "text", "truncated", "UTF-16 cut to an odd number of bytes")]


def _garbage_files(folder: Path) -> list[BadFile]:
    names = {"garbage.jpg": "images", "garbage.png": "images", "garbage.gif": "images", "garbage.mp3": "music",
             "garbage.flac": "music", "garbage.ogg": "music", "garbage.m4a": "music", "garbage.txt": "text",
             "garbage.html": "text", "garbage.mp4": "videos", "garbage.mkv": "videos", "garbage.webm": "videos"}
    return [
        BadFile(_write_bytes(folder / name, _random_bytes(4096, index)), kind, "garbage", "4 KiB of random bytes")
        for index, (name, kind) in enumerate(names.items())
    ]


def _bitflipped_files(folder: Path) -> list[BadFile]:
    png = write_png(folder / "bitflipped.png")
    jpeg = write_jpeg(folder / "bitflipped.jpg", size=(64, 64))
    gif = write_gif(folder / "bitflipped.gif")
    wav = write_wav(folder / "bitflipped.wav")
    flac = write_flac(folder / "bitflipped.flac")
    ogg = write_ogg(folder / "bitflipped.ogg")
    text = write_text(folder / "bitflipped.txt", "UTF-16 text whose byte-order mark is damaged\n", "utf-16")
    mp4 = write_video(folder / "bitflipped.mp4")
    mkv = write_video(folder / "bitflipped.mkv")
    return [
        BadFile(_corrupt_at(png, 16), "images", "bitflipped", "IHDR width flipped, checksum no longer matches"),
        BadFile(_corrupt_at(jpeg, _find(jpeg, b"\xff\xc4") + 5, 2), "images", "bitflipped", "Huffman table flipped"),
        BadFile(_corrupt_at(gif, 0, 3), "images", "bitflipped", "GIF signature flipped"),
        BadFile(_corrupt_at(wav, _find(wav, b"fmt ") + 8, 2), "music", "bitflipped", "WAV format tag flipped"),
        BadFile(_corrupt_at(flac, 0), "music", "bitflipped", "fLaC marker flipped"),
        BadFile(_corrupt_at(ogg, 30, 8), "music", "bitflipped", "Vorbis identification header flipped"),
        BadFile(_corrupt_at(text, 0, 1), "text", "bitflipped", "byte-order mark flipped"),
        BadFile(_corrupt_at(mp4, _find(mp4, b"moov"), 4), "videos", "bitflipped", "moov atom name flipped"),
        BadFile(_corrupt_at(mkv, 0, 4), "videos", "bitflipped", "EBML magic flipped"),
    ]


def _wrong_kind_files(folder: Path) -> list[BadFile]:
    jpeg_bytes = write_jpeg(folder / "_tmp.jpg").read_bytes()
    wav_bytes = write_wav(folder / "_tmp.wav").read_bytes()
    png_bytes = write_png(folder / "_tmp.png").read_bytes()
    mp4_bytes = write_video(folder / "_tmp.mp4").read_bytes()
    for name in ("_tmp.jpg", "_tmp.wav", "_tmp.png", "_tmp.mp4"):
        (folder / name).unlink()
    text_bytes = b"This is a plain text file, whatever its name says.\n" * 20
    made = {
        "text named.jpg": (text_bytes, "images", "text content"),
        "audio named.png": (wav_bytes, "images", "WAV content"),
        "video named.gif": (mp4_bytes, "images", "MP4 video content"),
        "photo named.mp3": (jpeg_bytes, "music", "JPEG content"),
        "text named.flac": (text_bytes, "music", "text content"),
        "video named.m4a": (mp4_bytes, "music", "MP4 video without audio"),
        "image named.txt": (png_bytes, "text", "PNG content"),
        "audio named.md": (wav_bytes, "text", "WAV content"),
        "photo named.mp4": (jpeg_bytes, "videos", "JPEG content"),
        "audio named.mkv": (wav_bytes, "videos", "WAV content"),
        "text named.webm": (text_bytes, "videos", "text content"),
    }
    return [
        BadFile(_write_bytes(folder / name, data), kind, "wrong-kind", note)
        for name, (data, kind, note) in made.items()
    ]


def make_bad_files(folder: PathArg) -> list[BadFile]:
    """Files every reader must refuse: empty, truncated, garbage, bit-flipped and wrong-kind, across all four kinds."""
    root = as_path(folder)
    root.mkdir(parents=True, exist_ok=True)
    return [
        *_empty_files(root),
        *_truncated_files(root),
        *_garbage_files(root),
        *_bitflipped_files(root),
        *_wrong_kind_files(root),
    ]


# ---------------------------------------------------------------- odd names


def make_odd_names(folder: PathArg) -> list[Path]:
    """Valid files whose names hold spaces, emoji, a newline, invalid UTF-8 and other surprises."""
    root = os.fsencode(as_path(folder))
    os.makedirs(root, exist_ok=True)

    def at(name: bytes) -> bytes:
        return os.path.join(root, name)

    return [
        write_jpeg(at(b"holiday photo  two spaces.jpg")),
        write_png(at("smile \U0001F600.png".encode())),
        write_jpeg(at(b"bad\xff name.jpg")),
        write_wav(at(b"line\nbreak.wav")),
        write_mp3(at(b"latin1 caf\xe9.mp3")),
        write_flac(at(" leading and trailing spaces .flac".encode())),
        write_text(at(b"notes\xfe\xfd.txt"), "Notes with a broken name\n"),
        write_text(at("\u00dcbersicht \u2014 \u65e5\u672c.md".encode()), "# \u00dcbersicht\n"),
        write_video(at(b"-starts with a dash\n.mp4"), frames=5),
        write_video(at("\U0001F3AC clip.mkv".encode()), frames=5),
    ]
