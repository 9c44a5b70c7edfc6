"""The images kind on real generated files: metadata, EXIF dates, damaged files, odd names, the pixel cap."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from anagnorisis.kinds import MediaError, get_kind, kind_of_extension
from anagnorisis.kinds import images
from tests.kinds.helpers import (
    assert_damage_raises_only_media_errors,
    assert_is_a_short_reason,
    assert_reads_as_expected,
    assert_refused,
)
from tests.media import BadFile, GoodFile, write_gif, write_jpeg, write_png, write_tiff

IMAGES = get_kind("images")


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims the given size (its one IDAT holds almost nothing)."""

    def chunk(name: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + name + data + struct.pack(">I", zlib.crc32(name + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def test_the_images_kind_claims_the_usual_image_extensions() -> None:
    assert IMAGES.extensions == {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
    assert kind_of_extension(".JPG") is IMAGES
    assert "resolution" in IMAGES.extra_sorts


def test_every_generated_image_reads_with_its_size_and_format(good_files: list[GoodFile]) -> None:
    found = [good for good in good_files if good.kind == "images"]
    assert len(found) >= 8
    for good in found:
        probe = assert_reads_as_expected(IMAGES, good)
        assert probe.metadata["mode"] in ("RGB", "P", "L", "RGBA")


def test_a_jpeg_gives_its_exif_date_and_camera(tmp_path: Path) -> None:
    photo = write_jpeg(tmp_path / "photo.jpg", exif_date="2021:07:04 12:34:56")
    metadata = IMAGES.read_metadata(photo).metadata
    assert metadata["date"] == "2021-07-04T12:34:56"
    assert metadata["exif"]["Make"] == "Anagnorisis" and metadata["exif"]["Model"] == "Test Camera"
    assert metadata["exif"]["DateTimeOriginal"] == "2021:07:04 12:34:56"
    assert metadata["exif"]["Orientation"] == 1


def test_a_jpeg_without_a_date_has_no_date_key(tmp_path: Path) -> None:
    assert "date" not in IMAGES.read_metadata(write_jpeg(tmp_path / "undated.jpg")).metadata


def test_an_impossible_exif_date_is_left_out(tmp_path: Path) -> None:
    photo = write_jpeg(tmp_path / "zeros.jpg", exif_date="0000:00:00 00:00:00")
    assert "date" not in IMAGES.read_metadata(photo).metadata


def test_an_animated_gif_counts_its_frames(tmp_path: Path) -> None:
    five_colours = tuple((index * 50, 0, 0) for index in range(5))
    animated = IMAGES.read_metadata(write_gif(tmp_path / "anim.gif", colors=five_colours)).metadata
    still = IMAGES.read_metadata(write_gif(tmp_path / "still.gif", colors=((1, 2, 3),))).metadata
    assert (animated["animated"], animated["frames"]) == (True, 5)
    assert (still["animated"], still["frames"]) == (False, 1)


def test_every_bad_image_is_refused_with_a_short_reason(bad_files: list[BadFile]) -> None:
    found = [bad for bad in bad_files if bad.kind == "images"]
    assert {bad.badness for bad in found} == {"empty", "truncated", "garbage", "bitflipped", "wrong-kind"}
    for bad in found:
        assert_refused(IMAGES, bad)


def test_a_truncated_jpeg_is_reported_as_bad(bad_files: list[BadFile]) -> None:
    bad = next(bad for bad in bad_files if bad.path.name == "truncated.jpg")
    assert "truncated" in assert_refused(IMAGES, bad)


def test_an_empty_image_says_it_is_empty(bad_files: list[BadFile]) -> None:
    bad = next(bad for bad in bad_files if bad.path.name == "empty.png")
    assert assert_refused(IMAGES, bad) == "empty file"


def test_a_text_file_named_jpg_is_refused_as_text(bad_files: list[BadFile]) -> None:
    bad = next(bad for bad in bad_files if bad.path.name == "text named.jpg")
    assert assert_refused(IMAGES, bad) == "content is text, not an image"


def test_a_png_named_jpg_is_indexed_with_a_warning(tmp_path: Path) -> None:
    probe = IMAGES.read_metadata(write_png(tmp_path / "really a png.jpg", size=(20, 10)))
    assert probe.warning == "content is PNG, extension says .jpg"
    assert (probe.metadata["width"], probe.metadata["height"], probe.metadata["format"]) == (20, 10, "PNG")


def test_a_jpeg_named_png_is_indexed_with_a_warning(tmp_path: Path) -> None:
    probe = IMAGES.read_metadata(write_jpeg(tmp_path / "really a jpeg.png"))
    assert probe.warning == "content is JPEG, extension says .png"


def test_images_with_odd_names_read_fine(odd_files: list[Path]) -> None:
    found = [path for path in odd_files if path.suffix in IMAGES.extensions]
    assert any(b"\xff" in path.as_posix().encode("utf-8", "surrogateescape") for path in found)
    for path in found:
        assert IMAGES.read_metadata(path).metadata["width"] == 64


def test_the_pixel_cap_is_derived_from_ram_and_given_to_pillow() -> None:
    assert images.max_image_pixels() == images.total_ram_bytes() // images.RAM_BYTES_PER_ALLOWED_PIXEL
    assert images.max_image_pixels() > 50_000_000, "a machine with 2 GB must still open a 50 MP photo"
    assert Image.MAX_IMAGE_PIXELS == images.max_image_pixels()


def test_an_image_over_the_pixel_cap_is_refused_naming_both_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "max_image_pixels", lambda: 1000)
    photo = write_jpeg(tmp_path / "big.jpg", size=(64, 48))
    with pytest.raises(MediaError) as refused:
        IMAGES.read_metadata(photo)
    reason = str(refused.value)
    assert "3,072 pixels" in reason and "1,000 pixels" in reason, reason
    assert_is_a_short_reason(reason, photo)


def test_a_png_header_claiming_ten_billion_pixels_is_refused_without_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_claiming(100_000, 100_000))
    with pytest.raises(MediaError) as refused:
        IMAGES.read_metadata(bomb)
    assert "image too large" in str(refused.value) and "10,000,000,000 pixels" in str(refused.value)


def test_a_png_header_just_under_the_cap_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "max_image_pixels", lambda: 64 * 48)
    assert IMAGES.read_metadata(write_png(tmp_path / "fits.png", size=(64, 48))).metadata["width"] == 64


def test_huge_images_are_verified_instead_of_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    huge = write_tiff(tmp_path / "huge.tif")
    monkeypatch.setattr(images, "FULL_DECODE_MAX_PIXELS", 10)
    _forbid_decoding(monkeypatch)
    assert IMAGES.read_metadata(huge).metadata["width"] == 64


def test_a_png_is_checked_by_its_checksums_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_files: list[BadFile]
) -> None:
    good = write_png(tmp_path / "good.png")
    _forbid_decoding(monkeypatch)
    assert IMAGES.read_metadata(good).metadata["width"] == 64
    for name in ("truncated.png", "bitflipped.png"):
        assert_refused(IMAGES, next(bad for bad in bad_files if bad.path.name == name))
    data = bytearray(good.read_bytes())
    data[data.find(b"IDAT") + 6] ^= 0x10  # a flipped bit inside the compressed pixels
    flipped = tmp_path / "flipped pixels.png"
    flipped.write_bytes(bytes(data))
    with pytest.raises(MediaError, match="damaged image"):
        IMAGES.read_metadata(flipped)


def _forbid_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image.Image, "load", _must_not_decode)
    monkeypatch.setattr(ImageFile.ImageFile, "load", _must_not_decode)


def _must_not_decode(self: Image.Image) -> None:
    raise AssertionError("a huge image must not be decoded while scanning")


def test_a_folder_named_like_an_image_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "folder.jpg"
    folder.mkdir()
    with pytest.raises(MediaError, match="not a regular file"):
        IMAGES.read_metadata(folder)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt EXIF it is fed here
def test_damaged_copies_of_good_images_raise_nothing_but_media_errors(
    good_files: list[GoodFile], tmp_path: Path
) -> None:
    assert_damage_raises_only_media_errors(IMAGES, good_files, tmp_path)
