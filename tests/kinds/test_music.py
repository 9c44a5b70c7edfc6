"""The music kind on real generated files: tags, durations, damaged and disguised files, odd names."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import av
import mutagen
import pytest

from anagnorisis.kinds import MediaError, get_kind, kind_of_extension
from anagnorisis.kinds import music
from tests.kinds.helpers import (
    assert_damage_raises_only_media_errors,
    assert_reads_as_expected,
    assert_refused,
)
from tests.media import (
    BadFile,
    GoodFile,
    set_tags,
    write_flac,
    write_jpeg,
    write_m4a,
    write_mp3,
    write_ogg,
    write_text,
    write_video,
    write_wav,
)

MUSIC = get_kind("music")


def test_the_music_kind_claims_the_usual_audio_extensions() -> None:
    assert MUSIC.extensions == {".mp3", ".flac", ".ogg", ".oga", ".opus", ".wav", ".m4a", ".aac"}
    assert kind_of_extension(".MP3") is MUSIC
    assert MUSIC.extra_sorts == ("length",)


def test_every_generated_track_reads_with_its_duration_and_tags(good_files: list[GoodFile]) -> None:
    found = [good for good in good_files if good.kind == "music"]
    assert len(found) >= 8
    for good in found:
        probe = assert_reads_as_expected(MUSIC, good)
        assert probe.metadata["sample_rate"] > 0 and probe.metadata["channels"] >= 1


def test_tags_read_back_from_every_tag_system(tmp_path: Path) -> None:
    tags = {"artist": "Nina", "title": "Blue", "album": "Sea", "date": "1999", "genre": "Jazz"}
    writers = (
        (write_mp3, "a.mp3"), (write_flac, "a.flac"), (write_ogg, "a.ogg"), (write_m4a, "a.m4a"), (write_wav, "a.wav")
    )
    for writer, name in writers:
        metadata = MUSIC.read_metadata(writer(tmp_path / name, tags=tags)).metadata
        found = {key: metadata.get(key) for key in ("artist", "title", "album", "genre", "year", "date")}
        assert found == {**tags, "year": 1999, "date": "1999-01-01"}, name


def test_an_untagged_track_has_no_tag_keys_and_no_cover(tmp_path: Path) -> None:
    metadata = MUSIC.read_metadata(write_flac(tmp_path / "bare.flac")).metadata
    assert not {"artist", "title", "album", "year", "date", "genre"} & metadata.keys()
    assert metadata["cover"] is False


def test_an_id3_genre_number_is_read_as_its_name(tmp_path: Path) -> None:
    song = write_mp3(tmp_path / "rock.mp3", tags={"genre": "(17)"})
    assert MUSIC.read_metadata(song).metadata["genre"] == "Rock"


def test_an_mp3_whose_tags_are_rewritten_changes_bytes_and_reads_the_new_tags(tmp_path: Path) -> None:
    song = write_mp3(tmp_path / "song.mp3", tags={"artist": "Before", "title": "Song"})
    before = song.read_bytes()
    set_tags(song, artist="After")
    assert song.read_bytes() != before
    assert MUSIC.read_metadata(song).metadata["artist"] == "After"
    easy = mutagen.File(song, easy=True)  # the way another program would retag it
    easy["artist"] = "Third"
    easy.save()
    assert MUSIC.read_metadata(song).metadata["artist"] == "Third"


@pytest.mark.parametrize(
    ("text", "year", "iso"),
    [("2019", 2019, "2019-01-01"), ("2019-05", 2019, "2019-05-01"), ("2019-05-03", 2019, "2019-05-03"),
     ("2019-05-03T10:00:00", 2019, "2019-05-03"), ("1999-13-40", 1999, "1999-01-01"), ("unknown", None, None)],
)
def test_tag_dates_become_a_year_and_a_full_iso_date(text: str, year: int | None, iso: str | None) -> None:
    found = music._dates(text)
    assert (found.get("year"), found.get("date")) == (year, iso)


def test_every_bad_music_file_is_refused_with_a_short_reason(bad_files: list[BadFile]) -> None:
    found = [bad for bad in bad_files if bad.kind == "music"]
    assert {bad.badness for bad in found} == {"empty", "truncated", "garbage", "bitflipped", "wrong-kind"}
    for bad in found:
        assert_refused(MUSIC, bad)


@pytest.mark.parametrize("name", ["truncated.wav", "truncated.flac", "truncated.ogg", "truncated.mp3", "truncated.m4a"])
def test_a_track_cut_in_half_is_reported_as_truncated(bad_files: list[BadFile], name: str) -> None:
    bad = next(bad for bad in bad_files if bad.path.name == name)
    assert assert_refused(MUSIC, bad).startswith("truncated"), name


def test_a_wav_named_mp3_is_indexed_with_a_warning(tmp_path: Path) -> None:
    probe = MUSIC.read_metadata(write_wav(tmp_path / "really a wav.mp3", seconds=0.5))
    assert probe.warning == "content is WAV, extension says .mp3"
    assert probe.metadata["format"] == "wav" and probe.metadata["duration"] == pytest.approx(0.5)


def test_an_opus_stream_in_an_ogg_file_is_not_a_warning(tmp_path: Path) -> None:
    from tests.media import write_opus

    assert MUSIC.read_metadata(write_opus(tmp_path / "voice.ogg")).warning is None


def test_a_jpeg_named_mp3_is_refused_as_an_image(tmp_path: Path) -> None:
    photo = write_jpeg(tmp_path / "photo.mp3")
    with pytest.raises(MediaError, match="^content is a JPEG image, not audio$"):
        MUSIC.read_metadata(photo)


def test_a_text_named_mp3_is_refused_as_text(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="^content is text, not audio$"):
        MUSIC.read_metadata(write_text(tmp_path / "lyrics.mp3", "la la la\n" * 50))


def test_a_video_named_m4a_is_refused_as_a_video(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="video"):
        MUSIC.read_metadata(write_video(tmp_path / "clip.mp4", audio=True).rename(tmp_path / "clip.m4a"))


def test_a_whole_ogg_is_judged_by_its_end_of_stream_page_not_by_a_seek_to_its_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libsndfile's seek within Ogg Vorbis may land late, so a read at the end came up short on a whole file
    (Wesnoth's northerners.ogg, 0.13 s short). The Ogg pages prove the end instead; a cut Ogg is still refused."""
    def seek_lands_late(sound: object, frames: int, window: int) -> None:
        raise MediaError("truncated: audio stops before its stated length")

    monkeypatch.setattr(music, "_read_the_end", seek_lands_late)
    whole = write_ogg(tmp_path / "whole.ogg", seconds=3.0)
    assert MUSIC.read_metadata(whole).metadata["duration"] == pytest.approx(3.0, abs=0.1)
    flac = write_flac(tmp_path / "whole.flac", seconds=3.0)  # other formats still read their end
    with pytest.raises(MediaError, match="truncated"):
        MUSIC.read_metadata(flac)
    cut = tmp_path / "cut.ogg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(MediaError, match="truncated"):
        MUSIC.read_metadata(cut)


def test_an_mp3_without_a_length_header_is_not_called_truncated(tmp_path: Path) -> None:
    """Without a Xing/Info header an MP3's length is a guess, so a short body is not evidence of damage."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp3", options={"write_xing": "0"}) as container:
        stream = container.add_stream("libmp3lame", rate=44100, layout="mono")
        from tests.media import _encode_audio

        _encode_audio(container, stream, 440, 2.0)
    song = tmp_path / "plain.mp3"
    song.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    assert MUSIC.read_metadata(song).metadata["duration"] == pytest.approx(1.0, abs=0.2)


def test_music_with_odd_names_reads_fine(odd_files: list[Path]) -> None:
    found = [path for path in odd_files if path.suffix in MUSIC.extensions]
    assert len(found) >= 3
    for path in found:
        assert MUSIC.read_metadata(path).metadata["duration"] == pytest.approx(1.0, abs=0.1)


def test_a_long_track_reads_quickly(tmp_path: Path) -> None:
    """Only the ends are decoded: a 5-minute FLAC reads in milliseconds, not the second a full decode takes."""
    import time

    song = write_flac(tmp_path / "long.flac", seconds=300, sr=8000)
    started = time.perf_counter()
    assert MUSIC.read_metadata(song).metadata["duration"] == pytest.approx(300)
    assert time.perf_counter() - started < 0.5


def test_the_reader_leaves_no_file_open(good_files: list[GoodFile], bad_files: list[BadFile], tmp_path: Path) -> None:
    import os

    before = len(os.listdir("/proc/self/fd"))
    items: list[GoodFile | BadFile] = [*good_files, *bad_files]
    for item in items:
        if item.kind == "music":
            try:
                MUSIC.read_metadata(item.path)
            except MediaError:
                pass
    assert len(os.listdir("/proc/self/fd")) <= before


def test_a_copy_reads_the_same_as_the_original(good_files: list[GoodFile], tmp_path: Path) -> None:
    original = next(good.path for good in good_files if good.path.suffix == ".mp3")
    copy = Path(shutil.copy(original, tmp_path / "copy of the song.mp3"))
    assert music.read_music(copy) == music.read_music(original)


def test_damaged_copies_of_good_music_raise_nothing_but_media_errors(
    good_files: list[GoodFile], tmp_path: Path
) -> None:
    assert_damage_raises_only_media_errors(MUSIC, good_files, tmp_path)
