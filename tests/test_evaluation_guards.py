"""Evaluation that cannot silently mislead: baselines, basket splits, empty rows, settings."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from click.testing import CliRunner

from plugins.cf import CFStrategy
from recommender.cli import main
from recommender.evaluation import (
    COUNT_BASELINE,
    evaluate,
    from_baskets,
    from_long_csv,
    leave_last,
    split_source,
)
from recommender.plugin_manager import make_plugin_manager
from recommender.strategy_settings import _NOT_SETTINGS, registered_settings, settings_markdown

PLUGINS = make_plugin_manager(load_entry_points=False)
DOCS = Path(__file__).resolve().parent.parent / "docs" / "evaluation.md"


@pytest.fixture(scope="module")
def basket_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(11)
    lines = [",".join(f"item{j:02d}" for j in rng.choice(30, rng.integers(2, 8), replace=False))
             for _ in range(600)]
    path = tmp_path_factory.mktemp("baskets") / "baskets.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- basket files -----------------------------------------------------------------------------

def test_a_basket_file_gets_a_working_split_and_says_so(basket_file: Path) -> None:
    split = split_source(from_baskets(basket_file), None)
    assert split.protocol.startswith("basket file, so the split chosen is leave-last")
    assert len(split.users) > 500  # every basket of two or more items is evaluated
    assert (np.diff(split.relevant.indptr) == 1).all()


@pytest.mark.parametrize("options", [{}, {"test_fraction": 0.5}])
def test_a_global_temporal_cut_of_a_basket_file_is_refused(basket_file: Path,
                                                           options: dict) -> None:
    with pytest.raises(ValueError, match="global temporal split of a basket file evaluates "
                                         "nobody"):
        split_source(from_baskets(basket_file), "temporal", **options)


def test_per_customer_temporal_and_random_work_on_baskets(basket_file: Path) -> None:
    source = from_baskets(basket_file)
    assert len(split_source(source, "temporal", per_customer=True).users) > 500
    assert len(split_source(source, "random").users) > 100


def test_leave_last_on_baskets_holds_out_a_seeded_random_item(basket_file: Path) -> None:
    source = from_baskets(basket_file)
    lines = [line.split(",") for line in basket_file.read_text().splitlines()]
    items = source.data.catalog.ids

    def held_positions(seed: int) -> list[int]:
        split = leave_last(source.data, seed=seed)
        out = []
        for row, user in enumerate(split.users.tolist()):
            basket = lines[int(str(source.data.customers[user]).removeprefix("basket")) - 1]
            target = items[split.relevant.indices[split.relevant.indptr[row]]]
            out.append(basket.index(target) == len(basket) - 1)
        return out

    last = held_positions(42)
    share = np.mean(last)
    # Baskets have 2 to 7 items: a random pick is the last one about 30% of the time, never
    # always (as when the file position decided).
    assert 0.15 < share < 0.5, share
    assert held_positions(42) == last
    assert held_positions(7) != last
    assert "ties in time drawn at random, seed 42" in leave_last(source.data).protocol


def test_a_split_that_evaluates_nobody_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "once.csv"  # every customer ordered once: leave-last keeps nobody
    path.write_text("user,item,timestamp\n" + "".join(f"u{i},i{i % 5},{i}\n" for i in range(50)))
    with pytest.raises(ValueError, match="leaves no customer to evaluate"):
        split_source(from_long_csv(path), "leave-last")


def test_cli_on_a_basket_file_exits_non_zero_for_temporal(basket_file: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", "--input", str(basket_file),
                                       "--input-format", "baskets", "--split", "temporal"])
    assert result.exit_code == 2
    assert "evaluates nobody" in result.output


# -- baselines and empty rows -----------------------------------------------------------------

@pytest.fixture(scope="module")
def drifting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Old orders favour a few items, recent ones others: decay and plain counts disagree."""
    rng = np.random.default_rng(3)
    weights = np.linspace(2, 1, 10) / np.linspace(2, 1, 10).sum()
    rows = []
    for user in range(300):
        for t in range(6):
            recent = t >= 4
            pool = range(10, 20) if recent else range(0, 10)
            item = int(rng.choice(list(pool), p=weights))
            rows.append(f"u{user},i{item},{1_600_000_000 + (t * 40 + user % 7) * 86400}")
    path = tmp_path_factory.mktemp("drift") / "orders.csv"
    path.write_text("user,item,timestamp\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="module")
def drift_result(drifting: Path):
    source = from_long_csv(drifting)
    split = split_source(source, "random", seed=1)
    return evaluate(source, split, ["item_similarity"], ks=(5,), bootstrap_samples=0,
                    plugin_manager=PLUGINS)


def test_plain_count_popularity_is_reported_beside_the_decayed_one(drift_result) -> None:
    assert list(drift_result.metrics)[:2] == ["popularity", COUNT_BASELINE]
    assert drift_result.fitted[COUNT_BASELINE]["half_life_days"] is None
    assert drift_result.fitted["popularity"]["half_life_days"] == 30.0
    # Held-out orders are drawn from all times, where old favourites dominate: plain counts
    # find them, the decayed ranking (recent items first) does not.
    plain = drift_result.metrics[COUNT_BASELINE]["precision@5"]
    decayed = drift_result.metrics["popularity"]["precision@5"]
    assert plain > decayed + 0.05, (plain, decayed)


def test_a_row_of_zeros_from_a_strategy_that_cannot_serve_is_flagged(drift_result) -> None:
    assert drift_result.metrics["item_similarity"]["coverage@5"] == 0
    assert any(note.startswith("item_similarity served nothing to any customer at query")
               and "business being acted on" in note for note in drift_result.notes)
    assert not any(note.startswith("popularity") for note in drift_result.notes)


def test_a_raised_support_is_a_note_in_the_table(drifting: Path) -> None:
    result = CliRunner().invoke(main, [
        "evaluate", "--input", str(drifting), "--strategies", "association", "--split",
        "random", "--bootstrap", "0", "--param", "association.min_support=0.001",
        "--param", "association.max_itemsets=20"])
    assert result.exit_code == 0, result.output
    assert re.search(r"note: association: min_support raised from 0\.001 to [0-9.]+ .* "
                     r"itemset cap", result.output), result.output


# -- BPR fold-in ------------------------------------------------------------------------------

def test_bpr_folds_in_by_its_own_objective(sample_data, catalog, tmp_path: Path) -> None:
    bpr = CFStrategy(catalog, model="bpr", factors=8, iterations=40, num_threads=1).fit(
        sample_data)
    assert bpr.item_bias is not None and bpr.item_bias.shape == (len(catalog),)
    rng = np.random.default_rng(0)
    users = rng.choice(sample_data.n_customers, 60, replace=False)

    def objective(x: np.ndarray, held: np.ndarray) -> float:
        s = bpr._y64 @ x + bpr._bias64
        pos = np.zeros(len(s), bool)
        pos[held] = True
        d = s[pos][:, None] - s[~pos][None, :]
        return float(-np.logaddexp(0, -d).mean() - bpr.regularization / 2 * x @ x)

    better = 0
    for user in users.tolist():
        held = sample_data.holdings[user].indices
        if not len(held):
            continue
        folded = bpr.fold_in(held, np.ones(len(held)))
        chol = bpr._system(held, np.ones(len(held)))[0]
        least_squares = scipy.linalg.cho_solve(chol, bpr._y64[held].sum(axis=0))
        assert objective(folded, held) > objective(np.zeros(8), held)
        better += objective(folded, held) >= objective(least_squares, held)
    assert better >= 0.9 * len(users)
    bpr.save(tmp_path)
    loaded = CFStrategy(catalog, model="bpr").load(tmp_path)
    held = sample_data.holdings[int(users[0])].indices
    assert np.array_equal(loaded.fold_in(held, np.ones(len(held))),
                          bpr.fold_in(held, np.ones(len(held))))


# -- every --param key, documented ------------------------------------------------------------

def test_every_constructor_keyword_is_a_listed_setting() -> None:
    from recommender.config import Config
    from recommender.engine import Engine
    from recommender.evaluation.data import synthetic_catalog

    engine = Engine(synthetic_catalog(["x"]), Config.from_dict({}, root=Path.cwd()),
                    store=None, plugin_manager=PLUGINS, model_version="t")
    try:
        expected = {(name, p.name) for name, s in engine.strategies.items()
                    for p in inspect.signature(type(s).__init__).parameters.values()
                    if p.kind == p.KEYWORD_ONLY and p.name not in _NOT_SETTINGS}
    finally:
        engine.close()
    listed = {(s.strategy, s.key) for s in registered_settings(PLUGINS)}
    assert listed == expected
    documented = {(s.strategy, s.key) for s in registered_settings(PLUGINS) if s.description}
    for name in ("cf", "item_similarity", "association", "popularity", "adaptive"):
        assert {k for n, k in expected if n == name} == {k for n, k in documented if n == name}


def test_docs_carry_the_generated_settings_table() -> None:
    text = DOCS.read_text(encoding="utf-8")
    begin, end = "<!-- settings:begin -->\n", "<!-- settings:end -->"
    assert begin in text and end in text
    block = text[text.index(begin) + len(begin):text.index(end)]
    assert block == settings_markdown(registered_settings(PLUGINS)), (
        "docs/evaluation.md is out of date: paste `recommender evaluate --list-params` "
        "between the settings markers")


def test_cli_lists_params_and_refuses_an_unknown_key(tmp_path: Path) -> None:
    listed = CliRunner().invoke(main, ["evaluate", "--list-params"])
    assert listed.exit_code == 0
    assert "| `max_itemsets` | `int \\| None` | `200000` |" in listed.output
    path = tmp_path / "o.csv"
    path.write_text("user,item,timestamp\nu1,a,1\nu1,b,2\nu2,a,3\nu2,c,4\n")
    wrong = CliRunner().invoke(main, ["evaluate", "--input", str(path), "--param",
                                      "cf.factor=16"])
    assert wrong.exit_code == 2
    assert "cf has no setting 'factor'" in wrong.output and "factors" in wrong.output


def test_rules_command_names_its_own_options(tmp_path: Path) -> None:
    path = tmp_path / "dense.csv"
    rng = np.random.default_rng(2)
    path.write_text("\n".join(",".join(f"i{j}" for j in np.flatnonzero(rng.random(25) < 0.8))
                              for _ in range(100)) + "\n")
    result = CliRunner().invoke(main, ["rules", "--baskets", str(path), "--min-support",
                                       "0.05", "--max-itemsets", "1000"])
    assert result.exit_code == 1
    assert "the cap of 1,000 itemsets" in result.output
    assert "raise --min-support or lower --max-len, or raise --max-itemsets" in result.output
    json.dumps(result.output)  # one clean line, no traceback
    assert "Traceback" not in result.output
