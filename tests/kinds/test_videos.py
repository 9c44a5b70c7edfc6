"""The videos kind on real generated files: container facts, first-frame decoding, cut-off and disguised files."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from anagnorisis.kinds import MediaError, get_kind, kind_of_extension
from tests.kinds.helpers import (
    assert_damage_raises_only_media_errors,
    assert_reads_as_expected,
    assert_refused,
)
from tests.media import BadFile, GoodFile, write_jpeg, write_m4a, write_text, write_video, write_wav

VIDEOS = get_kind("videos")


def test_the_videos_kind_claims_the_usual_video_extensions() -> None:
    assert VIDEOS.extensions == {".mp4", ".m4v", ".webm", ".mkv", ".mov", ".avi"}
    assert kind_of_extension(".MKV") is VIDEOS
    assert "length" in VIDEOS.extra_sorts


def test_every_generated_video_reads_with_its_size_duration_and_codec(good_files: list[GoodFile]) -> None:
    found = [good for good in good_files if good.kind == "videos"]
    assert len(found) >= 6
    for good in found:
        probe = assert_reads_as_expected(VIDEOS, good)
        assert probe.metadata["fps"] == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("extension", "codec"), [(".mp4", "h264"), (".webm", "vp9"), (".mkv", "h264"), (".avi", "mpeg4")]
)
def test_frame_count_and_rate_give_the_duration(tmp_path: Path, extension: str, codec: str) -> None:
    metadata = VIDEOS.read_metadata(write_video(tmp_path / f"clip{extension}", frames=25, fps=25)).metadata
    assert metadata["duration"] == pytest.approx(1.0, abs=0.05)
    assert (metadata["codec"], metadata["has_audio"]) == (codec, False)


def test_a_video_with_sound_says_so(tmp_path: Path) -> None:
    metadata = VIDEOS.read_metadata(write_video(tmp_path / "talk.mkv", audio=True)).metadata
    assert metadata["has_audio"] is True


def test_sound_longer_than_the_picture_is_not_called_truncated(tmp_path: Path) -> None:
    import av

    from tests.media import _add_audio_stream, _encode_audio, _video_frame

    path = tmp_path / "long sound.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=10, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = _add_audio_stream(container, "aac", 48000, 1)
        for index in range(10):
            frame = av.VideoFrame.from_ndarray(_video_frame(index, 10, (64, 48), (9, 9, 9)), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        _encode_audio(container, sound, 440, 4.0)
    assert VIDEOS.read_metadata(path).metadata["duration"] == pytest.approx(4.0, abs=0.1)


def test_every_bad_video_is_refused_with_a_short_reason(bad_files: list[BadFile]) -> None:
    found = [bad for bad in bad_files if bad.kind == "videos"]
    assert {bad.badness for bad in found} == {"empty", "truncated", "garbage", "bitflipped", "wrong-kind"}
    for bad in found:
        assert_refused(VIDEOS, bad)


@pytest.mark.parametrize("name", ["truncated.mp4", "truncated faststart.mp4", "truncated.mkv", "truncated.webm"])
def test_a_video_cut_in_half_is_reported_as_truncated(bad_files: list[BadFile], name: str) -> None:
    bad = next(bad for bad in bad_files if bad.path.name == name)
    assert assert_refused(VIDEOS, bad).startswith("truncated"), name


def test_an_mkv_named_mp4_is_indexed_with_a_warning(tmp_path: Path) -> None:
    probe = VIDEOS.read_metadata(write_video(tmp_path / "clip.mkv").rename(tmp_path / "clip.mp4"))
    assert probe.warning == "content is Matroska, extension says .mp4"
    assert probe.metadata["format"] == "matroska"


def test_a_quicktime_movie_named_mp4_is_not_a_warning(tmp_path: Path) -> None:
    assert VIDEOS.read_metadata(write_video(tmp_path / "clip.mov").rename(tmp_path / "clip.mp4")).warning is None


def test_m4a_audio_named_mp4_is_refused_as_audio(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="^content is M4A audio, not a video$"):
        VIDEOS.read_metadata(write_m4a(tmp_path / "song.m4a", cover=True).rename(tmp_path / "song.mp4"))


def test_an_mp4_with_only_sound_is_refused_as_audio_only(tmp_path: Path) -> None:
    import av

    from tests.media import _add_audio_stream, _encode_audio

    path = tmp_path / "sound only.mp4"
    with av.open(str(path), "w") as container:  # brand "isom", like any MP4: only the streams tell
        _encode_audio(container, _add_audio_stream(container, "aac", 48000, 1), 440, 1.0)
    with pytest.raises(MediaError, match="^content is audio only, not a video$"):
        VIDEOS.read_metadata(path)


@pytest.mark.parametrize(
    ("writer", "reason"),
    [(write_jpeg, "content is a JPEG image, not a video"), (write_wav, "content is WAV audio, not a video")],
)
def test_other_kinds_named_mp4_are_refused_by_what_they_are(tmp_path: Path, writer: object, reason: str) -> None:
    path = writer(tmp_path / "disguised.mp4")  # type: ignore[operator]
    with pytest.raises(MediaError) as refused:
        VIDEOS.read_metadata(path)
    assert str(refused.value) == reason


def test_a_text_named_webm_is_refused_as_text(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="^content is text, not a video$"):
        VIDEOS.read_metadata(write_text(tmp_path / "notes.webm", "not a video\n" * 30))


def test_videos_with_odd_names_read_fine(odd_files: list[Path]) -> None:
    found = [path for path in odd_files if path.suffix in VIDEOS.extensions]
    assert any("\n" in path.name for path in found)
    for path in found:
        assert VIDEOS.read_metadata(path).metadata["width"] == 64


def test_a_name_that_looks_like_an_ffmpeg_protocol_is_read_as_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = write_video(tmp_path / "clip.mp4", frames=5)
    monkeypatch.chdir(tmp_path)
    tricky = Path("concat:clip.mp4|clip.mp4")
    shutil.copy(clip, tricky)
    assert VIDEOS.read_metadata(tricky).metadata["duration"] == pytest.approx(0.5, abs=0.05)


def test_the_reader_leaves_no_file_open(good_files: list[GoodFile], bad_files: list[BadFile]) -> None:
    before = len(os.listdir("/proc/self/fd"))
    items: list[GoodFile | BadFile] = [*good_files, *bad_files]
    for item in items:
        if item.kind == "videos":
            try:
                VIDEOS.read_metadata(item.path)
            except MediaError:
                pass
    assert len(os.listdir("/proc/self/fd")) <= before


def test_damaged_copies_of_good_videos_raise_nothing_but_media_errors(
    good_files: list[GoodFile], tmp_path: Path
) -> None:
    assert_damage_raises_only_media_errors(VIDEOS, good_files, tmp_path)
