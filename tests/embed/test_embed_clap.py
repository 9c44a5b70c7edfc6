"""CLAP (fused and unfused) on tiny random models; audio windows; decoding of every format."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from anagnorisis.embed.audio import read_windows, window_starts
from anagnorisis.embed.clap import ClapEncoder
from tests.media import write_m4a, write_mp3, write_opus, write_wav


@pytest.fixture
def tracks(tmp_path: Path) -> list[Path]:
    return [
        write_wav(tmp_path / "short.wav", freq=440, seconds=2.0, sr=44100),
        write_wav(tmp_path / "long.wav", freq=220, seconds=12.0, sr=16000, channels=2),
        write_m4a(tmp_path / "aac.m4a", freq=660, seconds=1.5),
    ]


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "unfused"])
def test_clap_embeds_generated_audio_deterministically(
    fused: bool, tracks: list[Path], tiny_clap_fused: Path, tiny_clap_unfused: Path
) -> None:
    folder = tiny_clap_fused if fused else tiny_clap_unfused
    encoder = ClapEncoder(str(folder), device="cpu", workers=2)
    assert encoder._load().fused is fused
    first = encoder.encode_files(tracks)
    second = encoder.encode_files(tracks)
    assert first.failures == [] and first.paths == tracks
    assert first.vectors.shape == (3, 16) and first.vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(first.vectors, axis=1), 1, atol=1e-5)
    assert np.array_equal(first.vectors, second.vectors), "the same windows every time: no random crops"


def test_a_track_vector_does_not_depend_on_its_batch(tiny_clap_fused: Path, tracks: list[Path]) -> None:
    """is_longer is never raised at random on one window of a batch, so neighbours cannot change a vector."""
    encoder = ClapEncoder(str(tiny_clap_fused), device="cpu", workers=1)
    alone = encoder.encode_files([tracks[0]]).vectors[0]
    together = encoder.encode_files([tracks[0], tracks[2]]).vectors[0]
    assert np.allclose(alone, together, atol=1e-5)


def test_clap_text_queries_share_the_audio_space(tiny_clap_unfused: Path) -> None:
    encoder = ClapEncoder(str(tiny_clap_unfused), device="cpu")
    vectors = encoder.encode_texts(["calm piano", "loud rock guitar with drum"])
    assert vectors.shape == (2, encoder.dim) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def test_a_corrupt_track_is_reported_and_the_rest_embedded(tiny_clap_unfused: Path, tracks: list[Path], tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"ID3" + bytes(2000))
    encoder = ClapEncoder(str(tiny_clap_unfused), device="cpu", workers=2, batch_size=2)
    batch = encoder.encode_files([tracks[0], corrupt, tracks[2]])
    assert batch.paths == [tracks[0], tracks[2]]
    assert [f.path for f in batch.failures] == [corrupt] and "audio" in batch.failures[0].reason


def test_windows_are_spread_over_the_track_and_fixed() -> None:
    assert window_starts(5.0, 10.0, 5) == [0.0]
    assert window_starts(20.0, 10.0, 5) == [0.0, 10.0]
    starts = window_starts(300.0, 10.0, 5)
    assert starts == [25.0, 85.0, 145.0, 205.0, 265.0]
    assert all(0 <= s <= 290 for s in window_starts(11.0, 10.0, 5))


def test_audio_is_read_as_mono_windows_at_the_model_rate(tmp_path: Path) -> None:
    stereo = write_wav(tmp_path / "stereo.wav", freq=1000, seconds=30.0, sr=44100, channels=2)
    audio = read_windows(stereo, 48000, 10.0, 5)
    assert audio.sample_rate == 48000 and abs(audio.duration - 30.0) < 1e-6
    assert len(audio.windows) == 3 and all(abs(w.size - 480000) <= 1 for w in audio.windows)
    spectrum = np.abs(np.fft.rfft(audio.windows[0][:48000]))
    assert abs(np.argmax(spectrum) - 1000) <= 1, "resampled without shifting the pitch"


def test_formats_libsndfile_cannot_read_go_through_pyav(tmp_path: Path) -> None:
    for path in (write_m4a(tmp_path / "a.m4a", freq=500, seconds=1.0), write_opus(tmp_path / "a.opus", seconds=1.0),
                 write_mp3(tmp_path / "a.mp3", seconds=1.0)):
        audio = read_windows(path, 48000, 10.0, 5)
        assert len(audio.windows) == 1 and 0.8 < audio.duration < 1.3, path


def test_a_long_m4a_is_read_by_seeking_to_each_window(tmp_path: Path) -> None:
    long_m4a = write_m4a(tmp_path / "long.m4a", freq=300, seconds=16.0, sr=8000)
    audio = read_windows(long_m4a, 8000, 2.0, 3)
    assert len(audio.windows) == 3 and all(abs(w.size - 16000) < 400 for w in audio.windows)
    assert 15.5 < audio.duration < 16.5


def test_silence_embeds_without_nan(tiny_clap_fused: Path, tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(4800, dtype=np.float32), 48000)
    vector = ClapEncoder(str(tiny_clap_fused), device="cpu").encode_files([silent]).vectors
    assert np.isfinite(vector).all()
