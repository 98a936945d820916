"""Evaluation end to end: through the engine, on the store and on public formats, with the CLI
contract data scientists script against."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import dataset

from recommender.cli import main
from recommender.errors import ImportRowError
from recommender.evaluation import (
    Blend,
    from_baskets,
    from_long_csv,
    from_movielens,
    from_workspace,
    html_report,
    make_split,
)
from recommender.evaluation import evaluate as run_evaluation
from recommender.hookspecs import hookimpl
from recommender.plugin_manager import make_plugin_manager
from recommender.strategy import Candidate, Strategy

PLUGINS = make_plugin_manager(load_entry_points=False)


@pytest.fixture(scope="module")
def store_result(sample_workspace):
    source = from_workspace(sample_workspace.root)
    split = make_split(source.data, "temporal", test_fraction=0.2)
    return run_evaluation(source, split, ["cf", "association", "cf:1+association:0.5"],
                          ks=(5, 10), moments=("query", "success"), bootstrap_samples=200,
                          plugin_manager=PLUGINS)


def test_popularity_is_always_the_baseline(store_result):
    assert list(store_result.metrics) == ["popularity", "popularity_count", "cf", "association",
                                          "cf:1+association:0.5"]


def test_the_workspace_is_evaluated_with_its_own_settings_untuned(store_result):
    """What is served is what the configuration says: no setting chosen by the evaluation."""
    assert not any("chosen by validation" in note for note in store_result.notes)
    assert store_result.fitted["cf"]["factors"] == 8


def test_served_output_never_violates_eligibility(store_result):
    for values in store_result.metrics.values():
        assert values["eligibility_violations@10"] == 0.0
        assert values["coverage@10"] > 0


def test_a_learned_blend_covers_more_and_leans_less_on_the_popular(store_result):
    """What users of peer systems complain of: lists that collapse to the most popular.
    (Accuracy is reported, not asserted: on all orders, top-ups make popularity strong.)"""
    blend, popularity = store_result.metrics["cf:1+association:0.5"], \
        store_result.metrics["popularity"]
    assert blend["coverage@10"] > popularity["coverage@10"]
    assert blend["popularity_bias@10"] < popularity["popularity_bias@10"]
    assert blend["ndcg@10"] > store_result.metrics["association"]["ndcg@10"]


def test_intervals_slices_and_moments(store_result):
    low, high = store_result.intervals["cf"]["ndcg@10"]
    assert low <= store_result.metrics["cf"]["ndcg@10"] <= high
    slices = store_result.slices["cf"]
    assert any(s.startswith("channel=") for s in slices)
    assert {"segment=high", "segment=mid", "segment=low"} <= set(slices)
    assert "ndcg@10" in slices["moment=success"]
    assert sum(v["customers"] for k, v in slices.items() if k.startswith("segment=")) == \
        store_result.protocol["customers_evaluated"]


def test_json_maps_each_strategy_to_metrics_by_name_and_k(store_result):
    out = store_result.to_json()
    assert set(out) == set(store_result.metrics)
    for values in out.values():
        assert {"precision@5", "recall@10", "ndcg@10", "map@10", "mrr@5",
                "hit_rate@10"} <= set(values)
        assert all(isinstance(v, float | int) for v in values.values())
        assert values["ndcg@10_ci_low"] <= values["ndcg@10"] <= values["ndcg@10_ci_high"]


def test_html_report_is_self_contained_with_plots(store_result):
    page = html_report(store_result)
    assert page.count("data:image/png;base64,") == 2
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")
    assert "popularity" in page and "temporal" in page


@pytest.mark.parametrize(("spec", "weights"), [
    ("cf", {"cf": 1.0}), ("cf+association", {"cf": 1.0, "association": 1.0}),
    ("cf:0.7+association:0.3", {"cf": 0.7, "association": 0.3})])
def test_blend_syntax(spec, weights):
    assert Blend.parse(spec).weights == weights


@pytest.mark.parametrize(("spec", "message"), [
    ("cf:x", "not a number"), ("cf:-1", "must be positive"), ("+cf", "empty strategy")])
def test_bad_blends_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        Blend.parse(spec)


def test_unknown_strategy_names_the_registered_ones(sample_workspace):
    source = from_workspace(sample_workspace.root)
    split = make_split(source.data, "random", seed=1)
    with pytest.raises(ValueError, match="unknown strategy 'magic'.*registered: adaptive, "
                                         "alternatives, association"):
        run_evaluation(source, split, ["magic"], plugin_manager=PLUGINS)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class SlowStrategy(Strategy):
    """Fast, but over the default ``fast_strategy_ms`` once in 25 calls: a live request would
    then send it back to the pool with a warning."""
    name = "slow"
    calls = 0

    def candidates(self, context, n):
        self.calls += 1
        if self.calls % 25 == 0:
            time.sleep(0.008)
        return [Candidate(self.catalog.ids[0], 1.0, "first")]


class SlowPlugin:
    @hookimpl
    def register_strategies(self, catalog):
        strategy = SlowStrategy()
        strategy.catalog = catalog
        return [strategy]


def test_an_offline_run_does_not_warn_of_slow_calls(tmp_path, caplog):
    """A slow call only matters to a live request: evaluating a slow strategy runs it to the
    end of every call and the report is not buried under a warning per call."""
    rows = "".join(f"{u}\t{i}\t5\t{880_000_000 + u * 100 + i}\n"
                   for u in range(1, 41) for i in range(1 + u % 3, 8 + u % 3))
    source = from_movielens(write(tmp_path / "u.data", rows))
    plugins = make_plugin_manager(extra_plugins=[("slow", SlowPlugin())],
                                  load_entry_points=False)
    with caplog.at_level(logging.WARNING, logger="recommender"):
        result = run_evaluation(source, make_split(source.data, "random", seed=1), ["slow"],
                                ks=(5,), bootstrap_samples=0, plugin_manager=plugins,
                                tune=False)
    assert result.metrics["slow"]["precision@5"] >= 0
    assert [r.getMessage() for r in caplog.records] == []


def test_movielens_and_long_csv_give_the_same_data(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(u, i, int(t)) for u in range(40) for i, t in zip(
        rng.choice(30, 8, replace=False), rng.integers(8e8, 9e8, 8), strict=True)]
    ml = write(tmp_path / "u.data", "".join(f"{u}\t{i}\t4\t{t}\n" for u, i, t in rows))
    csv = write(tmp_path / "log.csv", "user,item,timestamp\n" + "".join(
        f"{u},{i},{t}\n" for u, i, t in rows))
    a, b = from_movielens(ml).data, from_long_csv(csv, weight=None).data
    assert (a.holdings != b.holdings).nnz == 0
    assert np.array_equal(a.events.ts, b.events.ts)
    assert a.n_customers == 40 and a.n_products <= 30


@pytest.mark.parametrize(("text", "line", "column"), [
    ("user,item\nu1,i1\n", 1, "timestamp"),
    ("user,item,timestamp\nu1,i1,yesterday\n", 2, "timestamp"),
    ("user,item,timestamp,weight\nu1,i1,5,many\n", 2, "weight"),
    ("user,item,timestamp\nu1\n", 2, None),
])
def test_bad_csv_rows_name_the_line_and_column(tmp_path, text, line, column):
    with pytest.raises(ImportRowError) as info:
        from_long_csv(write(tmp_path / "bad.csv", text))
    assert info.value.line == line and info.value.column == column


def test_iso_dates_and_non_positive_weights(tmp_path):
    path = write(tmp_path / "log.csv", "user,item,timestamp,weight\n"
                 "u1,a,2011-12-01 08:45:00,3\nu1,b,2011-12-02 08:45:00,-1\n"
                 "u2,a,1322729100,1\n,c,5,1\n")
    source = from_long_csv(path)
    assert source.skipped_rows == 2 and source.n_orders == 2
    assert sorted(source.data.events.ts.tolist()) == [1322729100, 1322729100]


def test_groceries_rule_counts_through_the_evaluation_path():
    """Baskets file -> evaluation data -> the association strategy as registered."""
    source = from_baskets(dataset("groceries", "groceries.csv"))
    assert source.data.n_customers == 9835 and source.data.n_products == 169
    from plugins.association import AssociationStrategy

    for confidence, expected in ((0.5, 5668), (0.8, 410)):
        strategy = AssociationStrategy(source.data.catalog, min_support=0.001,
                                       min_confidence=confidence, min_lift=0.0, max_len=None)
        assert strategy.fit(source.data).describe()["rules"] == expected


def test_cli_contract_on_baskets(tmp_path):
    rng = np.random.default_rng(3)
    lines = [",".join(f"item{j}" for j in rng.choice(25, rng.integers(2, 7), replace=False))
             for _ in range(400)]
    baskets = write(tmp_path / "b.txt", "\n".join(lines) + "\n")
    # A workspace's reports/ folder does not exist until the first report: made on the way.
    out, page = tmp_path / "reports" / "r.json", tmp_path / "reports" / "html" / "r.html"
    result = CliRunner().invoke(main, [
        "evaluate", "--input", str(baskets), "--input-format", "baskets", "--split", "random",
        "--test-fraction", "0.3", "--seed", "5", "--k", "3,5", "--strategies",
        "association,cf+association", "--bootstrap", "50", "--param",
        "association.min_support=0.01", "--json", str(out), "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert "random holdout, seed 5" in result.output
    body = json.loads(out.read_text())
    assert list(body) == ["popularity", "popularity_count", "association", "cf+association"]
    assert {"ndcg@3", "ndcg@5", "map@5", "coverage@5"} <= set(body["association"])
    assert body["association"]["fit_min_support"] == 0.01
    assert "data:image/png" in page.read_text()


@pytest.mark.parametrize(("args", "message"), [
    ([], "exactly one of --dir and --input"),
    (["--input", "{f}", "--k", "0"], "at least 1"),
    (["--input", "{f}", "--k", "ten"], "comma-separated list of integers"),
    (["--input", "{f}", "--strategies", "magic"], "unknown strategy"),
    (["--input", "{f}", "--moments", "transaction"], "needs the business"),
    (["--input", "{f}", "--param", "cf"], "STRATEGY.KEY=VALUE"),
    (["--input", "{f}", "--k", ","], "Invalid value for --k: give at least one cutoff"),
    (["--input", "{f}", "--param", "cf.factors=abc"],
     "Invalid value for --param: cf.factors: factors must be an integer >= 1, got 'abc'"),
    (["--input", "{f}", "--param", "association.min_support=-1"],
     "Invalid value for --param: association.min_support:"),
    (["--input", "{f}", "--param", "propensity.c=-1"],
     "Invalid value for --param: propensity.c: c must be"),
    (["--input", "{f}", "--json", "{f}/r.json"], "Invalid value for --json: cannot make the "
                                                 "folder"),
    (["--input", "{f}", "--html", "{f}/x/r.html"], "Invalid value for --html"),
    (["--input", "{f}", "--json", "{d}"], "is a directory"),
    (["--input", "{f}", "--from-csv", "{d}", "--json", "{d}/new/r.json"], "--from-csv needs"),
])
def test_cli_refuses_bad_options_clearly(tmp_path, args, message):
    f = write(tmp_path / "b.txt", "a,b\nb,c\na,c\na,b,c\n" * 20)
    result = CliRunner().invoke(main, ["evaluate", "--input-format", "baskets", *[
        a.replace("{f}", str(f)).replace("{d}", str(tmp_path)) for a in args]])
    assert result.exit_code != 0
    assert message.replace("{d}", str(tmp_path)) in result.output
    assert not (tmp_path / "new").exists()  # nothing made for a run that was refused
    if "--json" in message or "--html" in message:
        assert "loading" not in result.output  # refused before the run, not after it


def test_project_csv_files_evaluate_exactly_like_the_store(sample_workspace, tmp_path):
    from recommender.csvimport import export_csv

    with sample_workspace.store() as store:
        for table in ("customers", "terminals", "holdings", "events"):
            export_csv(store, table, tmp_path / f"{table}.csv")
    runs = []
    for extra in ([], ["--from-csv", str(tmp_path)]):
        out = tmp_path / f"r{len(runs)}.json"
        result = CliRunner().invoke(main, [
            "evaluate", "--dir", str(sample_workspace.root), *extra, "--k", "5",
            "--strategies", "cf", "--bootstrap", "0", "--max-users", "150",
            "--json", str(out)])
        assert result.exit_code == 0, result.output
        runs.append({name: {k: v for k, v in values.items()
                            if k != "fit_seconds" and not k.startswith("online_")}
                     for name, values in json.loads(out.read_text()).items()})
    assert runs[0] == runs[1]  # (the CSV files carry no feedback log: no online figures)


def test_online_funnel_from_the_feedback_log(sample_workspace):
    """The sample operator's feedback log has planted rates: association converts best,
    popularity worst; the funnel recovers them and the JSON carries them per strategy."""
    from recommender.evaluation import funnel

    with sample_workspace.store() as store:
        rows = {(r["by"], r["value"]): r for r in funnel(store)}
        total = store.count("feedback")
    everything = rows[("all", "all")]
    assert everything["impressions"] + everything["clicks"] + everything["accepts"] + \
        everything["dismissals"] == total
    assert everything["clicks"] >= everything["accepts"] > 0
    ctr = {s: rows[("strategy", s)]["ctr"] for s in ("association", "popularity")}
    assert ctr["association"] > ctr["popularity"]
    for row in rows.values():
        assert row["ctr"] == pytest.approx(row["clicks"] / row["impressions"])
