"""What a file really holds, whatever its name says, and other helpers the kind readers share.

The readers use `sniff_file` to refuse content of another kind early and with a clear reason
("content is a JPEG image, not audio") and to warn about content of another format of the same kind
("content is PNG, extension says .jpg"). Signatures are checked on the first bytes only.
"""
from __future__ import annotations

import os
import re
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from anagnorisis.kinds.registry import MediaError

HEAD_BYTES = 4096  # bytes read to recognise a format: every signature below sits in the first few dozen
MAX_REASON_CHARS = 160  # a reason is one line in a report, not a log dump

IMAGES, MUSIC, TEXT, VIDEOS = "images", "music", "text", "videos"


@dataclass(frozen=True)
class Content:
    """A recognised format: `label` for warnings ("PNG"), `noun` for errors ("a PNG image")."""

    format: str
    label: str
    noun: str
    kinds: frozenset[str]


def _content(fmt: str, label: str, noun: str, *kinds: str) -> Content:
    return Content(fmt, label, noun, frozenset(kinds))


JPEG = _content("jpeg", "JPEG", "a JPEG image", IMAGES)
PNG = _content("png", "PNG", "a PNG image", IMAGES)
GIF = _content("gif", "GIF", "a GIF image", IMAGES)
WEBP = _content("webp", "WEBP", "a WebP image", IMAGES)
BMP = _content("bmp", "BMP", "a BMP image", IMAGES)
TIFF = _content("tiff", "TIFF", "a TIFF image", IMAGES)
HEIF = _content("heif", "HEIF", "a HEIF/AVIF image", IMAGES)
WAV = _content("wav", "WAV", "WAV audio", MUSIC)
AIFF = _content("aiff", "AIFF", "AIFF audio", MUSIC)
FLAC = _content("flac", "FLAC", "FLAC audio", MUSIC)
MP3 = _content("mp3", "MP3", "MP3 audio", MUSIC)
ADTS = _content("aac", "AAC", "AAC audio", MUSIC)
M4A = _content("m4a", "M4A", "M4A audio", MUSIC)
VORBIS = _content("ogg", "Ogg Vorbis", "Ogg Vorbis audio", MUSIC)
OPUS = _content("opus", "Opus", "Opus audio", MUSIC)
OGG_FLAC = _content("ogg", "Ogg FLAC", "Ogg FLAC audio", MUSIC)
SPEEX = _content("ogg", "Speex", "Speex audio", MUSIC)
OGG_VIDEO = _content("ogv", "Ogg Theora", "an Ogg Theora video", VIDEOS)
OGG = _content("ogg", "Ogg", "an Ogg file", MUSIC, VIDEOS)
MP4 = _content("mp4", "MP4", "an MP4 file", MUSIC, VIDEOS)
MOV = _content("mov", "QuickTime", "a QuickTime movie", VIDEOS)
MATROSKA = _content("matroska", "Matroska", "a Matroska file", MUSIC, VIDEOS)
WEBM = _content("webm", "WebM", "a WebM file", MUSIC, VIDEOS)
AVI = _content("avi", "AVI", "an AVI video", VIDEOS)
ASF = _content("asf", "ASF", "a Windows Media file", MUSIC, VIDEOS)
FLV = _content("flv", "FLV", "a Flash video", VIDEOS)
MPEG_PS = _content("mpeg", "MPEG", "an MPEG video", VIDEOS)
MPEG_TS = _content("mpegts", "MPEG-TS", "an MPEG transport stream", VIDEOS)
PLAIN_TEXT = _content("text", "text", "text", TEXT)

_OTHER_SIGNATURES: tuple[tuple[bytes, Content], ...] = (
    (b"%PDF-", _content("pdf", "PDF", "a PDF document")),
    (b"PK\x03\x04", _content("zip", "ZIP", "a ZIP archive")),
    (b"\x1f\x8b", _content("gzip", "gzip", "a gzip archive")),
    (b"7z\xbc\xaf\x27\x1c", _content("7z", "7z", "a 7-Zip archive")),
    (b"Rar!\x1a\x07", _content("rar", "RAR", "a RAR archive")),
    (b"\x7fELF", _content("elf", "ELF", "an executable program")),
    (b"SQLite format 3\x00", _content("sqlite", "SQLite", "an SQLite database")),
)

_SIMPLE_SIGNATURES: tuple[tuple[bytes, Content], ...] = (
    (b"\xff\xd8\xff", JPEG),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"GIF87a", GIF),
    (b"GIF89a", GIF),
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
    (b"II+\x00", TIFF),
    (b"fLaC", FLAC),
    (b"\x1aE\xdf\xa3", MATROSKA),
    (b"0&\xb2u\x8ef\xcf\x11", ASF),
    (b"FLV\x01", FLV),
    (b"\x00\x00\x01\xba", MPEG_PS),
    (b"\x00\x00\x01\xb3", MPEG_PS),
    *_OTHER_SIGNATURES,
)

_RIFF_TYPES = {b"WEBP": WEBP, b"WAVE": WAV, b"AVI ": AVI}
_HEIF_BRANDS = {b"avif", b"avis", b"heic", b"heix", b"hevc", b"mif1", b"msf1"}
_AUDIO_MP4_BRANDS = {b"M4A ", b"M4B ", b"M4P "}
_OGG_CODECS = ((b"\x01vorbis", VORBIS), (b"OpusHead", OPUS), (b"\x7fFLAC", OGG_FLAC),
               (b"\x80theora", OGG_VIDEO), (b"Speex   ", SPEEX))
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}


def sniff(head: bytes) -> Content | None:
    """The format the first bytes of a file announce, or None if they announce none we know."""
    for signature, content in _SIMPLE_SIGNATURES:
        if head.startswith(signature):
            return _matroska_or_webm(head) if content is MATROSKA else content
    for check in (_riff, _iso_media, _ogg, _bmp, _aiff, _mpeg_audio, _mpeg_ts):
        found = check(head)
        if found is not None:
            return found
    return PLAIN_TEXT if looks_like_text(head) else None


def _matroska_or_webm(head: bytes) -> Content:
    """Matroska and WebM share a signature; the EBML DocType near the start tells them apart."""
    return WEBM if b"webm" in head[:64] else MATROSKA


def _riff(head: bytes) -> Content | None:
    return _RIFF_TYPES.get(head[8:12]) if head.startswith(b"RIFF") else None


def _iso_media(head: bytes) -> Content | None:
    if head[4:8] != b"ftyp":
        return None
    brand = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(len(head), 64), 4)}
    if brand in _HEIF_BRANDS or (brand not in _AUDIO_MP4_BRANDS and compatible & {b"avif", b"heic"}):
        return HEIF
    if brand in _AUDIO_MP4_BRANDS:
        return M4A
    return MOV if brand == b"qt  " else MP4


def _ogg(head: bytes) -> Content | None:
    if not head.startswith(b"OggS"):
        return None
    first_page = head[:200]
    return next((content for marker, content in _OGG_CODECS if marker in first_page), OGG)


def _bmp(head: bytes) -> Content | None:
    # "BM" alone is too weak (a text may start with it): also require zero reserved words and a known header size.
    if len(head) < 18 or not head.startswith(b"BM"):
        return None
    reserved, header_size = struct.unpack_from("<I", head, 6)[0], struct.unpack_from("<I", head, 14)[0]
    return BMP if reserved == 0 and header_size in _BMP_HEADER_SIZES else None


def _aiff(head: bytes) -> Content | None:
    return AIFF if head.startswith(b"FORM") and head[8:12] in (b"AIFF", b"AIFC") else None


def _mpeg_audio(head: bytes) -> Content | None:
    """An ID3 tag, an MPEG audio frame header or an ADTS (AAC) header at the start."""
    if head.startswith(b"ID3"):
        return MP3  # sniff_file looks behind the tag for what it really precedes
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    layer, bitrate_index, rate_index = (head[1] >> 1) & 3, head[2] >> 4, (head[2] >> 2) & 3
    if layer == 0:
        return ADTS if head[1] & 0xF6 == 0xF0 else None
    return MP3 if bitrate_index != 15 and rate_index != 3 and (head[1] >> 3) & 3 != 1 else None


def _mpeg_ts(head: bytes) -> Content | None:
    packet = 188  # bytes per transport stream packet; each starts with the sync byte 0x47
    return MPEG_TS if len(head) > 2 * packet and head[0] == head[packet] == head[2 * packet] == 0x47 else None


def id3_size(head: bytes) -> int:
    """Bytes taken by an ID3v2 tag at the start of `head` (its size is stored 7 bits per byte)."""
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


# ---------------------------------------------------------------- text


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1a\x1c-\x1f\x7f]")  # control characters texts do not use
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


def looks_like_text(head: bytes) -> bool:
    """True for UTF-8 (or BOM-marked UTF-16) text with hardly any control characters."""
    if not head:
        return False
    if head.startswith(_BOMS[1:]):
        decoded = head[2 : len(head) - len(head) % 2].decode("utf-16-le" if head[0] == 0xFF else "utf-16-be", "replace")
    elif b"\x00" in head:
        return False
    else:
        try:
            decoded = head.decode("utf-8")
        except UnicodeDecodeError as error:
            if error.start < len(head) - 3:  # a character cut by the end of `head` is fine
                return False
            decoded = head[: error.start].decode("utf-8")
    return len(_CONTROL.findall(decoded)) <= len(decoded) // 100


# ---------------------------------------------------------------- files


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first bytes of a regular file, or a MediaError naming why there are none."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise MediaError("not a regular file")
        if info.st_size == 0:
            raise MediaError("empty file")
        with open(path, "rb") as file:
            head = file.read(size)
    except OSError as error:
        raise MediaError(f"cannot read: {error.strerror or error}") from error
    if not head:
        raise MediaError("empty file")
    return head


def sniff_file(path: Path, head: bytes) -> Content | None:
    """`sniff` of a file's head, looking behind a leading ID3 tag (which may precede FLAC or AAC too)."""
    content = sniff(head)
    if content is MP3 and head.startswith(b"ID3") and len(head) >= 10:
        try:
            with open(path, "rb") as file:
                file.seek(id3_size(head))
                behind = sniff(file.read(64))
        except OSError:
            return content
        if behind is not None and behind is not PLAIN_TEXT:
            return behind
    return content


def refuse_other_kinds(content: Content | None, kind: str, noun: str) -> None:
    """Raise when the content is recognised and cannot be of `kind` ("content is a PNG image, not audio")."""
    if content is not None and kind not in content.kinds:
        raise MediaError(f"content is {content.noun}, not {noun}")


def extension_warning(content: Content | None, path: Path, expected: dict[str, frozenset[str]]) -> str | None:
    """A warning when the content is not the format the extension promises ("content is WAV, extension says .mp3")."""
    extension = path.suffix.lower()
    allowed = expected.get(extension)
    if content is None or allowed is None or content.format in allowed:
        return None
    return f"content is {content.label}, extension says {extension}"


def short_reason(error: BaseException) -> str:
    """One line from a library's exception: no paths, no log tails, no stack."""
    text = getattr(error, "error_string", None) or str(error) or type(error).__name__  # soundfile's has no path
    text = text.split("; last error log:")[0]
    text = re.sub(r"\[Errno -?\d+\]\s*", "", text)
    text = re.sub(r"(:\s*)?'[^']*'$", "", text).strip()  # PyAV and Pillow end with the quoted file name
    text = " ".join(text.split())
    return text[: MAX_REASON_CHARS - 1] + "…" if len(text) > MAX_REASON_CHARS else text
