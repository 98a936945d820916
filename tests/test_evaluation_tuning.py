"""Ratings files: every customer evaluated, and settings chosen by validation inside the
training data only, the defaults first, what the run fixes kept, and the served CF level with
``implicit``'s own."""

from __future__ import annotations

import dataclasses
import functools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

from plugins.cf import CFStrategy
from recommender.cli import main
from recommender.config import Config
from recommender.errors import PluginError
from recommender.evaluation import EvalData, evaluate, from_movielens, make_split, split_source
from recommender.evaluation.tuning import (
    LADDER_START,
    Validation,
    cf_search,
    ladder,
    tune,
)
from recommender.plugin_manager import make_plugin_manager

PLUGINS = make_plugin_manager(load_entry_points=False)
BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "eval_ratings.py"
CUSTOMERS = 150


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MovieLens-like ``u.data``: customers of three tastes each rate 15 to 40 of 60 items,
    mostly of their taste and the popular ones, most in one sitting a minute apart."""
    rng = np.random.default_rng(5)
    popularity = 1.0 / np.arange(1, 21) ** 0.7
    rows = []
    for user in range(CUSTOMERS):
        taste = user % 3
        weights = np.tile(popularity, 3) * np.where(np.arange(60) // 20 == taste, 6.0, 1.0)
        n = int(rng.integers(15, 41))
        items = rng.choice(60, n, replace=False, p=weights / weights.sum())
        gap = 60 if rng.random() < 0.7 else 86_400 * 7
        start = 880_000_000 + int(rng.integers(0, 10_000_000))
        rows += [f"{user + 1}\t{item + 1}\t{int(rng.integers(1, 6))}\t{start + i * gap}\n"
                 for i, item in enumerate(items)]
    path = tmp_path_factory.mktemp("ratings") / "u.data"
    path.write_text("".join(rows))
    return path


@pytest.fixture(scope="module")
def ratings(ratings_file: Path) -> EvalData:
    return from_movielens(ratings_file)


def inner(split):
    return functools.partial(make_split, **{**split.recipe, "seed": split.recipe["seed"] + 1})


# -- the split --------------------------------------------------------------------------------

def test_a_ratings_file_is_split_at_random_per_customer_and_says_why(ratings: EvalData) -> None:
    split = split_source(ratings, None)
    assert split.protocol.startswith("ratings file, so the split chosen is random per customer")
    assert len(split.users) == CUSTOMERS  # everyone, not only those rating after a time cut
    ratings_per_customer = np.diff(ratings.data.holdings.indptr)[split.users]
    assert np.array_equal(np.diff(split.relevant.indptr),
                          np.floor(ratings_per_customer * 0.2).astype(int))


@pytest.mark.parametrize(("kind", "per_customer", "start"), [
    ("temporal", False, "temporal, global cut"),
    ("temporal", True, "temporal per customer"),
    ("random", False, "random holdout")])
def test_a_split_asked_for_is_the_split_made(ratings: EvalData, kind: str, per_customer: bool,
                                             start: str) -> None:
    assert split_source(ratings, kind, per_customer=per_customer).protocol.startswith(start)


# -- tuning -----------------------------------------------------------------------------------

def searched(fixed: dict, precision) -> tuple[list[dict], dict | None]:
    """The candidates ``cf_search`` tries when a candidate's per-customer precision is
    ``precision(candidate)``, and its choice."""
    tried: list[dict] = []

    def score(candidate: dict) -> Validation:
        tried.append(candidate)
        return Validation(np.asarray(precision(candidate), dtype=float))

    return tried, cf_search(fixed, score)


def peaked(at: float, spread: float = 1.0):
    """Precision of 400 customers peaking where log2(regularization) is log2(at)."""
    noise = np.random.default_rng(0).normal(0, 0.01, 400)

    def precision(candidate: dict) -> np.ndarray:
        reg = candidate.get("regularization", 0.1)
        return 0.3 - 0.02 * (np.log2(reg / at) / spread) ** 2 + noise
    return precision


def test_the_defaults_are_the_first_candidate() -> None:
    defaults = CFStrategy(None)  # type: ignore[arg-type]
    tried, _ = searched({}, peaked(20.0))
    assert tried[0] == {"factors": defaults.factors, "regularization": defaults.regularization}
    bpr = CFStrategy(None, model="bpr")  # type: ignore[arg-type]
    tried, _ = searched({"model": "bpr"}, peaked(20.0))
    assert tried[0] == {"factors": bpr.factors, "learning_rate": bpr.learning_rate}


@pytest.mark.parametrize("at", [0.625, 2.5, 10.0, 80.0, 640.0, 10240.0])
def test_the_regularisation_ladder_finds_the_best_rung_wherever_it_is(at: float) -> None:
    """A fixed grid ending at 80 could not reach the best regularisation of larger data."""
    calls = []

    def score(candidate: dict) -> Validation:
        calls.append(candidate)
        return Validation(peaked(at)(candidate))

    best, _ = ladder(score, {"factors": 64}, "regularization", LADDER_START)
    assert best == at
    rungs = abs(np.log2(at / LADDER_START))
    assert len(calls) <= rungs + 5  # the start, the rungs to it, two beyond, two the other way


def test_the_search_takes_a_later_step_only_when_it_beats_the_noise() -> None:
    """BM25 ahead by a hair on this sample is chance (its customers disagree by 0.1 either
    way: a standard error of 0.005); ahead by far, it is taken."""
    swing = np.resize([0.1, -0.1], 400)
    for lead, taken in ((0.0005, False), (0.03, True)):
        def precision(candidate: dict, lead: float = lead) -> np.ndarray:
            bonus = lead + swing if candidate.get("weighting") == "bm25" else 0.0
            return peaked(20.0)(candidate) + bonus
        _, chosen = searched({}, precision)
        assert (chosen.get("weighting") == "bm25") is taken, lead
        assert chosen["regularization"] == 20.0 and chosen["factors"] == 64


@pytest.mark.parametrize(("mine", "theirs", "beats"), [
    ([0.3] * 50, [0.3] * 50, False),
    ([0.4] * 50, [0.3] * 50, True),
    ([0.4], [0.3], False),  # one customer: no noise to measure
    (np.r_[[1.0] * 26, [0.0] * 24], np.r_[[0.0] * 24, [1.0] * 26], False),
])
def test_a_lead_counts_only_beyond_one_standard_error(mine, theirs, beats: bool) -> None:
    assert Validation(np.asarray(mine)).beats(Validation(np.asarray(theirs))) is beats


def test_tuning_never_sees_the_test_split(ratings: EvalData) -> None:
    split = split_source(ratings, None)
    grid = [{"factors": 4}, {"factors": 8, "regularization": 5.0}]
    seen = tune(CFStrategy, "cf", {}, split, inner(split), grid=grid)
    scrambled = dataclasses.replace(split, users=split.users[::-1].copy(),
                                    relevant=sp.csr_matrix(split.relevant.shape))
    assert tune(CFStrategy, "cf", {}, scrambled, inner(split), grid=grid) == seen
    assert seen.customers > 100 and len(seen.tried) == 2


def test_the_best_validation_score_wins_and_a_tie_keeps_the_earlier(ratings: EvalData) -> None:
    split = split_source(ratings, None)
    # context_weight only counts with a business being acted on: the same lists at query.
    grid = [{"factors": 8}, {"factors": 8, "context_weight": 3.0}, {"factors": 2}]
    found = tune(CFStrategy, "cf", {}, split, inner(split), grid=grid)
    scores = [score for _, score in found.tried]
    assert scores[0] == scores[1]
    assert found.chosen == (grid[0] if scores[0] >= scores[2] else grid[2])
    assert "chosen by validation inside the training data" in found.note()


@pytest.mark.parametrize(("fixed", "keys"), [
    ({"factors": 16}, {"regularization", "weighting", "alpha"}),
    ({"factors": 16, "weighting": "none", "alpha": 1.0}, {"regularization"}),
    ({"factors": 16, "regularization": 1.0}, {"weighting", "alpha"}),
    ({"weighting": "bm25"}, {"factors", "regularization", "alpha"}),
    ({"model": "bpr"}, {"factors", "learning_rate"}),
    ({"model": "bpr", "learning_rate": 0.02}, {"factors"})])
def test_what_the_run_fixes_is_not_tuned(ratings: EvalData, fixed: dict, keys: set) -> None:
    split = split_source(ratings, None)
    found = tune(CFStrategy, "cf", fixed, split, inner(split))
    assert {key for candidate, _ in found.tried for key in candidate} == keys


def test_nothing_left_to_tune_tunes_nothing(ratings: EvalData) -> None:
    split = split_source(ratings, None)
    assert tune(CFStrategy, "cf", {"factors": 8, "regularization": 1.0, "weighting": "none",
                                   "alpha": 1.0}, split, inner(split)) is None


def test_too_few_customers_to_validate_on_keep_the_defaults_and_say_so(tmp_path: Path) -> None:
    """A basket's items share one time: once one is held out, the rest cannot be split again."""
    from recommender.evaluation import from_baskets

    rng = np.random.default_rng(2)
    path = tmp_path / "b.csv"
    path.write_text("".join(",".join(f"i{j}" for j in rng.choice(20, 4, replace=False)) + "\n"
                            for _ in range(200)))
    source = from_baskets(path)
    result = evaluate(source, split_source(source, None), ["cf"], ks=(5,),
                      bootstrap_samples=0, plugin_manager=PLUGINS)
    assert any(note.startswith("cf: settings not tuned, defaults kept: the same split applied "
                               "to the training data leaves 0 customers") for note in result.notes)
    assert result.fitted["cf"]["factors"] == 8


def test_public_data_is_tuned_and_the_report_says_with_what(ratings: EvalData) -> None:
    split = split_source(ratings, None)
    tuned = evaluate(ratings, split, ["cf"], ks=(10,), bootstrap_samples=0,
                     plugin_manager=PLUGINS)
    note = next(n for n in tuned.notes if n.startswith("cf: "))
    chosen = dict(re.findall(r"(\w+)=([\d.]+)", note.split(" chosen by")[0]))
    assert float(chosen["factors"]) == tuned.fitted["cf"]["factors"]
    assert float(chosen["regularization"]) == tuned.fitted["cf"]["regularization"]
    plain = evaluate(ratings, split, ["cf"], ks=(10,), bootstrap_samples=0,
                     plugin_manager=PLUGINS, tune=False)
    assert not plain.notes and plain.fitted["cf"]["factors"] == 8


def test_a_bad_fixed_setting_is_refused_naming_it(ratings: EvalData) -> None:
    raw = {"strategies": {"cf": {"regularization": -1}}}
    source = dataclasses.replace(ratings, config=Config.from_dict(raw, root=Path.cwd()))
    # Refused where the engine builds the strategy, before any tuning or fitting.
    with pytest.raises((ValueError, PluginError),
                       match="regularization must be a number > 0, got -1"):
        evaluate(source, split_source(source, None), ["cf"], ks=(5,), bootstrap_samples=0,
                 plugin_manager=PLUGINS)


def test_the_default_command_on_a_ratings_file(ratings_file: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", "--input", str(ratings_file),
                                       "--input-format", "movielens", "--bootstrap", "0"])
    assert result.exit_code == 0, result.output
    assert "split: ratings file, so the split chosen is random per customer" in result.output
    assert f"customers_evaluated: {CUSTOMERS}\n" in result.output
    assert re.search(r"note: cf: factors=\d+, regularization=[\d.]+ chosen by validation",
                     result.output)


def test_the_served_cf_is_level_with_implicits_own_recommend(ratings_file: Path) -> None:
    """benchmarks/eval_ratings.py: ALS through the engine's fold-in against implicit's fitted
    user factors, on the same split and matrix: the exact least-squares step, so level. BPR's
    fold-in solves BPR's objective against fixed item factors where implicit fits the user
    jointly: above it on MovieLens 100k, 0.88 of it here; the least-squares step on BPR's
    factors, the fold-in it replaced, scores 0.63 of it here (BPR on one thread both sides, so
    the figures are reproducible)."""
    result = subprocess.run([sys.executable, str(BENCH), str(ratings_file)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = {cells[0]: (float(cells[2]), float(cells[3])) for cells in (
        [c.strip() for c in line.strip("|").split("|")]
        for line in result.stdout.splitlines() if line.startswith(("| ALS", "| BPR")))}
    assert set(rows) == {"ALS, defaults", "ALS, tuned", "ALS, BM25, tuned", "BPR, defaults",
                         "BPR, tuned"}
    for model, (served, library) in rows.items():
        assert served >= (0.97 if model.startswith("ALS") else 0.8) * library, model
    assert "reference, EASE" in result.stdout
