"""train / predict / models versions / models rollback through the CLI, on a library with a planted taste."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from anagnorisis.store.records import present_files
from anagnorisis.store.vectors import save_vectors
from anagnorisis.taste.service import training_set
from tests.conftest import Cli
from tests.taste.planted_library import DIM, open_store, planted_library

N_FILES = 40
N_RATED = 30
CANDIDATES = {"mean", "knn", "ridge", "graph", "mlp", "blend"}


@dataclass
class Planted:
    cli: Cli
    library: Planted

    @property
    def data_dir(self) -> Path:
        return self.library.data_dir

    @property
    def paths(self) -> list[str]:
        return self.library.paths

    @property
    def taste(self) -> dict[str, float]:
        return self.library.taste

    @property
    def model_id(self) -> str:
        return self.library.model_id

    @property
    def ratings(self) -> dict[str, float]:
        """What the user rated: the first N_RATED files."""
        return self.library.first(N_RATED)


@pytest.fixture
def library(data_dir: Path, cli: Cli) -> Planted:
    return Planted(cli, planted_library(data_dir, N_FILES))


def rate_all(library: Planted, ratings: dict[str, float]) -> None:
    lines = "".join(f"{path}\t{rating}\n" for path, rating in ratings.items())
    result = library.cli("rate", "--stdin", stdin=lines)
    assert result.code == 0 and result.stdout.count("ok") == len(ratings), result.stdout


def records_by_path(data_dir: Path) -> dict[str, dict]:
    with open_store(data_dir) as store:
        return {r["path"]: r for r in present_files(store, "images")}


def test_train_then_predict_produce_the_documented_json_and_rate_every_file(library: Planted) -> None:
    rate_all(library, library.ratings)
    trained = library.cli.json("train", "images", "--seconds", "5")
    assert {"model_version", "winner", "n_ratings", "metrics", "stopped_early", "seconds"} <= set(trained)
    assert trained["model_version"] == 1 and trained["n_ratings"] == N_RATED
    assert set(trained["metrics"]) == CANDIDATES
    for values in trained["metrics"].values():
        assert set(values) == {"mae", "srocc", "pairwise_accuracy"}
    assert trained["winner"] in CANDIDATES and trained["winner"] in trained["reason"]
    assert trained["stopped_early"] is False and trained["seconds"] > 0
    assert trained["embedding_model"] == library.model_id
    assert (library.data_dir / "models" / "images-v1.pt").is_file()
    assert trained["metrics"][trained["winner"]]["srocc"] > 0.5  # the planted taste is learnable

    before = records_by_path(library.data_dir)
    assert all(r["model_rating"] is None for r in before.values())  # train does not predict

    predicted = library.cli.json("predict", "images")
    assert set(predicted) >= {"model_version", "predicted", "seconds"}
    assert predicted["model_version"] == 1 and predicted["predicted"] == N_FILES
    after = records_by_path(library.data_dir)
    assert all(r["model_rating"] is not None and r["model_rating_stale"] is False for r in after.values())
    assert all(0 <= r["model_rating"] <= 10 and r["uncertainty"] >= 0 for r in after.values())
    unrated = [p for p in library.paths if p not in library.ratings]
    correlation = np.corrcoef([library.taste[p] for p in unrated], [after[p]["model_rating"] for p in unrated])[0, 1]
    assert correlation > 0.5  # the files it never saw are rated by the planted taste


def test_predictions_turn_stale_after_retraining_until_predict_runs_again(library: Planted) -> None:
    rate_all(library, library.ratings)
    library.cli.json("train", "images", "--seconds", "2")
    library.cli.json("predict", "images")
    retrained = library.cli.json("train", "images", "--seconds", "2")
    assert retrained["model_version"] == 2
    stale = records_by_path(library.data_dir)
    assert all(r["model_rating_stale"] is True and r["model_version"] == 1 for r in stale.values())

    library.cli.json("predict", "images")
    fresh = records_by_path(library.data_dir)
    assert all(r["model_rating_stale"] is False and r["model_version"] == 2 for r in fresh.values())


def test_rollback_makes_the_older_version_active_and_its_predictions_current(library: Planted) -> None:
    rate_all(library, library.ratings)
    library.cli.json("train", "images", "--seconds", "2")
    library.cli.json("predict", "images")
    library.cli.json("train", "images", "--epochs", "3")
    library.cli.json("predict", "images")

    listed = library.cli.json("models", "versions", "images")
    assert listed["active_version"] == 2
    assert [v["version"] for v in listed["versions"]] == [2, 1]
    assert [v["active"] for v in listed["versions"]] == [True, False]
    assert all(v["predicted"] == N_FILES for v in listed["versions"])

    back = library.cli.json("models", "rollback", "images", "1")
    assert back["model_version"] == 1 and back["previous_version"] == 2
    assert library.cli.json("models", "versions", "images")["active_version"] == 1
    records = records_by_path(library.data_dir)
    assert all(r["model_version"] == 1 and r["model_rating_stale"] is False for r in records.values())

    missing = library.cli("--json", "models", "rollback", "images", "9")
    assert missing.code == 1 and "no images model version 9" in missing.json["error"]["message"]


def test_too_few_ratings_fail_with_exit_1_and_say_to_rate_more(library: Planted) -> None:
    rate_all(library, dict(list(library.ratings.items())[:3]))
    result = library.cli("--json", "train", "images")
    assert result.code == 1
    message = result.json["error"]["message"]
    assert "only 3 images are rated" in message and "rate at least 5" in message

    plain = library.cli("predict", "images")
    assert plain.code == 1  # no model yet: the message goes to stderr


def test_ratings_without_vectors_of_the_active_model_say_to_run_embed(library: Planted, data_dir: Path) -> None:
    rate_all(library, library.ratings)
    with open_store(data_dir) as store:
        store.write(lambda c: c.execute("DELETE FROM embeddings"))
    result = library.cli("--json", "train", "images")
    assert result.code == 1
    assert "embed images" in result.json["error"]["message"]


def test_the_training_set_uses_one_models_vectors_and_maps_choices_to_rows(library: Planted) -> None:
    rate_all(library, dict(list(library.ratings.items())[:6]))
    with open_store(library.data_dir) as store:
        records = {r["path"]: r for r in present_files(store, "images")}
        unrated = [records[p]["content_hash"] for p in library.paths[N_RATED:N_RATED + 2]]
        rated = records[library.paths[0]]["content_hash"]
        save_vectors(store, "another/model", [rated], np.ones((1, 8), dtype=np.float32) / np.sqrt(8))
        store.write(lambda c: c.execute(
            "INSERT INTO preferences VALUES (?, ?, false, 'images', now(), 'user'), (?, ?, true, NULL, now(), 'user')",
            [unrated[0], rated, unrated[1], unrated[0]]))
        hashes, X, y, prefs, fields = training_set(store, "images", library.model_id)
    assert fields is not None and len(fields) == len(hashes) and all("folder" in row for row in fields)
    assert X.shape == (8, DIM)  # 6 rated + 2 known only from A/B choices; the other model's vector is not mixed in
    assert int(np.isfinite(y).sum()) == 6 and np.isnan(y[hashes.index(unrated[0])])
    assert prefs.tolist() == [[hashes.index(unrated[0]), hashes.index(rated), 0],
                              [hashes.index(unrated[1]), hashes.index(unrated[0]), 1]]
    # Rate next passes the vectors of the index it holds in memory: the same training set, no store read.
    asked: list[list[str]] = []
    with open_store(library.data_dir) as store:
        def from_memory(wanted: list[str]) -> tuple[list[str], np.ndarray]:
            asked.append(wanted)
            return hashes, X
        same = training_set(store, "images", library.model_id, vectors=from_memory)
    assert asked == [hashes] and same.hashes == hashes and np.array_equal(same.X, X)
    assert np.array_equal(same.y, y, equal_nan=True) and same.prefs.tolist() == prefs.tolist()


def test_a_train_forwarded_into_the_app_waits_for_the_apps_gpu_lock(library: Planted) -> None:
    import io
    import threading
    import time

    from anagnorisis.cli import run
    from anagnorisis.config import load_settings
    from anagnorisis.session import Session

    rate_all(library, library.ratings)
    settings = load_settings({"data_dir": str(library.data_dir)})
    with open_store(library.data_dir) as store:
        session = Session(settings, store)
        session.gpu_lock = threading.Lock()
        finished: list[int] = []
        session.gpu_lock.acquire()  # the UI is embedding on the GPU
        worker = threading.Thread(target=lambda: finished.append(run(
            ["--data-dir", str(library.data_dir), "--json", "train", "images", "--seconds", "1"],
            stdout=io.StringIO(), stderr=io.StringIO(), store=store, session=session)))
        worker.start()
        time.sleep(1.5)
        assert not finished  # still waiting for its turn
        session.gpu_lock.release()
        worker.join(timeout=60)
        assert finished == [0]
