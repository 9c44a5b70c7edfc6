"""Videos through an image encoder: frames spread over the video, averaged; a model id of their own."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anagnorisis.embed.basic import BasicImageEncoder
from anagnorisis.embed.siglip import SiglipEncoder
from anagnorisis.embed.video import FRAMES_PER_VIDEO, VideoEncoder, video_frames
from tests.media import write_video


@pytest.fixture
def videos(tmp_path: Path) -> list[Path]:
    return [
        write_video(tmp_path / "blue.mp4", frames=30, color=(30, 60, 200)),
        write_video(tmp_path / "blue.webm", frames=20, color=(30, 60, 210)),
        write_video(tmp_path / "red.mkv", frames=20, color=(210, 30, 30)),
    ]


def test_frames_are_spread_over_the_whole_video(videos: list[Path]) -> None:
    frames = video_frames(str(videos[0]))
    assert len(frames) == FRAMES_PER_VIDEO
    bars = [int(np.argmax(np.asarray(frame.convert("L"), dtype=np.float32).mean(axis=0))) for frame in frames]
    assert bars == sorted(bars) and bars[-1] - bars[0] > 30, "the bright bar sweeps right as the video plays"


def test_a_video_vector_averages_its_frames_and_is_normalised(videos: list[Path]) -> None:
    encoder = VideoEncoder(BasicImageEncoder())
    batch = encoder.encode_files(videos)
    assert batch.paths == videos and batch.failures == []
    assert np.allclose(np.linalg.norm(batch.vectors, axis=1), 1, atol=1e-5)
    blue, other_blue, red = batch.vectors
    assert blue @ other_blue > blue @ red
    frames = BasicImageEncoder().encode_images(video_frames(str(videos[0])))
    mean = frames.mean(axis=0)
    assert np.allclose(blue, mean / np.linalg.norm(mean), atol=1e-5)


def test_video_vectors_never_share_a_model_id_with_images(tiny_siglip: Path) -> None:
    basic = VideoEncoder(BasicImageEncoder())
    assert basic.model_id == "basic-image-v1+frames8" != BasicImageEncoder.model_id
    assert not basic.has_text_tower
    image = SiglipEncoder(str(tiny_siglip), device="cpu", pool="inline")
    real = VideoEncoder(image)
    assert real.model_id == f"{tiny_siglip}+frames8" and real.has_text_tower
    assert VideoEncoder(image, frames=4).model_id.endswith("+frames4")


def test_videos_embed_with_a_real_image_model_and_its_text_tower(tiny_siglip: Path, videos: list[Path]) -> None:
    encoder = VideoEncoder(SiglipEncoder(str(tiny_siglip), device="cpu", pool="inline"))
    batch = encoder.encode_files(videos)
    assert batch.vectors.shape == (3, 32) and encoder.dim == 32
    assert encoder.encode_texts(["a red car"]).shape == (1, 32)


def test_a_broken_video_is_reported_and_the_rest_embedded(videos: list[Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(videos[0].read_bytes()[:300])
    not_a_video = tmp_path / "text.mkv"
    not_a_video.write_text("just words")
    batch = VideoEncoder(BasicImageEncoder()).encode_files([broken, videos[1], not_a_video])
    assert batch.paths == [videos[1]]
    assert [f.path for f in batch.failures] == [broken, not_a_video]
    assert all(f.reason.startswith("cannot decode video") for f in batch.failures)


def test_a_video_shorter_than_the_frame_count_still_embeds(tmp_path: Path) -> None:
    tiny = write_video(tmp_path / "three frames.avi", frames=3)
    batch = VideoEncoder(BasicImageEncoder()).encode_files([tiny])
    assert batch.failures == [] and batch.vectors.shape == (1, BasicImageEncoder.dim)
