"""Videos for the browser: preview frames, and MP4 in the cache for what the browser cannot play as it is."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from anagnorisis.media import videoplay
from anagnorisis.library.hashing import content_hash
from anagnorisis.media.videoplay import (
    VideoError, cached_video_path, ensure_frame, frame_path, needs_preparing, plan_playback, playable_path,
)
from tests.media import write_video

BLUE = (30, 90, 160)


def record_of(path: Path) -> dict[str, Any]:
    return {"path": str(path), "content_hash": content_hash(path)}


def streams_of(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as container:
        return [(stream.type, stream.codec_context.name) for stream in container.streams]


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_an_mkv_with_a_codec_the_browser_cannot_play_gets_a_preview_frame_and_a_playable_mp4(tmp_path: Path) -> None:
    source = write_video(tmp_path / "library" / "old camera.mkv", frames=20, codec="mpeg4", audio=True, color=BLUE)
    record, previews = record_of(source), tmp_path / "previews"
    assert plan_playback(source).action == "transcode"
    assert needs_preparing(record, previews)

    frame = ensure_frame(previews, record)
    assert frame == frame_path(previews, record["content_hash"]) and frame.exists()
    with Image.open(frame) as picture:
        assert picture.format == "JPEG" and picture.size == (64, 48)
        colour = np.asarray(picture.convert("RGB"), dtype=np.float64)[:, 2:14].reshape(-1, 3).mean(axis=0)
    assert np.abs(colour - np.array(BLUE)).max() < 25  # the source's colour, not a blank

    progress: list[tuple[float, float]] = []
    playable = playable_path(record, previews, lambda done, total: progress.append((done, total)))
    assert playable == cached_video_path(previews, record["content_hash"])
    assert playable.parent == previews / "video" and playable.name == f"{record['content_hash']}.mp4"
    assert streams_of(playable) == [("video", "h264"), ("audio", "aac")]
    with av.open(str(playable)) as container:
        assert container.format.name.startswith("mov,mp4")
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p" and (stream.width, stream.height) == (64, 48)
        assert float(container.duration / 1_000_000) == pytest.approx(2.0, abs=0.15)
    frames = decoded_frames(playable)
    assert len(frames) == 20
    assert np.abs(frames[10][:, 2:14].reshape(-1, 3).mean(axis=0) - np.array(BLUE)).max() < 25
    assert progress and progress[-1][0] == progress[-1][1] == pytest.approx(2.0, abs=0.15)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert not needs_preparing(record, previews)
    assert [name for name in os.listdir(playable.parent)] == [playable.name]  # no partial file left


def test_a_prepared_video_is_served_from_the_cache_without_converting_again(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    source = write_video(tmp_path / "clip.avi", frames=10)
    record = record_of(source)
    first = playable_path(record, tmp_path / "previews")

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("converted twice")

    monkeypatch.setattr(videoplay, "convert", fail)
    assert playable_path(record, tmp_path / "previews") == first


def test_an_h264_mkv_is_remuxed_so_the_video_is_copied_bit_for_bit(tmp_path: Path) -> None:
    source = write_video(tmp_path / "phone.mkv", frames=20, audio=True)
    plan = plan_playback(source)
    assert (plan.action, plan.copy_video, plan.copy_audio) == ("remux", True, True)
    playable = playable_path(record_of(source), tmp_path / "previews")

    def video_packets(path: Path) -> list[bytes]:
        with av.open(str(path)) as container:
            return [bytes(packet) for packet in container.demux(video=0) if packet.size]

    assert video_packets(playable) == video_packets(source)
    assert streams_of(playable) == [("video", "h264"), ("audio", "aac")]


@pytest.mark.parametrize("name, options, action", [
    ("clip.mp4", {}, "direct"),
    ("clip.m4v", {}, "direct"),
    ("clip.webm", {"audio": True}, "direct"),
    ("av1.mp4", {"codec": "libsvtav1", "size": (64, 64)}, "direct"),
    ("clip.mov", {}, "remux"),
    ("mpeg4.mp4", {"codec": "mpeg4"}, "transcode"),
    ("clip.avi", {"audio": True}, "transcode"),
])
def test_mp4_and_webm_with_browser_codecs_play_directly_and_the_rest_is_converted(
        tmp_path: Path, name: str, options: dict[str, Any], action: str) -> None:
    source = write_video(tmp_path / name, frames=10, **options)
    assert plan_playback(source).action == action
    playable = playable_path(record_of(source), tmp_path / "previews")
    if action == "direct":
        assert playable == source and not (tmp_path / "previews" / "video").exists()
    else:
        assert playable.suffix == ".mp4" and streams_of(playable)[0] == ("video", "h264" if action == "transcode"
                                                                         else streams_of(source)[0][1])


def test_the_browser_failing_on_a_direct_file_forces_a_transcode(tmp_path: Path) -> None:
    source = write_video(tmp_path / "odd profile.mp4", frames=10)
    playable = playable_path(record_of(source), tmp_path / "previews", force=True)
    assert playable != source and streams_of(playable) == [("video", "h264")]


def test_a_corrupt_video_raises_a_clear_error_and_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    garbage = tmp_path / "broken.mkv"
    garbage.write_bytes(np.random.default_rng(7).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    previews = tmp_path / "previews"
    record = record_of(garbage)
    assert ensure_frame(previews, record) is None
    with pytest.raises(VideoError, match="cannot read broken.mkv"):
        playable_path(record, previews)

    whole = write_video(tmp_path / "whole.mkv", frames=30, codec="mpeg4").read_bytes()
    headless = tmp_path / "cut after the header.mkv"
    headless.write_bytes(whole[:600])  # the container opens, no frame decodes
    with pytest.raises(VideoError, match="no video frame"):
        playable_path(record_of(headless), previews)
    assert not (previews / "video").exists() or os.listdir(previews / "video") == []


def test_converting_a_longer_video_reports_progress_as_it_goes(tmp_path: Path) -> None:
    source = write_video(tmp_path / "long.avi", frames=120, fps=10)
    seen: list[tuple[float, float, float]] = []
    started = time.perf_counter()
    playable_path(record_of(source), tmp_path / "previews",
                  lambda done, total: seen.append((done, total, time.perf_counter() - started)))
    assert len(seen) >= 10 and seen[0][0] < 1.0 and seen[-1][0] == pytest.approx(12.0, abs=0.2)
    assert all(total == pytest.approx(12.0, abs=0.2) for _, total, _ in seen)


def test_a_video_whose_name_is_not_utf8_is_served_through_a_link_in_the_cache(tmp_path: Path) -> None:
    from anagnorisis.media.playback import file_url
    from anagnorisis.media.videoplay import url_safe_path

    source = write_video(os.fsencode(tmp_path) + b"/caf\xe9 latin-1.mp4", frames=5)
    record = record_of(source)
    assert url_safe_path(tmp_path / "previews", record, source) != source
    linked = url_safe_path(tmp_path / "previews", record, source)
    assert linked == tmp_path / "previews" / "video" / f"{record['content_hash']}.mp4" and linked.is_symlink()
    assert os.path.realpath(os.fsencode(linked)) == os.path.realpath(os.fsencode(source))
    assert file_url(linked).endswith(f"{record['content_hash']}.mp4")
    plain = write_video(tmp_path / "plain name.mp4", frames=5)
    assert url_safe_path(tmp_path / "previews", record_of(plain), plain) == plain
