"""The rate-next picker, A/B pairs and why (taste/active.py, taste/queue.py) and the CLI's next / prefer / why."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from anagnorisis.store.records import RECORD_KEYS
from anagnorisis.store.vectors import load_vectors
from anagnorisis.taste.active import FeatureSpace, Posterior, propose, propose_pair
from anagnorisis.taste.models import MlpConfig, MlpEnsemble, RidgeModel
from tests.conftest import Cli
from tests.taste.planted_library import open_store, planted_library


def clustered(seed: int = 0, sizes: tuple[int, ...] = (400, 250, 150, 120, 90, 70, 50, 40, 30, 25, 20, 15),
              dim: int = 32, spread: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around len(sizes) random centres of very unequal sizes; (X, cluster label)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    X = centres[labels] + spread * rng.normal(size=(len(labels), dim)) / np.sqrt(dim)
    return X / np.linalg.norm(X, axis=1, keepdims=True), labels


def coverage_cost(X: np.ndarray, picks: np.ndarray) -> float:
    """Mean cosine distance from every item to its nearest pick (lower = the picks cover the data better)."""
    return float(np.mean(1.0 - (X @ X[picks].T).max(axis=1)))


def picker_inputs(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    space = FeatureSpace.fit(X, seed=0)
    features = space.transform(X)
    return features, features[np.random.default_rng(1).choice(len(X), min(2000, len(X)), replace=False)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cold_start_covers_clustered_data_better_than_random_picks(seed: int) -> None:
    X, labels = clustered(seed)
    features, reference = picker_inputs(X)
    k = len(np.unique(labels))
    picks = np.array([p.index for p in propose(features, Posterior(features.shape[1]), reference, k, cold=True)])
    assert len(set(picks)) == k
    rng = np.random.default_rng(100 + seed)
    random_draws = [rng.choice(len(X), k, replace=False) for _ in range(300)]
    random_clusters = np.array([len(set(labels[d])) for d in random_draws])
    random_costs = np.array([coverage_cost(X, d) for d in random_draws])
    # 12 clusters of 15 to 400 items: random picks land mostly in the big ones (about 6 clusters of 12).
    assert len(set(labels[picks])) >= np.percentile(random_clusters, 95)
    assert coverage_cost(X, picks) < np.percentile(random_costs, 5)
    assert coverage_cost(X, picks) < 0.6 * random_costs.mean()


def test_uncertain_files_are_proposed_before_certain_ones() -> None:
    X, labels = clustered(3, sizes=(300, 300, 300), spread=0.3)
    features, reference = picker_inputs(X)
    rated = np.flatnonzero(labels == 0)[:60]  # the user rated 60 files of cluster 0 and nothing else
    posterior = Posterior.fit(features[rated], np.random.default_rng(0).uniform(3, 8, len(rated)))
    candidates = np.setdiff1d(np.arange(len(X)), rated)
    spread_before = posterior.spread(features[candidates])
    picks = propose(features[candidates], posterior, reference, 6, exploit_share=0.0)
    picked_labels = labels[candidates[[p.index for p in picks]]]
    assert all(label != 0 for label in picked_labels), picked_labels
    assert {1, 2} <= set(picked_labels)  # both unexplored clusters, not six files of one
    # Half the prior variance is the linear block, which 60 ratings in one cluster pin down only partly elsewhere.
    assert spread_before[labels[candidates] == 0].mean() < 0.6 * spread_before[labels[candidates] != 0].mean()
    assert all(p.role == "learn" for p in picks)


def test_a_batch_is_diverse_and_keeps_a_share_for_files_you_will_like() -> None:
    X, labels = clustered(4)
    features, reference = picker_inputs(X)
    rated = np.random.default_rng(0).choice(len(X), 40, replace=False)
    ratings = np.where(labels[rated] == 2, 9.0, 3.0)
    posterior = Posterior.fit(features[rated], ratings)
    candidates = np.setdiff1d(np.arange(len(X)), rated)
    picks = propose(features[candidates], posterior, reference, 10)
    roles = [p.role for p in picks]
    assert roles.count("like") == 2 and roles.count("learn") == 8
    liked = [labels[candidates[p.index]] for p in picks if p.role == "like"]
    assert liked == [2, 2]  # the cluster the user rated 9
    chosen = features[candidates[[p.index for p in picks]]]
    similarity = chosen @ chosen.T / np.outer(np.linalg.norm(chosen, axis=1), np.linalg.norm(chosen, axis=1))
    assert similarity[~np.eye(len(picks), dtype=bool)].max() < 0.99  # no near-duplicates in one batch



def test_a_like_pick_is_predicted_in_the_top_tenth_and_the_most_informative_of_those() -> None:
    X, labels = clustered(6)
    features, reference = picker_inputs(X)
    rated = np.random.default_rng(1).choice(len(X), 40, replace=False)
    posterior = Posterior.fit(features[rated], np.where(labels[rated] == 2, 9.0, 3.0))
    candidates = np.setdiff1d(np.arange(len(X)), rated)
    cand = features[candidates]
    predicted = posterior.mean(cand)
    # The best-predicted file is made the best known one too: rating it would teach least.
    predicted[np.argmin(posterior.spread(cand))] = predicted.max() + 1.0
    picks = propose(cand, posterior, reference, 5, predicted=predicted)
    like = [p for p in picks if p.role == "like"]
    assert len(like) == 1 and picks[-1] is like[0]
    top_tenth = np.flatnonzero(predicted >= np.quantile(predicted, 0.9))
    assert like[0].index in top_tenth
    assert like[0].index != int(np.argmax(predicted))
    # Of the top tenth not taken by the four "learn" picks, it has the largest expected variance drop.
    ahead = propose(cand, posterior, reference, 4, predicted=predicted, exploit_share=0.0)
    covariance = posterior.covariance.copy()
    for p in ahead:  # the batch so far, as if rated (noise-scaled units, as the picker counts them)
        phi = cand[p.index]
        covariance -= np.outer(covariance @ phi, covariance @ phi) / (1.0 + phi @ covariance @ phi)
    second_moment = reference.T @ reference / len(reference)
    left = np.setdiff1d(top_tenth, [p.index for p in ahead])
    projected = cand[left] @ covariance
    gain = np.einsum("ij,jk,ik->i", projected, second_moment, projected) / (1 + np.einsum("ij,ij->i", projected, cand[left]))
    assert like[0].index == left[np.argmax(gain)]

def test_preferences_move_predictions_in_the_preferred_direction() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(80, 16)).astype(np.float32)
    y = np.full(80, np.nan)
    y[:30] = np.clip(5 + X[:30, 0] + rng.normal(0, 0.3, 30), 0, 10)
    winner, losers = 40, list(range(41, 49))
    prefs = np.array([(winner, loser, 0) for loser in losers])

    def gap(model) -> float:
        predicted = model.predict(X)[0]
        return float(predicted[winner] - predicted[losers].mean())

    assert gap(RidgeModel().fit(X, y, prefs)) > gap(RidgeModel().fit(X, y)) + 0.2
    config = MlpConfig(members=2)
    assert gap(MlpEnsemble(config, seed=0).fit(X, y, prefs)) > gap(MlpEnsemble(config, seed=0).fit(X, y)) + 0.2
    space = FeatureSpace.fit(X)
    F = space.transform(X)
    with_choices = Posterior.fit(F[:30], y[:30], F[[winner] * len(losers)] - F[losers], np.ones(len(losers)))
    without = Posterior.fit(F[:30], y[:30])
    assert (with_choices.mean(F[[winner]])[0] - with_choices.mean(F[losers]).mean()
            > without.mean(F[[winner]])[0] - without.mean(F[losers]).mean() + 0.2)


def test_a_pair_has_close_predictions_and_is_never_a_pair_already_asked() -> None:
    X, labels = clustered(6, sizes=(200, 200))
    features, reference = picker_inputs(X)
    rated = np.r_[np.flatnonzero(labels == 0)[:20], np.flatnonzero(labels == 1)[:20]]
    ratings = np.r_[np.full(20, 2.0), np.full(20, 8.0)]
    posterior = Posterior.fit(features[rated], ratings)
    pool = np.setdiff1d(np.arange(len(X)), rated)
    a, b, _ = propose_pair(features[pool], features[pool], posterior, reference,
                           excluded=np.eye(len(pool), dtype=bool))
    mean = posterior.mean(features[pool])
    assert a != b and abs(mean[a] - mean[b]) < 1.5  # not a foregone 2-vs-8 question
    excluded = np.eye(len(pool), dtype=bool)
    excluded[a, b] = excluded[b, a] = True
    again = propose_pair(features[pool], features[pool], posterior, reference, excluded=excluded)
    assert again is not None and {again[0], again[1]} != {a, b}
    jittered = {propose_pair(features[pool], features[pool], posterior, reference, excluded=excluded,
                             rng=np.random.default_rng(seed))[:2] for seed in range(1, 6)}
    assert len(jittered) > 1  # a skipped question is followed by a different one


# ---------------------------------------------------------------- the CLI


@pytest.fixture
def library(data_dir: Path):
    return planted_library(data_dir, 40)


def test_next_proposes_unrated_files_with_reasons_and_changes_after_rating(library, cli: Cli) -> None:
    cold = cli.json("next", "images", "--n", "6")
    assert cold["cold_start"] is True and cold["n_ratings"] == 0 and len(cold["results"]) == 6
    for item in cold["results"]:
        assert set(RECORD_KEYS) <= set(item) and item["reason"] and item["role"] == "cover"
    lines = "".join(f"{path}\t{library.taste[path]}\n" for path in library.paths[:12])
    assert cli("rate", "--stdin", stdin=lines).code == 0
    warm = cli.json("next", "images", "--n", "10")
    assert warm["cold_start"] is False and warm["n_ratings"] == 12
    proposed = [item["path"] for item in warm["results"]]
    assert len(proposed) == len(set(proposed)) == 10
    assert not set(proposed) & set(library.paths[:12])
    assert {item["role"] for item in warm["results"]} == {"learn", "like"}
    everything = cli.json("next", "images", "--n", "500")
    assert len(everything["results"]) == 40 - 12


def test_next_refuses_bad_arguments(library, cli: Cli) -> None:
    assert cli("next", "pictures").code == 2
    assert cli("next", "images", "--n", "0").code == 2


def test_prefer_stores_the_choice_and_refuses_nonsense(library, cli: Cli, data_dir: Path) -> None:
    a, b, c = library.paths[:3]
    chosen = cli.json("prefer", a, b)["preference"]
    assert chosen["winner_hash"] == library.hashes[a] and chosen["loser_hash"] == library.hashes[b]
    assert chosen["tie"] is False and chosen["kind"] == "images"
    assert cli.json("prefer", b, c, "--tie")["preference"]["tie"] is True
    assert cli("prefer", a, a).code == 2
    outside = data_dir.parent / "elsewhere.jpg"
    outside.write_bytes(Path(a).read_bytes())
    assert cli("prefer", a, str(outside)).code == 2
    with open_store(data_dir) as store:
        rows = store.read(lambda c_: c_.execute(
            "SELECT winner_hash, loser_hash, tie, kind, source FROM preferences ORDER BY chosen_at").fetchall())
    assert rows == [(library.hashes[a], library.hashes[b], False, "images", "user"),
                    (library.hashes[b], library.hashes[c], True, "images", "user")]


def test_why_returns_the_true_nearest_rated_neighbours(library, cli: Cli, data_dir: Path) -> None:
    rated = library.paths[:15]
    for path in rated:
        assert cli("rate", path, str(library.taste[path])).code == 0
    target = library.paths[30]
    document = cli.json("why", target)
    assert document["record"]["path"] == target and document["n_rated"] == 15
    with open_store(data_dir) as store:
        hashes, X = load_vectors(store, library.model_id, [library.hashes[p] for p in rated] + [library.hashes[target]])
    vectors = dict(zip(hashes, X / np.linalg.norm(X, axis=1, keepdims=True)))
    truth = sorted(((float(vectors[library.hashes[p]] @ vectors[library.hashes[target]]), p) for p in rated),
                   reverse=True)[:10]
    assert [n["path"] for n in document["neighbours"]] == [p for _, p in truth]
    for neighbour, (similarity, path) in zip(document["neighbours"], truth):
        assert neighbour["similarity"] == pytest.approx(similarity, abs=1e-5)
        assert neighbour["user_rating"] == library.taste[path]
    assert json.dumps(document)  # one JSON object



PROBE = """
import io, json, sys
from anagnorisis.cli import run
paths = sys.argv[2:]
for args in (["next", "images", "--n", "5"], ["why", paths[-1]]):
    out = io.StringIO()
    assert run(["--data-dir", sys.argv[1], "--json", *args], stdout=out) == 0, out.getvalue()
    assert json.loads(out.getvalue())
print(json.dumps(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))))
"""


def test_rate_next_and_why_answer_without_importing_torch(library, cli: Cli, data_dir: Path) -> None:
    """Rate next and why run on numpy and scipy alone; torch (~200 MB of RSS) is loaded only to train or to read a
    model file, so the app's memory stays low until then (SPEC §9)."""
    lines = "".join(f"{path}\t{library.taste[path]}\n" for path in library.paths[:12])
    assert cli("rate", "--stdin", stdin=lines).code == 0
    done = subprocess.run([sys.executable, "-c", PROBE, str(data_dir), *library.paths[:13]], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_next_and_why_say_what_is_missing_instead_of_failing_silently(data_dir: Path, cli: Cli) -> None:
    from tests.taste.planted_library import write_photos

    empty = cli.json("next", "images")
    assert empty["results"] == [] and "embed" in empty["message"]
    photos = write_photos(data_dir, 3)
    assert cli("scan", "images").code == 0
    not_embedded = cli("--json", "why", photos[0])
    assert not_embedded.code == 1
    assert "embed" in json.loads(not_embedded.stdout)["error"]["message"]
    assert cli("embed", "images").code == 0
    explained = cli.json("why", photos[0])
    assert explained["neighbours"] == [] and explained["n_rated"] == 0
    for photo in photos:
        assert cli("rate", photo, "5").code == 0
    done = cli.json("next", "images")
    assert done["results"] == [] and "rated already" in done["message"]
    assert cli.json("why", photos[0])["n_rated"] == 2  # the file itself is never its own neighbour


def test_a_library_of_one_file_proposes_it_until_rated_then_nothing(data_dir: Path, cli: Cli) -> None:
    """One embedded file leaves nothing to fit the picker's feature map on: the queue is that file, then empty."""
    from tests.taste.planted_library import write_photos

    (photo,) = write_photos(data_dir, 1)
    assert cli("scan", "images").code == 0 and cli("embed", "images").code == 0
    first = cli.json("next", "images", "--n", "5")
    assert [item["path"] for item in first["results"]] == [photo] and first["cold_start"] is True
    assert first["results"][0]["role"] == "cover" and first["results"][0]["reason"]
    assert cli("rate", photo, "7").code == 0
    after = cli.json("next", "images")
    assert after["results"] == [] and after["n_ratings"] == 1 and "rated already" in after["message"]
    assert cli.json("why", photo)["n_rated"] == 0
    assert cli("--json", "prefer", photo, photo).code == 2
