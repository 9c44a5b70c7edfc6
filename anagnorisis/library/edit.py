"""Editing a text in place: an atomic write in the file's own encoding, then the rating follows the new content.

The new bytes go to a temporary file in the same folder, are flushed to disk, and replace the old file in one
rename, so a crash leaves either the old or the new text, never a mix. The file is then re-indexed at once:
the same path with a new hash is a changed file (SPEC §3), so its rating, plays and A/B choices carry over.
"""
from __future__ import annotations

import codecs
import contextlib
import errno
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from anagnorisis.kinds.text import read_text
from anagnorisis.library.hashing import content_hash
from anagnorisis.library.scan import index_file
from anagnorisis.store.db import Store

log = logging.getLogger(__name__)

READ_ONLY = "library is read-only"
# errno values that mean "this file system or folder will not take writes".
READ_ONLY_ERRORS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
MTIME_BUMP_NS = 1_000_000  # 1 ms: moves a saved file's mtime off its old value on file systems with coarse clocks
_UNICODE_BOMS = {
    "utf-16": ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")),
    "utf-32": ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be")),
}


class EditRefused(Exception):
    """The text was not saved; the message says why and what to do."""


@dataclass(frozen=True)
class Document:
    """A text as opened for editing: newlines shown as \\n; how to write it back in the file's own form."""

    path: str
    text: str
    encoding: str
    newline: str
    content_hash: str


@dataclass(frozen=True)
class Saved:
    kind: str
    old_hash: str
    new_hash: str
    changed: bool
    encoding: str


def open_document(path: str) -> Document:
    """Read a text for editing (MediaError for binary or undecodable files)."""
    text, encoding = read_text(Path(path))
    return Document(path, normalise_newlines(text), encoding, dominant_newline(text), content_hash(path))


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def dominant_newline(text: str) -> str:
    """The file's newline convention: what most of its line breaks are (\\n when it has none)."""
    crlf = text.count("\r\n")
    cr = text.count("\r") - crlf
    lf = text.count("\n") - crlf
    best = max((lf, "\n"), (crlf, "\r\n"), (cr, "\r"), key=lambda pair: pair[0])
    return best[1] if best[0] else "\n"


def library_is_writable(path: str) -> bool:
    """Can this file be replaced: its folder takes new files and renames (a read-only mount says no)."""
    folder = os.path.dirname(os.path.abspath(path)) or "."
    return os.access(folder, os.W_OK | os.X_OK) and (not os.path.exists(path) or os.access(path, os.W_OK))


def encode_text(text: str, encoding: str, original_head: bytes = b"") -> bytes:
    """The text in the file's encoding; a UTF-16/32 file keeps the byte order of its BOM."""
    for bom, codec in _UNICODE_BOMS.get(encoding.lower().replace("_", "-"), ()):
        if original_head.startswith(bom):
            return bom + text.encode(codec)
    try:
        return text.encode(encoding)
    except UnicodeEncodeError as error:
        bad = error.object[error.start : error.end]
        line = error.object.count("\n", 0, error.start) + 1
        raise EditRefused(
            f"“{bad}” (line {line}) cannot be written in {encoding}, the encoding of this file; "
            "remove it, or convert the file to UTF-8 in another editor first") from None


def write_atomically(path: str, data: bytes) -> None:
    """Replace path's content with data in one rename, keeping its permission bits (symlinks: the target)."""
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    before = os.stat(target) if os.path.exists(target) else None
    handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if before is not None:
            _keep_owner_and_mode(partial, before)
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    if before is not None and os.stat(target).st_mtime_ns == before.st_mtime_ns:
        # A coarse clock gave the new content the old mtime; the scanner would then trust the old hash.
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns + MTIME_BUMP_NS))
    _fsync_folder(folder)


def _keep_owner_and_mode(partial: str, before: os.stat_result) -> None:
    os.chmod(partial, stat.S_IMODE(before.st_mode))
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # only root can give a file back to its owner
        with contextlib.suppress(OSError):
            os.chown(partial, before.st_uid, before.st_gid)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX: the folder's entry is data too)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def save_text(store: Store, path: str, text: str, *, encoding: str, newline: str = "\n",
              expected_hash: str | None = None) -> Saved:
    """Write text (newlines as \\n, written back as the file's own) and re-index the file; the rating carries.

    EditRefused when the library is read-only, the file changed on disk since it was opened (expected_hash), or
    the text cannot be written in the file's encoding.
    """
    path = os.path.abspath(path)
    if not library_is_writable(path):
        raise EditRefused(f"not saved: the {READ_ONLY} ({os.path.dirname(path)} does not accept changes)")
    old_hash = content_hash(path)
    if expected_hash is not None and old_hash != expected_hash:
        raise EditRefused("not saved: the file changed on disk since you opened it; reopen it to see the new "
                          "content (your edit is still in the editor)")
    with open(path, "rb") as file:
        original_head = file.read(4)
    body = normalise_newlines(text)
    data = encode_text(body if newline == "\n" else body.replace("\n", newline), encoding, original_head)
    if data == _current_bytes(path, len(data)):
        kind, _ = index_file(store, path)
        return Saved(kind, old_hash, old_hash, False, encoding)
    try:
        write_atomically(path, data)
    except OSError as error:
        if error.errno in READ_ONLY_ERRORS:
            raise EditRefused(f"not saved: the {READ_ONLY} ({error.strerror or error})") from error
        raise EditRefused(f"not saved: {error.strerror or error}") from error
    kind, new_hash = index_file(store, path)
    log.info("saved %s (%s): %s -> %s", path, encoding, old_hash, new_hash)
    return Saved(kind, old_hash, new_hash, new_hash != old_hash, encoding)


def _current_bytes(path: str, wanted: int) -> bytes | None:
    """The file's bytes when it is exactly wanted long (a cheap way to see an unchanged save)."""
    if os.path.getsize(path) != wanted:
        return None
    with open(path, "rb") as file:
        return file.read()
