"""Collaborative filtering and item similarity on the sample operator.

Fold-in must match implicit's own least-squares step, the planted patterns must be found, new
customers must be served from their holdings, models must round-trip, and on held-out orders
CF must beat popularity.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from plugins import cf as cf_plugin
from plugins.cf import CFStrategy, ItemSimilarityStrategy
from plugins.popularity import PopularityStrategy
from recommender import (
    CHANNEL_IDS,
    Catalog,
    Channel,
    Config,
    Customer,
    ModelError,
    Moment,
    RequestContext,
    Store,
    Terminal,
    TrainingData,
    sampledata,
)
from recommender.training import MOMENTS, TIERS

CUSTOMERS = 2000
SEED = 7
INTL_PACKS = {"intl_data_daypass", "intl_sms", "intl_ld_pack"}
CATALOG_PATH = Path(sampledata.__file__).parent / "sample" / "catalog.toml"


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog.from_toml(CATALOG_PATH)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, cat: Catalog) -> Iterator[Store]:
    with Store(tmp_path_factory.mktemp("cf") / "store.sqlite") as store:
        sampledata.generate(store, cat, customers=CUSTOMERS, seed=SEED)
        yield store


@pytest.fixture(scope="module")
def data(store: Store, cat: Catalog) -> TrainingData:
    return TrainingData.from_store(store, cat)


@pytest.fixture(scope="module")
def als(cat: Catalog, data: TrainingData) -> CFStrategy:
    started = time.perf_counter()
    strategy = CFStrategy(cat).fit(data)
    print(f"\nALS fit on {data.n_customers} customers x {data.n_products} products: "
          f"{time.perf_counter() - started:.3f} s")
    return strategy


@pytest.fixture(scope="module")
def similarity(cat: Catalog, data: TrainingData) -> ItemSimilarityStrategy:
    return ItemSimilarityStrategy(cat).fit(data)


def context(holdings, product: str | None = None, moment: str = "success",
            customer_id: str = "NEW-1", channel: str = "app") -> RequestContext:
    return RequestContext(
        customer=Customer(id=customer_id, holdings=frozenset(holdings)),
        terminal=Terminal(network="5G"), channel=Channel(id=channel, slots=9),
        moment=moment, product=product)


def ids(candidates) -> list[str]:
    return [c.product for c in candidates]


# -- fold-in ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("alpha", "weighting"), [(1.0, "none"), (4.0, "none"), (1.0, "bm25")])
def test_fold_in_equals_implicits_recalculate_user(cat, data, alpha, weighting):
    """With BM25, implicit is handed the weighted training row, the fold-in the raw one."""
    from implicit.cpu.als import AlternatingLeastSquares

    strategy = CFStrategy(cat, alpha=alpha, weighting=weighting).fit(data)
    matrix = data.interactions(strategy.event_weights, holding_weight=strategy.holding_weight)
    matrix.eliminate_zeros()
    weighted = matrix if weighting == "none" else cf_plugin.bm25_rows(
        matrix, strategy.item_idf, strategy.mean_length)
    reference = AlternatingLeastSquares(factors=strategy.factors,
                                        regularization=strategy.regularization,
                                        alpha=strategy.alpha, num_threads=1)
    reference.item_factors = strategy.item_factors.copy()
    busiest = np.argsort(-np.diff(matrix.indptr), kind="stable")[:3]
    for u in [*busiest.tolist(), 0, data.n_customers - 1]:
        row = matrix[u]
        assert row.nnz > 0
        expected = reference.recalculate_user(u, sp.csr_matrix(weighted[u]))
        got = strategy.fold_in(row.indices, row.data)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_bm25_rows_are_implicits_bm25_weight_on_binary_rows():
    """Lengths are numbers of businesses, the same as implicit's sums when every weight is 1."""
    from implicit.nearest_neighbours import bm25_weight

    rng = np.random.default_rng(3)
    dense = (rng.random((40, 12)) < 0.3).astype(np.float32)
    dense[np.arange(40), rng.integers(0, 12, 40)] = 1.0  # no empty row
    matrix = sp.csr_matrix(dense)
    idf, mean_length = cf_plugin.bm25_statistics(matrix)
    got = cf_plugin.bm25_rows(matrix, idf, mean_length)
    expected = bm25_weight(matrix, K1=cf_plugin.BM25_K1, B=cf_plugin.BM25_B).tocsr()
    expected.eliminate_zeros()
    np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=1e-5)
    row = matrix[5]
    np.testing.assert_allclose(cf_plugin.bm25_weights(row.data.astype(np.float64),
                                                      idf[row.indices], mean_length),
                               got[5].data, rtol=1e-5)


def test_bm25_weighs_a_rare_business_above_a_common_one():
    matrix = sp.csr_matrix(np.array([[1, 1], [1, 0], [1, 0], [1, 1]], dtype=np.float32))
    idf, _ = cf_plugin.bm25_statistics(matrix)
    assert idf[1] > idf[0] >= 0  # held by everyone: 0, never negative


def test_serving_keeps_no_customer_state(als, data):
    arrays = [v for v in vars(als).values() if isinstance(v, np.ndarray)]
    assert arrays
    assert all(data.n_customers not in a.shape for a in arrays)


def test_fit_is_deterministic(cat, data, als):
    again = CFStrategy(cat).fit(data)
    np.testing.assert_array_equal(again.item_factors, als.item_factors)


# -- planted patterns -------------------------------------------------------------------------


def test_cf_recommends_intl_packs_to_roaming_holders(als, store, data, cat):
    col = {p: cat.index[p] for p in ("intl_roaming", *INTL_PACKS)}
    held = data.holdings.toarray() > 0
    roaming = np.flatnonzero(held[:, col["intl_roaming"]]
                             & ~held[:, [col[p] for p in INTL_PACKS]].any(axis=1))
    assert len(roaming) >= 10
    hits = 0
    for u in roaming:
        customer = store.customer(str(data.customers[u]))
        ctx = RequestContext(customer=customer, terminal=store.terminal(customer.id),
                             channel=Channel(id="app", slots=9), moment="success")
        hits += bool(INTL_PACKS & set(ids(als.candidates(ctx, 5))))
    assert hits / len(roaming) >= 0.8, f"{hits}/{len(roaming)} roaming holders"
    top = als.candidates(context({"plan_4g", "intl_roaming"}), 5)
    assert INTL_PACKS & set(ids(top))
    pack = next(c for c in top if c.product in INTL_PACKS)
    assert "International roaming" in pack.reason  # a context without a locale: English


def test_item_similarity_finds_related_businesses(similarity):
    intl = similarity.candidates(context({"plan_4g"}, "intl_roaming", "transaction"), 3)
    assert INTL_PACKS & set(ids(intl))
    assert all(c.reason == "often taken together with International roaming" for c in intl)
    chinese = similarity.candidates(context({"plan_4g"}, "intl_roaming", "transaction")
                                    .evolve(locale="zh-CN"), 3)
    assert all(c.reason == "常与国际漫游一起办理" for c in chinese)
    broadband = similarity.candidates(context({"plan_4g"}, "broadband", "transaction"), 3)
    assert "broadband_speedup" in ids(broadband)
    assert "Broadband install" in broadband[0].reason


def test_item_similarity_needs_a_current_business(similarity):
    assert similarity.candidates(context({"plan_4g", "intl_roaming"}, None, "query"), 5) == []
    assert similarity.moments == {Moment.QUERY, Moment.TRANSACTION}


def test_item_similarity_keeps_top_neighbours(cat, data):
    small = ItemSimilarityStrategy(cat, neighbours=3).fit(data)
    full = ItemSimilarityStrategy(cat, neighbours=1000).fit(data).similarity.toarray()
    counts = np.diff(small.similarity.indptr)
    assert counts.max() == 3
    kept = small.similarity.toarray()
    for i in np.flatnonzero(counts):
        row = kept[i]
        assert row[row > 0].min() >= np.sort(full[i])[-3] - 1e-6
    assert np.allclose(np.diag(full), 0)
    assert np.allclose(full, full.T, atol=1e-6)


# -- new customers, exclusions, reasons -------------------------------------------------------


def test_customer_unseen_in_training_is_served_from_holdings(als, store):
    assert store.customer("NEW-1") is None
    out = als.candidates(context({"plan_4g", "broadband"}, customer_id="NEW-1"), 5)
    assert "broadband_speedup" in ids(out)
    speedup = next(c for c in out if c.product == "broadband_speedup")
    assert speedup.reason.startswith("customers who hold")
    assert "Broadband install" in speedup.reason


def test_current_business_counts_as_an_interaction(als):
    without = als.scores(context({"plan_4g"}))
    with_current = als.scores(context({"plan_4g"}, "intl_roaming", "transaction"))
    assert not np.allclose(without, with_current)
    out = als.candidates(context({"plan_4g"}, "intl_roaming", "transaction"), 5)
    assert "intl_roaming" not in ids(out)
    assert INTL_PACKS & set(ids(out))


def test_no_holdings_gives_no_candidates(als):
    assert als.candidates(context(()), 5) == []


def test_cf_never_proposes_held_or_query_services(als, store, data, cat):
    query_services = {p.id for p in cat if not p.orderable}
    assert {"balance_query", "bill_query"} <= query_services
    for cid in data.customers[::20]:
        customer = store.customer(str(cid))
        for product, moment in ((None, "success"), ("balance_query", "query"),
                                ("intl_roaming", "transaction")):
            ctx = RequestContext(customer=customer, terminal=Terminal(),
                                 channel=Channel(id="web", slots=12), moment=moment,
                                 product=product)
            out = ids(als.candidates(ctx, 50))
            assert not set(out) & (customer.holdings | query_services | {product})
            assert len(out) == len(set(out))


def test_scores_are_sorted_and_positive(als):
    out = als.candidates(context({"plan_4g", "intl_roaming", "broadband"}), 20)
    scores = [c.score for c in out]
    assert scores == sorted(scores, reverse=True)
    assert all(s > 0 for s in scores)


# -- persistence ------------------------------------------------------------------------------


def probes() -> list[RequestContext]:
    return [context({"plan_4g", "intl_roaming"}), context({"plan_5g", "broadband"}),
            context({"plan_4g"}, "balance_query", "query")]


def test_cf_save_load_round_trip(als, cat, tmp_path):
    folder = tmp_path / "cf"
    folder.mkdir()
    als.save(folder)
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["model"] == "als" and settings["factors"] == als.factors
    loaded = CFStrategy(cat, factors=3, alpha=7.0).load(folder)
    assert loaded.is_fitted and loaded.factors == als.factors and loaded.alpha == als.alpha
    for ctx in probes():
        np.testing.assert_array_equal(loaded.scores(ctx), als.scores(ctx))
        assert loaded.candidates(ctx, 9) == als.candidates(ctx, 9)


def test_bm25_model_round_trips_with_its_statistics(cat, data, tmp_path):
    bm25 = CFStrategy(cat, weighting="bm25").fit(data)
    bm25.save(tmp_path)
    assert json.loads((tmp_path / "settings.json").read_text())["weighting"] == "bm25"
    loaded = CFStrategy(cat).load(tmp_path)
    assert loaded.weighting == "bm25" and loaded.mean_length == bm25.mean_length
    for ctx in probes():
        np.testing.assert_array_equal(loaded.scores(ctx), bm25.scores(ctx))
        assert loaded.candidates(ctx, 9) == bm25.candidates(ctx, 9)
    plain = CFStrategy(cat).fit(data)
    assert not np.array_equal(plain.scores(probes()[0]), bm25.scores(probes()[0]))


def test_a_model_saved_before_weighting_existed_loads_unweighted(als, cat, tmp_path):
    als.save(tmp_path)
    settings = json.loads((tmp_path / "settings.json").read_text())
    del settings["weighting"]
    (tmp_path / "settings.json").write_text(json.dumps(settings))
    loaded = CFStrategy(cat, weighting="bm25").load(tmp_path)
    assert loaded.weighting == "none" and loaded.item_idf is None
    for ctx in probes():
        np.testing.assert_array_equal(loaded.scores(ctx), als.scores(ctx))


def test_bm25_model_without_its_statistics_is_refused(cat, data, tmp_path):
    bm25 = CFStrategy(cat, weighting="bm25").fit(data)
    bm25.save(tmp_path)
    np.savez(tmp_path / "cf.npz", item_factors=bm25.item_factors, yty=bm25.yty)
    with pytest.raises(ModelError, match="item_idf"):
        CFStrategy(cat).load(tmp_path)


def test_similarity_save_load_round_trip(similarity, cat, tmp_path):
    similarity.save(tmp_path)
    loaded = ItemSimilarityStrategy(cat).load(tmp_path)
    assert (loaded.similarity != similarity.similarity).nnz == 0
    ctx = context({"plan_4g"}, "intl_roaming", "transaction")
    assert loaded.candidates(ctx, 9) == similarity.candidates(ctx, 9)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete", "no_settings"])
def test_cf_load_refuses_damaged_files(als, cat, tmp_path, damage):
    als.save(tmp_path)
    path = tmp_path / "cf.npz"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a numpy archive")
    elif damage == "delete":
        path.unlink()
    else:
        (tmp_path / "settings.json").unlink()
    fresh = CFStrategy(cat)
    with pytest.raises(ModelError, match="cf"):
        fresh.load(tmp_path)
    assert not fresh.is_fitted


def test_cf_load_refuses_factors_for_another_catalog(als, cat, tmp_path):
    als.save(tmp_path)
    factors = als.item_factors[:-1]
    np.savez(tmp_path / "cf.npz", item_factors=factors,
             yty=factors.astype(np.float64).T @ factors)
    with pytest.raises(ModelError, match="catalog"):
        CFStrategy(cat).load(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "indices"])
def test_similarity_load_refuses_damaged_files(similarity, cat, tmp_path, damage):
    similarity.save(tmp_path)
    path = tmp_path / "similarity.npz"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        sim = similarity.similarity
        np.savez(path, indptr=sim.indptr, indices=sim.indices + len(cat), data=sim.data)
    with pytest.raises(ModelError, match="item_similarity"):
        ItemSimilarityStrategy(cat).load(tmp_path)


def test_saving_unfitted_models_is_an_error(cat, tmp_path):
    with pytest.raises(ModelError):
        CFStrategy(cat).save(tmp_path)
    with pytest.raises(ModelError):
        ItemSimilarityStrategy(cat).save(tmp_path)


# -- BPR --------------------------------------------------------------------------------------


def test_bpr_trains_and_serves(cat, data, tmp_path):
    bpr = CFStrategy(cat, model="bpr", num_threads=1).fit(data)
    assert bpr.item_factors.shape == (len(cat), bpr.factors)  # bias column dropped
    ctx = context({"plan_4g", "intl_roaming"})
    out = bpr.candidates(ctx, 5)
    assert out and not set(ids(out)) & {"plan_4g", "intl_roaming", "balance_query"}
    assert all(cat[p].orderable for p in ids(out))
    bpr.save(tmp_path)
    loaded = CFStrategy(cat).load(tmp_path)
    assert loaded.model == "bpr"
    assert loaded.candidates(ctx, 5) == out


# -- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("settings", "named"), [
    ({"factors": -3}, "factors"),
    ({"factors": 2.5}, "factors"),
    ({"model": "svd"}, "model"),
    ({"weighting": "tfidf"}, "weighting must be one of none, bm25"),
    ({"model": "bpr", "weighting": "bm25"}, "weighting 'bm25' applies to ALS only"),
    ({"alpha": 0}, "alpha"),
    ({"regularization": -1}, "regularization"),
    ({"iterations": 0}, "iterations"),
    ({"holding_weight": -1}, "holding_weight"),
    ({"num_threads": -1}, "num_threads"),
    ({"event_weights": {"click": 1.0}}, "event_weights.click"),
    ({"event_weights": {"success": -1.0}}, "event_weights.success"),
])
def test_bad_cf_settings_name_the_setting(cat, settings, named):
    with pytest.raises(ValueError, match=named):
        CFStrategy(cat, **settings)


@pytest.mark.parametrize(("settings", "named"), [
    ({"neighbours": 0}, "neighbours"),
    ({"min_cooccurrence": -1}, "min_cooccurrence"),
    ({"event_weights": {"view": 1}}, "event_weights.view"),
])
def test_bad_similarity_settings_name_the_setting(cat, settings, named):
    with pytest.raises(ValueError, match=named):
        ItemSimilarityStrategy(cat, **settings)


def test_register_strategies_reads_config(cat):
    config = Config.from_dict({"strategies": {
        "cf": {"model": "bpr", "factors": 4, "event_weights": {"success": 1.0}},
        "item_similarity": {"neighbours": 7}}})
    cf, similarity = cf_plugin.register_strategies(config=config, catalog=cat)
    assert (cf.name, similarity.name) == ("cf", "item_similarity")
    assert cf.model == "bpr" and cf.factors == 4 and cf.event_weights["query"] == 0.0
    assert similarity.neighbours == 7
    bad = Config.from_dict({"strategies": {"cf": {"factors": -1}}})
    with pytest.raises(ValueError, match="factors"):
        cf_plugin.register_strategies(config=bad, catalog=cat)


# -- held-out evaluation ----------------------------------------------------------------------


def hold_out_last_success(data: TrainingData) -> tuple[TrainingData, np.ndarray, np.ndarray,
                                                       np.ndarray]:
    """Training data without each customer's last successful order (and its transaction).

    :returns: the reduced data, and per evaluated customer: position, held-out product,
        channel of the held-out order.
    """
    ev = data.events
    success = np.flatnonzero(ev.kind == MOMENTS.index(Moment.SUCCESS))
    last = np.full(data.n_customers, -1)
    last[ev.customer[success]] = success  # events are in time order: the last write wins
    customers = np.flatnonzero(last >= 0)
    held_out = ev.product[last[customers]]
    target = np.full(data.n_customers, -1)
    target[customers] = held_out
    since = np.zeros(data.n_customers, dtype=np.int64)
    since[customers] = ev.ts[last[customers]] - 86400
    drop = (target[ev.customer] == ev.product) & (ev.ts >= since[ev.customer])
    holdings = data.holdings.tolil()
    holdings[customers, held_out] = 0
    holdings = sp.csr_matrix(holdings)
    holdings.eliminate_zeros()
    train = TrainingData(
        catalog=data.catalog, customers=data.customers, holdings=holdings,
        events=ev.select(~drop), value_tier=data.value_tier, persona=data.persona,
        lifecycle=data.lifecycle, tenure=data.tenure, network=data.network,
        smartphone=data.smartphone, os=data.os)
    return train, customers, held_out, ev.channel[last[customers]]


def hit_rate(strategy, contexts, targets, cat: Catalog, k: int = 5) -> float:
    """Share of customers whose held-out order is among the first ``k`` eligible suggestions."""
    hits = 0
    for ctx, target in zip(contexts, targets, strict=True):
        excluded = cat.exclusions(ctx)
        eligible = [p for p in ids(strategy.candidates(ctx, 50)) if not excluded[cat.index[p]]]
        hits += cat.ids[target] in eligible[:k]
    return hits / len(contexts)


def test_cf_beats_popularity_on_held_out_orders(cat, data):
    train, customers, held_out, channels = hold_out_last_success(data)
    contexts = [
        RequestContext(
            customer=Customer(id=str(data.customers[u]), value_tier=TIERS[data.value_tier[u]],
                              holdings=frozenset(cat.ids[j] for j in train.holdings[u].indices)),
            terminal=Terminal(network=f"{data.network[u]}G",
                              smartphone=bool(data.smartphone[u])),
            channel=Channel(id=CHANNEL_IDS[c], slots=12), moment="success")
        for u, c in zip(customers, channels, strict=True)]
    started = time.perf_counter()
    cf = CFStrategy(cat).fit(train)
    fit_s = time.perf_counter() - started
    popularity = PopularityStrategy(cat).fit(train)
    cf_rate = hit_rate(cf, contexts, held_out, cat)
    popularity_rate = hit_rate(popularity, contexts, held_out, cat)
    print(f"\nheld-out last orders of {len(contexts)} customers: hit rate@5 "
          f"cf={cf_rate:.3f} popularity={popularity_rate:.3f} (cf fit {fit_s:.3f} s)")
    assert cf_rate > popularity_rate
