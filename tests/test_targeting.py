"""Outbound: eligibility and contact policy over whole pages, ``target`` and ``batch``, and
their commands."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
from api_support import copy_workspace
from click.testing import CliRunner

from recommender import Catalog, Engine, TrainingData, UnknownProductError
from recommender.audience import blocked, eligible, pages
from recommender.batch import OutputError, batch
from recommender.catalog import Exclusion
from recommender.cli import main
from recommender.context import CHANNEL_IDS, RequestContext
from recommender.errors import ImportRowError
from recommender.store import FeedbackEvent
from recommender.targeting import TargetError, read_customers, target
from recommender.workspace import Workspace


@pytest.fixture(scope="module")
def outbound(sample_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A writable copy of the trained sample, with refusals and a do-not-disturb customer."""
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("outbound") / "ws")
    now = int(time.time())
    with ws.store() as store:
        for i in range(2):  # two refusals of roaming: suppressed (default policy)
            store.add_feedback(
                FeedbackEvent(
                    f"d{i}", "r", "intl_roaming", "dismiss", now - 3600 * (i + 1), "C0000010", "app"
                )
            )
        for i in range(2):  # two refusals dated in 2100 (an import's typo): not happened yet
            store.add_feedback(
                FeedbackEvent(
                    f"f{i}", "r", "cloud_storage", "dismiss", 4_102_444_800 + 86400 * i,
                    "C0000012", "app"
                )
            )
        store.db.execute("UPDATE customers SET tags = 'dnd' WHERE id = 'C0000011'")
    return ws


def contexts(engine: Engine, ids: list[str], channel: str) -> list[RequestContext]:
    """Each customer's query context on ``channel``, straight from the store (not through the
    providers, whose time budget a loaded machine may overrun)."""
    from recommender import Channel, Terminal

    slots = engine.config.slots[channel]
    return [
        RequestContext(customer=engine.store.customer(c),
                       terminal=engine.store.terminal(c) or Terminal(),
                       channel=Channel(channel, slots), moment="query")
        for c in ids
    ]


@pytest.mark.parametrize("channel", CHANNEL_IDS)
def test_page_eligibility_is_the_catalog_rule_for_each_customer(
    engine: Engine, catalog: Catalog, channel: str
) -> None:
    data, _ = next(pages(engine.store, catalog, page=400))
    matrix = eligible(catalog, data, channel)
    expected = np.array(
        [
            catalog.exclusions(ctx) == Exclusion.OK
            for ctx in contexts(engine, data.customers.tolist(), channel)
        ]
    )
    np.testing.assert_array_equal(matrix, expected)


def test_any_channel_is_the_union_of_the_channels(engine: Engine, catalog: Catalog) -> None:
    data, _ = next(pages(engine.store, catalog, page=300))
    union = np.logical_or.reduce([eligible(catalog, data, c) for c in CHANNEL_IDS])
    np.testing.assert_array_equal(eligible(catalog, data, None), union)


def test_pages_cover_every_customer_once_in_id_order(
    engine: Engine, catalog: Catalog, sample_data: TrainingData
) -> None:
    seen = np.concatenate([d.customers for d, _ in pages(engine.store, catalog, page=333)])
    assert seen.tolist() == sample_data.customers.tolist()
    data, _ = next(pages(engine.store, catalog, page=10_000))
    assert (data.holdings != sample_data.holdings).nnz == 0
    np.testing.assert_array_equal(data.attributes.numeric, sample_data.attributes.numeric)


def test_policy_suppresses_refusals_and_silences_do_not_disturb(outbound: Workspace) -> None:
    catalog = outbound.catalog()
    config = outbound.config()
    with outbound.store() as store:
        data, rows = next(pages(store, catalog, page=20, ids=["C0000010", "C0000011", "C0000012"]))
        from recommender.audience import tags_of

        held = blocked(
            config.contact_policy,
            store,
            catalog,
            data,
            tags_of(rows),
            channel="sms",
            moment="query",
            now=time.time(),
        )
    roaming = catalog.index["intl_roaming"]
    assert held[0, roaming] and held[0].sum() == 1
    services = np.array([p.kind.value == "service" for p in catalog.products])
    np.testing.assert_array_equal(held[1], ~services)
    assert not held[2].any()
    with outbound.store() as store:  # the failure moment is exempt by default
        assert not blocked(
            config.contact_policy,
            store,
            catalog,
            data,
            tags_of(rows),
            channel="sms",
            moment="failure",
            now=time.time(),
        ).any()


def test_target_ranks_eligible_customers_best_first(
    engine: Engine, catalog: Catalog, sample_data: TrainingData
) -> None:
    scorer = engine.strategies["propensity"]
    (audience,) = target(
        engine.store,
        catalog,
        engine.config,
        scorer,
        ["intl_roaming"],
        top=50,
        channel="app",
        page=137,
    )
    assert len(audience.customers) == 50 and audience.scanned == sample_data.n_customers
    assert audience.scores == sorted(audience.scores, reverse=True)
    j = catalog.index["intl_roaming"]
    position = {c: i for i, c in enumerate(sample_data.customers.tolist())}
    rows = np.array([position[c] for c in audience.customers])
    np.testing.assert_allclose(
        audience.scores, scorer.score_rows(sample_data, rows)[:, j], rtol=1e-6
    )
    allowed = eligible(catalog, sample_data, "app")[:, j]
    assert allowed[rows].all()
    assert audience.ineligible == int((~allowed).sum())
    scores = scorer.score_rows(sample_data, slice(None))[:, j]
    cut = min(audience.scores)
    assert int(((scores > cut) & allowed).sum()) <= 50  # nobody better was left out
    # In the app's language (zh-CN for the sample operator).
    assert all(r.startswith("可能办理（可能性") for r in audience.reasons), audience.reasons[:3]
    assert set(audience.strategies) == {"propensity"}


def test_page_size_does_not_change_the_answer(engine: Engine, catalog: Catalog) -> None:
    scorer = engine.strategies["propensity"]
    args = (engine.store, catalog, engine.config, scorer, ["intl_roaming", "broadband"])
    small = target(*args, top=40, page=7)
    large = target(*args, top=40)
    assert [a.to_dict() for a in small] == [a.to_dict() for a in large]


def test_min_score_returns_everyone_above_it(engine: Engine, catalog: Catalog) -> None:
    scorer = engine.strategies["propensity"]
    (all_above,) = target(
        engine.store, catalog, engine.config, scorer, ["broadband"], min_score=0.2
    )
    assert all_above.scores and min(all_above.scores) >= 0.2
    (capped,) = target(
        engine.store, catalog, engine.config, scorer, ["broadband"], min_score=0.2, top=5
    )
    assert capped.customers == all_above.customers[:5]


def test_target_leaves_out_held_back_customers(outbound: Workspace) -> None:
    with outbound.engine(require_models=True) as engine:
        scorer = engine.strategies["propensity"]
        ids = ["C0000010", "C0000011", "C0000012", "C0000013"]
        (audience,) = target(
            engine.store,
            engine.catalog,
            engine.config,
            scorer,
            ["intl_roaming"],
            top=10,
            customers=ids,
        )
    assert "C0000010" not in audience.customers and "C0000011" not in audience.customers
    assert audience.scanned == 4
    assert len(audience.customers) + audience.ineligible + audience.held_back == 4


@pytest.mark.parametrize(
    ("products", "error", "message"),
    [
        (["no_such_business"], UnknownProductError, "unknown product 'no_such_business'"),
        (["balance_query"], TargetError, "query service"),
        ([], TargetError, "at least one"),
    ],
)
def test_bad_products_are_refused(
    engine: Engine, catalog: Catalog, products: list[str], error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        target(
            engine.store, catalog, engine.config, engine.strategies["propensity"], products, top=3
        )


def test_a_customers_file_with_attributes_is_scored_as_given(
    engine: Engine, catalog: Catalog, tmp_path: Path
) -> None:
    path = tmp_path / "new.csv"
    path.write_text(
        "id,value_tier,age,region,monthly_spend\nN1,high,19,east,200\n"
        "N2,low,70,west,30\nC0000001,high,40,north,120\n"
    )
    given = read_customers(path, engine.store, catalog)
    assert given.data.customers.tolist() == ["C0000001", "N1", "N2"]
    assert given.data.holdings[0].nnz > 0  # a stored customer keeps the stored holdings
    scorer = engine.strategies["propensity"]
    (audience,) = target(
        engine.store, catalog, engine.config, scorer, ["video_membership"], top=3, customers=given
    )
    assert set(audience.customers) <= {"C0000001", "N1", "N2"}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "empty file"),
        ("id\n", 2, "no customer ids"),
        ("id,age\n", 2, "no customer rows"),
        ("id,hobby\nN1,chess\nN2,3\n", 3, "mixes numbers"),
        ("id,age\nN1,old\n", 2, r"'old' is not a number \(stored as numeric\)"),
    ],
)
def test_bad_customers_files_name_the_line(
    engine: Engine, catalog: Catalog, tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ImportRowError, match=message) as caught:
        read_customers(path, engine.store, catalog)
    assert caught.value.line == line and caught.value.path == str(path)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_batch_writes_the_top_k_eligible_offers_of_everyone(
    engine: Engine, catalog: Catalog, sample_data: TrainingData, tmp_path: Path
) -> None:
    scorer = engine.strategies["propensity"]
    result = batch(
        engine.store,
        catalog,
        engine.config,
        scorer,
        tmp_path / "b.csv",
        channel="sms",
        k=3,
        page=251,
    )
    rows = read_csv(tmp_path / "b.csv")
    assert result.customers == sample_data.n_customers and result.offers == len(rows)
    by_customer: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_customer.setdefault(row["customer_id"], []).append(row)
    assert len(by_customer) + result.without_offer == sample_data.n_customers
    allowed = eligible(catalog, sample_data, "sms")
    position = {c: i for i, c in enumerate(sample_data.customers.tolist())}
    for cid, offers in by_customer.items():
        assert [o["rank"] for o in offers] == [str(r) for r in range(1, len(offers) + 1)]
        scores = [float(o["score"]) for o in offers]
        assert scores == sorted(scores, reverse=True) and len(offers) <= 3
        assert all(allowed[position[cid], catalog.index[o["product"]]] for o in offers)
    again = batch(
        engine.store, catalog, engine.config, scorer, tmp_path / "c.csv", channel="sms", k=3
    )
    assert again.offers == result.offers
    same = read_csv(tmp_path / "c.csv")  # page sizes change float rounding, not the offers
    assert [(r["customer_id"], r["product"]) for r in same] == [
        (r["customer_id"], r["product"]) for r in rows
    ]
    np.testing.assert_allclose(
        [float(r["score"]) for r in same], [float(r["score"]) for r in rows], rtol=1e-5
    )


def test_batch_to_parquet_holds_the_same_rows(
    engine: Engine, catalog: Catalog, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    scorer = engine.strategies["propensity"]
    args = (engine.store, catalog, engine.config, scorer)
    batch(*args, tmp_path / "b.csv", channel="app", k=2, ids=["C0000001", "C0000002"])
    batch(*args, tmp_path / "b.parquet", channel="app", k=2, ids=["C0000001", "C0000002"])
    table = pq.read_table(tmp_path / "b.parquet").to_pylist()
    rows = read_csv(tmp_path / "b.csv")
    assert [(r["customer_id"], r["product"]) for r in table] == [
        (r["customer_id"], r["product"]) for r in rows
    ]
    assert [round(r["score"], 4) for r in table] == [round(float(r["score"]), 4) for r in rows]


@pytest.mark.parametrize(
    ("name", "message"), [("out.xlsx", ".csv or .parquet"), ("missing/out.csv", "does not exist")]
)
def test_batch_refuses_outputs_it_cannot_write(
    engine: Engine, catalog: Catalog, tmp_path: Path, name: str, message: str
) -> None:
    with pytest.raises(OutputError, match=message):
        batch(
            engine.store,
            catalog,
            engine.config,
            engine.strategies["propensity"],
            tmp_path / name,
            channel="app",
        )


@pytest.mark.parametrize(("name", "message"), [
    ("out.txt", ".csv or .parquet"), ("missing/out.csv", "does not exist")])
def test_target_refuses_an_output_it_cannot_write_before_scoring(
    sample_workspace: Workspace, tmp_path: Path, name: str, message: str
) -> None:
    result = CliRunner().invoke(main, ["target", "--dir", str(sample_workspace.root),
                                       "--product", "intl_roaming", "--top", "3",
                                       "--out", str(tmp_path / name)])
    assert result.exit_code == 1 and message in result.output, result.output
    assert "scoring" not in result.output and result.exception is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_target_and_batch_commands(sample_workspace: Workspace, tmp_path: Path) -> None:
    runner = CliRunner()
    root = str(sample_workspace.root)
    result = runner.invoke(
        main,
        ["target", "--dir", root, "--product", "intl_roaming", "--top", "3", "--channel", "app"],
    )
    assert result.exit_code == 0, result.output
    lines = list(csv.reader(result.stdout.splitlines()))
    assert lines[0] == ["product", "rank", "customer_id", "score", "strategies", "reasons"]
    assert [row[1] for row in lines[1:]] == ["1", "2", "3"]
    out = tmp_path / "t.csv"
    result = runner.invoke(
        main,
        [
            "target",
            "--dir",
            root,
            "--product",
            "intl_roaming,broadband",
            "--top",
            "4",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert [p["product"] for p in summary["products"]] == ["intl_roaming", "broadband"]
    assert len(read_csv(out)) == 8
    result = runner.invoke(
        main,
        [
            "batch",
            "--dir",
            root,
            "--channel",
            "sms",
            "--k",
            "1",
            "--out",
            str(tmp_path / "b.parquet"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["customers"] == 2000


#: How every outbound reason opens in English (a model, no driver, a take rate).
ENGLISH = ("likely to take it (", "customers like this one take it (", "taken by ")


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_target_and_batch_write_reasons_in_the_language_asked(
    sample_workspace: Workspace, tmp_path: Path, locale: str
) -> None:
    root = str(sample_workspace.root)
    result = CliRunner().invoke(main, ["target", "--dir", root, "--product", "intl_roaming",
                                       "--top", "3", "--locale", locale])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(result.stdout.splitlines()[:4]))
    assert len(rows) == 3
    assert all(r["reasons"].startswith(ENGLISH) == (locale == "en") for r in rows)
    out = tmp_path / f"b-{locale}.csv"
    result = CliRunner().invoke(main, ["batch", "--dir", root, "--channel", "sms", "--k", "1",
                                       "--customers", str(ids_file(tmp_path)), "--out",
                                       str(out), "--locale", locale])
    assert result.exit_code == 0, result.output
    offers = read_csv(out)
    assert offers and all(r["reasons"].startswith(ENGLISH) == (locale == "en")
                          for r in offers)


def ids_file(folder: Path) -> Path:
    path = folder / "ids.csv"
    path.write_text("id\n" + "".join(f"C{i:07d}\n" for i in range(20)))
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["target", "--product", "nope", "--top", "3"], "unknown product 'nope'"),
        (["target", "--product", "broadband"], "give --top N or --min-score S"),
        (["target", "--product", "broadband", "--top", "0"], "--top"),
        (["batch", "--channel", "sms", "--out", "x.txt"], ".csv or .parquet"),
        (["target", "--product", "broadband", "--top", "3", "--locale", "fr"], "--locale"),
    ],
)
def test_commands_explain_bad_input(
    sample_workspace: Workspace, args: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(main, [*args[:1], "--dir", str(sample_workspace.root), *args[1:]])
    assert result.exit_code != 0
    assert message in result.output


def test_commands_need_a_trained_propensity_model(
    sample_workspace: Workspace, tmp_path: Path
) -> None:
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    (ws.root / "config.toml").write_text("[targeting]\nstrategies = []\n")
    ws.train()
    result = CliRunner().invoke(
        main, ["target", "--dir", str(ws.root), "--product", "broadband", "--top", "3"]
    )
    assert result.exit_code == 1
    assert "no trained propensity strategy" in result.output


def test_outbound_lists_respect_the_caps_against_contacts_already_served(
        sample_workspace: Workspace, tmp_path: Path) -> None:
    """Caps count the marketing contacts served on the channel (and of the business) in the
    last day and week, as for an inbound request; a file never gives more than what is left."""
    from recommender import Config
    from recommender.contact_policy import ContactPolicy, Response

    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    raw = json.loads(json.dumps(dict(ws.config().raw)))
    raw["contact_policy"] = {"max_per_channel_day": 2, "max_per_channel_week": 4,
                             "max_per_business_week": 1}
    config = Config.from_dict(raw, source="config.toml", root=ws.root)
    now = time.time()
    served = {  # customer: contacts (product, age in hours, channel)
        "C0000001": [("data_5gb", 2, "sms"), ("intl_roaming", 3, "sms")],  # day cap reached
        "C0000002": [("data_5gb", 30, "sms"), ("cloud_storage", 50, "sms"),
                     ("intl_sms", 70, "sms"), ("video_membership", 90, "sms")],  # week cap
        "C0000003": [("data_5gb", 5, "app")],  # another channel: 1 business held back
        "C0000004": [("data_5gb", 200, "sms"), ("intl_roaming", 190, "sms")],  # > 7 days ago
    }
    with ws.store() as store:
        for cid, contacts in served.items():
            store.db.executemany("INSERT INTO contacts VALUES (?,?,?,?,?)", [
                (cid, int(now - hours * 3600), product, channel, f"r{cid}{i}")
                for i, (product, hours, channel) in enumerate(contacts)])
        ids = list(served)
        data, rows = next(pages(store, ws.catalog(), page=10, ids=ids))
        from recommender.audience import remaining_contacts, tags_of

        catalog = ws.catalog()
        left = remaining_contacts(config.contact_policy, store, catalog, data, "sms", now)
        held = blocked(config.contact_policy, store, catalog, data, tags_of(rows),
                       channel="sms", moment="query", now=now)
    # The reference: the per-request policy on each customer's contacts.
    policy = ContactPolicy.from_config(raw, "config.toml")
    marketing = [p.id for p in catalog.products if p.kind.value != "service"]
    for i, cid in enumerate(ids):
        contacts = [Response(int(now - h * 3600), p, "contact", ch) for p, h, ch in served[cid]]
        kept, _ = policy.allowed("sms", marketing, contacts, now=now)
        not_held = [p for p in marketing if not held[i, catalog.index[p]]]
        assert kept == not_held[:int(min(left[i], len(not_held)))], cid
    assert left.tolist()[:2] == [0, 0] and left[2] == 2 and left[3] == 2
    assert held[0].sum() == held[1].sum() == len(marketing)  # nothing more on SMS
    assert held[2, catalog.index["data_5gb"]] and held[2].sum() == 1  # the business-week cap
    assert not held[3].any()

    with ws.store() as store, ws.engine(require_models=True) as engine:
        batch(store, catalog, config, engine.strategies["propensity"], tmp_path / "b.csv",
              channel="sms", k=5, ids=ids)
    offers: dict[str, list[str]] = {}
    for row in read_csv(tmp_path / "b.csv"):
        offers.setdefault(row["customer_id"], []).append(row["product"])
    assert "C0000001" not in offers and "C0000002" not in offers
    assert len(offers.get("C0000003", [])) <= 2 and "data_5gb" not in offers.get("C0000003", [])
    assert len(offers.get("C0000004", [])) <= 2
