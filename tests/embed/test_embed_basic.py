"""Basic-feature encoders (no weights): colours, textures, loudness, timbre, tempo."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
from PIL import Image

from anagnorisis.embed.base import Encoder, NoTextTowerError
from anagnorisis.embed.basic import (
    BASIC_AUDIO_DIM,
    BASIC_IMAGE_DIM,
    BasicAudioEncoder,
    BasicImageEncoder,
    audio_features,
    image_features,
)
from tests.media import write_flac, write_jpeg, write_m4a, write_mp3, write_ogg, write_png, write_wav


def _norms(vectors: np.ndarray) -> np.ndarray:
    return np.linalg.norm(vectors, axis=1)


def test_image_features_is_a_pure_function_of_the_picture() -> None:
    picture = Image.new("RGB", (300, 200), (10, 200, 30))
    first, second = image_features(picture), image_features(picture.copy())
    assert first.dtype == np.float32 and first.shape == (BASIC_IMAGE_DIM,)
    assert np.array_equal(first, second)
    assert abs(np.linalg.norm(first) - 1) < 1e-5


def test_image_features_accept_any_mode_and_size() -> None:
    for picture in (Image.new("L", (5, 700), 128), Image.new("RGBA", (64, 64), (255, 0, 0, 128)), Image.new("P", (1, 1))):
        vector = image_features(picture)
        assert vector.shape == (BASIC_IMAGE_DIM,) and np.isfinite(vector).all()


def test_a_red_image_is_nearer_another_red_image_than_a_blue_one(tmp_path: Path) -> None:
    red = write_jpeg(tmp_path / "red.jpg", color=(220, 30, 30), size=(320, 240))
    other_red = write_png(tmp_path / "other red.png", color=(200, 20, 40), size=(200, 260))
    blue = write_jpeg(tmp_path / "blue.jpg", color=(30, 40, 220), size=(320, 240))
    batch = BasicImageEncoder(workers=2).encode_files([red, other_red, blue])
    assert batch.paths == [red, other_red, blue] and batch.failures == []
    assert np.allclose(_norms(batch.vectors), 1, atol=1e-5)
    vectors = batch.vectors
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_a_corrupt_image_in_a_batch_is_reported_and_the_rest_embedded(tmp_path: Path) -> None:
    good = [write_jpeg(tmp_path / f"good{i}.jpg", color=(40 * i, 100, 100)) for i in range(3)]
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    missing = tmp_path / "gone.png"
    batch = BasicImageEncoder(workers=2).encode_files([good[0], corrupt, good[1], missing, good[2]])
    assert batch.paths == good
    assert batch.vectors.shape == (3, BASIC_IMAGE_DIM)
    assert [failure.path for failure in batch.failures] == [corrupt, missing]
    assert all(failure.reason.startswith("cannot decode image") for failure in batch.failures)


def test_threads_processes_and_inline_decoding_give_the_same_vectors(tmp_path: Path) -> None:
    files = [write_jpeg(tmp_path / f"{i}.jpg", color=(i * 50, 255 - i * 50, 90), size=(640, 480)) for i in range(5)]
    results = []
    for pool in ("inline", "thread", "process"):
        encoder = BasicImageEncoder(workers=2, pool=pool)
        try:
            results.append(encoder.encode_files(files).vectors)
        finally:
            encoder.close()
    assert np.array_equal(results[0], results[1]) and np.array_equal(results[0], results[2])


def test_a_large_jpeg_is_decoded_at_reduced_size_with_the_same_colours(tmp_path: Path) -> None:
    big = write_jpeg(tmp_path / "big.jpg", color=(200, 120, 40), size=(1920, 1080))
    small = write_jpeg(tmp_path / "small.jpg", color=(200, 120, 40), size=(192, 108))
    vectors = BasicImageEncoder(workers=1, pool="inline").encode_files([big, small]).vectors
    assert vectors[0] @ vectors[1] > 0.97


def test_the_basic_image_encoder_has_no_text_tower() -> None:
    encoder = BasicImageEncoder()
    assert isinstance(encoder, Encoder) and encoder.has_text_tower is False
    assert encoder.model_id == "basic-image-v1"
    with pytest.raises(NoTextTowerError, match="models download images"):
        encoder.encode_texts(["a red car"])


def _noise_wav(path: Path, seconds: float = 2.0, rate: int = 22050) -> Path:
    samples = np.random.default_rng(7).uniform(-0.5, 0.5, int(seconds * rate)).astype(np.float32)
    soundfile.write(path, samples, rate)
    return path


def test_a_440_hz_tone_is_nearer_a_450_hz_tone_than_white_noise(tmp_path: Path) -> None:
    a440 = write_wav(tmp_path / "a440.wav", freq=440, seconds=2.0, sr=44100)
    a450 = write_wav(tmp_path / "a450.wav", freq=450, seconds=2.0, sr=22050)
    noise = _noise_wav(tmp_path / "noise.wav")
    batch = BasicAudioEncoder(workers=2).encode_files([a440, a450, noise])
    assert batch.failures == [] and batch.vectors.shape == (3, BASIC_AUDIO_DIM)
    assert np.allclose(_norms(batch.vectors), 1, atol=1e-5)
    tone, near, far = batch.vectors
    assert tone @ near > 0.9 and tone @ near > tone @ far + 0.3


def test_basic_audio_reads_every_common_format(tmp_path: Path) -> None:
    files = [
        write_flac(tmp_path / "t.flac", freq=330, seconds=1.0),
        write_ogg(tmp_path / "t.ogg", freq=330, seconds=1.0),
        write_mp3(tmp_path / "t.mp3", freq=330, seconds=1.0),
        write_m4a(tmp_path / "t.m4a", freq=330, seconds=1.0),
    ]
    batch = BasicAudioEncoder(workers=2).encode_files(files)
    assert batch.failures == [] and batch.paths == files
    similarities = batch.vectors @ batch.vectors[0]
    assert (similarities > 0.8).all(), similarities


def test_a_corrupt_audio_file_is_reported_and_the_rest_embedded(tmp_path: Path) -> None:
    good = write_wav(tmp_path / "good.wav", seconds=0.5)
    corrupt = tmp_path / "corrupt.flac"
    corrupt.write_bytes(b"fLaC" + bytes(1000))
    batch = BasicAudioEncoder(workers=2).encode_files([corrupt, good])
    assert batch.paths == [good]
    assert len(batch.failures) == 1 and batch.failures[0].path == corrupt
    assert "audio" in batch.failures[0].reason


def test_audio_features_are_deterministic_and_sensitive_to_tempo() -> None:
    rate = 22050
    t = np.arange(rate * 8) / rate

    def clicks(bpm: float) -> np.ndarray:
        period = int(rate * 60 / bpm)
        signal = np.zeros_like(t)
        for start in range(0, signal.size, period):
            signal[start : start + 200] = np.sin(2 * np.pi * 1000 * t[:200])
        return signal.astype(np.float32)

    slow, fast = clicks(70), clicks(140)
    assert np.array_equal(audio_features(slow, rate), audio_features(slow, rate))
    assert not np.allclose(audio_features(slow, rate), audio_features(fast, rate))


def _squares(pool: object, items: list[int], in_flight: int = 2) -> list[object]:
    from anagnorisis.embed.workers import chunks_of
    from tests.embed.crashing import square_or_die

    chunks = pool.ordered(square_or_die, chunks_of(items, 2), in_flight, lambda item: f"lost {item}")  # type: ignore[attr-defined]
    return [result for chunk in chunks for result in chunk]


@pytest.mark.parametrize("in_flight", [1, 3])
def test_a_worker_process_that_dies_is_replaced_and_only_its_file_fails(in_flight: int) -> None:
    from anagnorisis.embed.workers import WorkerPool

    with WorkerPool(2, "process") as pool:
        assert _squares(pool, [1, 2, -1, 3, 4, 5, -1, 6], in_flight) == [1, 4, "lost -1", 9, 16, 25, "lost -1", 36]
        assert _squares(pool, [7, 8, 9], in_flight) == [49, 64, 81], "the pool works on after crashes"
        assert len(pool.pids()) == 2


def test_a_hung_worker_is_killed_and_its_file_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from anagnorisis.embed import workers

    monkeypatch.setattr(workers, "TASK_SECONDS_LIMIT", 0.5)
    monkeypatch.setattr(workers, "CHECK_SECONDS", 0.1)
    with workers.WorkerPool(2, "process") as pool:
        assert _squares(pool, [1, -2, 3]) == [1, "lost -2", 9]


def test_a_run_stopped_early_leaves_the_pool_clean() -> None:
    from anagnorisis.embed.workers import WorkerPool, chunks_of
    from tests.embed.crashing import square_or_die

    with WorkerPool(2, "process") as pool:
        chunks = pool.ordered(square_or_die, chunks_of(list(range(40)), 2), 6, str)
        assert next(chunks) == [0, 1]
        chunks.close()
        assert _squares(pool, [5, 6, 7]) == [25, 36, 49]


def test_shared_memory_for_pixels_is_removed_after_use(tmp_path: Path) -> None:
    import glob
    import tempfile

    from anagnorisis.embed.imaging import ImageGeometry, WorkerPool, decoded_images

    files = [write_jpeg(tmp_path / f"{i}.jpg", color=(i * 60, 0, 0), size=(100, 80)) for i in range(5)]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    before = set(glob.glob("/dev/shm/anagnorisis-pixels-*") + glob.glob(f"{tempfile.gettempdir()}/anagnorisis-pixels-*"))
    with WorkerPool(2, "process") as pool:
        got = [(path, pixels if isinstance(pixels, str) else pixels.copy()) for path, pixels in
               decoded_images(pool, [*files[:2], broken, *files[2:]], ImageGeometry("resize", 16, 24), 2, 2)]
    after = set(glob.glob("/dev/shm/anagnorisis-pixels-*") + glob.glob(f"{tempfile.gettempdir()}/anagnorisis-pixels-*"))
    assert after == before
    assert [path for path, _ in got] == [*files[:2], broken, *files[2:]]
    assert isinstance(got[2][1], str) and got[2][1].startswith("cannot decode image")
    reds = [int(pixels[..., 0].mean()) for path, pixels in got if not isinstance(pixels, str)]
    assert reds == sorted(reds) and all(pixels.shape == (16, 24, 3) for _, pixels in got if not isinstance(pixels, str))
