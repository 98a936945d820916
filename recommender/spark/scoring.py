"""``recommender batch`` and ``target`` with ``--engine spark``: the same scoring, eligibility
and contact policy, run by the executors over the import schema's tables a partition at a time.

Customers are range-partitioned by id, so each partition is a contiguous, ordered slice of the
customer base, as the local commands' pages are. Every executor rebuilds the workspace from a
broadcast copy (catalog, configuration, rules, events and the current model version) and runs
the local code on its partition: ``recommender.batch.batch`` over a :class:`PartitionStore`
(the partition's customers, read as the store's pages are read) and
``recommender.targeting.target`` over the partition's customers as given. The contact policy
remembers what the workspace's store holds (recent dismissals and marketing contacts), exported
once by the driver (:class:`PolicyLog`).

The batch is written by the executors as a folder of part files (``--out offers.parquet/`` or
``.csv/``, Spark's layout), in customer id order; each target audience is merged on the
driver from the partitions' best (ties keep id order, as locally) and written as locally.
"""

from __future__ import annotations

import bisect
import json
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import attributes as attrs
from ..batch import BATCH_COLUMNS
from ..contact_policy import WEEK
from ..errors import ModelError
from ..store import Store
from ..targeting import Audience
from ..workspace import Workspace
from .tables import TABLES, TableSource, attribute_kinds, read_table

WORKSPACE_FILES = ("catalog.toml", "config.toml", "rules.toml", "events.toml")


class PolicyLog:
    """Recent dismissals and marketing contacts, answering the two questions
    ``recommender.audience`` asks of a store about them.

    :param dismissals: (customer, product, ts, channel) rows.
    :param contacts: (customer, product, ts, channel) rows.
    """

    def __init__(self, dismissals: Sequence[tuple], contacts: Sequence[tuple]):
        self._dismissals = sorted(dismissals, key=lambda r: (r[0], r[1], r[2]))
        self._contacts = sorted(contacts, key=lambda r: (r[0], r[1], r[2]))

    @classmethod
    def from_store(cls, store: Store, now: float, lookback_s: int) -> PolicyLog:
        """What ``store`` remembers within the policy's windows before ``now``."""
        last = "\U0010ffff"
        return cls(store.dismissals_of("", last, int(now - lookback_s)),
                   store.contacts_of("", last, int(now - WEEK)))

    @staticmethod
    def _between(rows: list[tuple], first: str, last: str, since: int) -> list[tuple]:
        lo = bisect.bisect_left(rows, (first,))
        hi = bisect.bisect_right(rows, (last, "\U0010ffff"))
        return [r for r in rows[lo:hi] if r[2] >= since]

    def dismissals_of(self, first: str, last: str, since: int) -> list[tuple]:
        """As ``Store.dismissals_of``: by customer, product and time."""
        return self._between(self._dismissals, first, last, since)

    def contacts_of(self, first: str, last: str, since: int) -> list[tuple]:
        """As ``Store.contacts_of``."""
        return self._between(self._contacts, first, last, since)

    def rows(self) -> tuple[list[tuple], list[tuple]]:
        return self._dismissals, self._contacts


class PartitionStore(PolicyLog):
    """One partition's customers (rows in ``Store.PAGE_COLUMNS`` order, sorted by id) and
    holdings, read the way ``recommender.audience.pages`` reads the store."""

    def __init__(self, rows: list[tuple], holdings: list[tuple[str, str]],
                 kinds: Mapping[str, str], policy: PolicyLog):
        super().__init__(*policy.rows())
        self._rows = rows
        self._ids = [r[0] for r in rows]
        self._holdings = sorted(holdings)
        self._kinds = dict(kinds)

    def attribute_kinds(self) -> dict[str, str]:
        return dict(self._kinds)

    def customer_page(self, after: str | None, limit: int) -> list[tuple]:
        start = 0 if after is None else bisect.bisect_right(self._ids, after)
        return self._rows[start:start + int(limit)]

    def holdings_of(self, first: str, last: str) -> list[tuple[str, str]]:
        lo = bisect.bisect_left(self._holdings, (first,))
        hi = bisect.bisect_right(self._holdings, (last, "\U0010ffff"))
        return self._holdings[lo:hi]


@dataclass(frozen=True)
class Shipped:
    """The workspace as executors rebuild it: file name -> bytes, the model version's files,
    the contact policy's memory and the attribute kinds of the customer table."""

    files: dict[str, bytes]
    version: str
    model_files: dict[str, bytes]
    dismissals: list[tuple]
    contacts: list[tuple]
    kinds: dict[str, str]


def ship(ws: Workspace, kinds: Mapping[str, str], now: float) -> Shipped:
    """Pack what executors need from ``ws`` (its current model version must exist)."""
    from ..models import current_model_dir, read_manifest

    model_dir = current_model_dir(ws.models_path)
    if model_dir is None:
        raise ModelError(f"{ws.models_path}: no trained models; run 'recommender train "
                         f"--dir {ws.root}' (with --engine spark if you like)")
    if "propensity" not in read_manifest(model_dir)["strategies"]:
        raise ModelError(f"{model_dir}: the current model version has no trained propensity "
                         f"strategy; train it (it is trained unless [targeting] strategies "
                         f"leaves it out)")
    dismissals: list[tuple] = []
    contacts: list[tuple] = []
    if ws.store_path.exists():
        config = ws.config()
        with ws.store() as store:
            dismissals, contacts = PolicyLog.from_store(
                store, now, config.contact_policy.lookback_seconds).rows()
    return Shipped(
        files={n: (ws.root / n).read_bytes() for n in WORKSPACE_FILES if (ws.root / n).exists()},
        version=model_dir.name,
        model_files={str(p.relative_to(model_dir)): p.read_bytes()
                     for p in sorted(model_dir.rglob("*")) if p.is_file()},
        dismissals=dismissals, contacts=contacts, kinds=dict(kinds))


_ENGINES: dict[str, tuple[Any, Any]] = {}  # per Python worker: ship key -> (engine, scorer)


def _scorer(shipped: Shipped, key: str) -> tuple[Any, Any]:
    """The workspace's engine and bulk scorer on this worker, rebuilt once per shipment."""
    if key not in _ENGINES:
        from ..engine import Engine
        from ..models import load_models

        root = Path(tempfile.mkdtemp(prefix="recommender-executor-"))
        for name, content in shipped.files.items():
            (root / name).write_bytes(content)
        model_dir = root / "models" / shipped.version
        for name, content in shipped.model_files.items():
            (model_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (model_dir / name).write_bytes(content)
        ws = Workspace(root)
        catalog = ws.catalog()
        engine = Engine(catalog, ws.config(), store=None)
        load_models(engine.strategies, model_dir, list(catalog.ids), sources=engine.sources)
        scorer = engine.strategies.get("propensity")
        if scorer is None or not scorer.is_fitted:
            raise ModelError(f"model {shipped.version} has no trained propensity strategy")
        _ENGINES[key] = (engine, scorer)
    return _ENGINES[key]


def customer_rows(spark: Any, sources: Mapping[str, TableSource],
                  ids: Sequence[str] | None, declared: Mapping[str, str]) -> tuple[Any, dict]:
    """One row per customer (the store's page columns, attributes as JSON, holdings as a
    list), range-partitioned and sorted by id; and the attribute kinds."""
    from pyspark.sql import functions as F

    if "customers" not in sources:
        from .tables import InputError

        raise InputError("--input names no customers table: there is nobody to score")
    raw = {t: read_table(spark, sources[t]) for t in TABLES if t in sources and t != "events"}
    customers = raw["customers"]
    kinds = attribute_kinds(customers, declared)
    fields = [F.col(name).cast("double" if kinds[name] == attrs.NUMERIC else "string")
              .alias(name) for name in sorted(kinds)]
    attributes = F.to_json(F.struct(*fields)) if fields else F.lit(None).cast("string")
    people = customers.select("id", "value_tier", "persona", "lifecycle", "tenure_months",
                              "tags", attributes.alias("attributes"))
    if ids is not None:
        wanted = spark.createDataFrame([(i,) for i in sorted(set(ids))], "id string")
        people = people.join(wanted, "id", "left_semi")
    if "terminals" in raw:
        people = people.join(raw["terminals"].select(
            F.col("customer_id").alias("id"), "network",
            F.col("smartphone").cast("int").alias("smartphone"), "os"
        ).dropDuplicates(["id"]), "id", "left")
    else:
        people = people.select("*", *(F.lit(None).cast(t).alias(c) for c, t in (
            ("network", "string"), ("smartphone", "int"), ("os", "string"))))
    if "holdings" in raw:
        held = raw["holdings"].groupBy(F.col("customer_id").alias("id")) \
            .agg(F.collect_set("product_id").alias("holdings"))
        people = people.join(held, "id", "left")
    else:
        people = people.withColumn("holdings", F.lit(None).cast("array<string>"))
    parts = max(1, spark.sparkContext.defaultParallelism)
    return people.repartitionByRange(parts, "id").sortWithinPartitions("id"), kinds


def _page_rows(batch: Any) -> tuple[list[tuple], list[tuple[str, str]]]:
    """A record batch of ``customer_rows`` as store page rows and (customer, product) pairs."""
    from ..store import TAG_SEPARATOR

    columns = batch.to_pydict()
    rows, holdings = [], []
    for i, cid in enumerate(columns["id"]):
        tags = TAG_SEPARATOR.join(sorted({t.strip() for t in (columns["tags"][i] or "")
                                          .split(TAG_SEPARATOR) if t.strip()}))
        values = json.loads(columns["attributes"][i]) if columns["attributes"][i] else {}
        rows.append((cid, columns["value_tier"][i], columns["persona"][i],
                     columns["lifecycle"][i], columns["tenure_months"][i], tags,
                     attrs.encode(values), columns["network"][i], columns["smartphone"][i],
                     columns["os"][i]))
        holdings += [(cid, p) for p in columns["holdings"][i] or ()]
    return rows, holdings


def _partition(batches: Iterator[Any]) -> tuple[list[tuple], list[tuple[str, str]]]:
    rows: list[tuple] = []
    holdings: list[tuple[str, str]] = []
    for batch in batches:
        r, h = _page_rows(batch)
        rows += r
        holdings += h
    return rows, holdings


def _ddl(schema: Any) -> str:
    """A pyarrow schema as Spark's DDL string."""
    names = {"string": "string", "int32": "int", "int64": "bigint", "float": "float",
             "double": "double"}
    return ", ".join(f"`{f.name}` {names[str(f.type)]}" for f in schema)


@dataclass(frozen=True)
class SparkBatchResult:
    customers: int
    offers: int
    without_offer: int
    seconds: float
    path: str


def batch_on_spark(spark: Any, ws: Workspace, sources: Mapping[str, TableSource],
                   out: str | Path, *, channel: str, moment: str = "query", k: int = 3,
                   ids: Sequence[str] | None = None, page: int = 10_000,
                   now: float | None = None, locale: str | None = None) -> SparkBatchResult:
    """``recommender.batch.batch`` on Spark: the offers of every customer of the tables (or
    of ``ids``) written by the executors as a folder of part files at ``out`` (a path, or a
    URI such as ``hdfs://...`` or ``s3a://...`` that every executor reaches)."""
    import pyarrow as pa

    from ..batch import OutputError, batch

    started = time.perf_counter()
    out = str(out)
    fmt = out.rstrip("/").rsplit(".", 1)[-1].lower()
    if fmt not in ("parquet", "csv"):
        raise OutputError(f"{out}: the output must end in .csv or .parquet")
    if "://" not in out and Path(out).exists():
        raise OutputError(f"{out}: already exists; with --engine spark the output is a "
                          f"folder of part files, written anew")
    now = time.time() if now is None else now
    config = ws.config()
    frame, kinds = customer_rows(spark, sources, ids, attrs.declared_kinds(config.raw,
                                                                             config.source))
    shipped = spark.sparkContext.broadcast(ship(ws, kinds, now))
    key = uuid.uuid4().hex
    counts = {name: spark.sparkContext.accumulator(0)
              for name in ("customers", "offers", "without_offer")}
    # A CSV carries scores as the local batch writes them (6 significant digits).
    score_type = pa.string() if fmt == "csv" else pa.float32()
    schema = pa.schema([(c, t) for c, t in zip(BATCH_COLUMNS, (
        pa.string(), pa.int32(), pa.string(), score_type, pa.string(), pa.string()),
        strict=True)])

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow.parquet as pq

        rows, holdings = _partition(batches)
        if not rows:
            return
        engine, scorer = _scorer(shipped.value, key)
        store = PartitionStore(rows, holdings, shipped.value.kinds,
                               PolicyLog(shipped.value.dismissals, shipped.value.contacts))
        with tempfile.TemporaryDirectory(prefix="recommender-batch-") as tmp:
            result = batch(store, engine.catalog, engine.config, scorer,
                           Path(tmp) / "part.parquet", channel=channel, moment=moment, k=k,
                           page=page, now=now, locale=locale)
            counts["customers"].add(result.customers)
            counts["offers"].add(result.offers)
            counts["without_offer"].add(result.without_offer)
            table = pq.read_table(Path(tmp) / "part.parquet")
            if fmt == "csv":
                formatted = np.char.mod("%.6g", table.column("score").to_numpy())
                table = table.set_column(3, "score", pa.array(formatted.tolist(), pa.string()))
            yield from table.to_batches()

    offers = frame.mapInArrow(score, _ddl(schema))
    writer = offers.write.mode("errorifexists")
    if fmt == "csv":
        writer.option("header", True).csv(out)
    else:
        writer.parquet(out)
    return SparkBatchResult(counts["customers"].value, counts["offers"].value,
                            counts["without_offer"].value, time.perf_counter() - started, out)


def target_on_spark(spark: Any, ws: Workspace, sources: Mapping[str, TableSource],
                    products: Sequence[str], *, top: int | None = None,
                    min_score: float | None = None, ids: Sequence[str] | None = None,
                    channel: str | None = None, moment: str = "query", page: int = 10_000,
                    now: float | None = None, locale: str | None = None) -> list[Audience]:
    """``recommender.targeting.target`` on Spark: each partition's best for each business,
    merged on the driver (best score first, ties in id order, as locally)."""
    import pyarrow as pa

    from ..audience import page_data, tags_of
    from ..targeting import GivenCustomers, check_products, target

    now = time.time() if now is None else now
    config = ws.config()
    check_products(ws.catalog(), products)
    frame, kinds = customer_rows(spark, sources, ids, attrs.declared_kinds(config.raw,
                                                                             config.source))
    shipped = spark.sparkContext.broadcast(ship(ws, kinds, now))
    key = uuid.uuid4().hex
    schema = pa.schema([("product", pa.string()), ("customer_id", pa.string()),
                        ("score", pa.float64()), ("strategies", pa.string()),
                        ("reason", pa.string()), ("scanned", pa.int64()),
                        ("ineligible", pa.int64()), ("held_back", pa.int64())])

    def score(batches: Iterator[Any]) -> Iterator[Any]:
        rows, holdings = _partition(batches)
        if not rows:
            return
        engine, scorer = _scorer(shipped.value, key)
        given = GivenCustomers(page_data(rows, holdings, engine.catalog, shipped.value.kinds),
                               tags_of(rows))
        policy = PolicyLog(shipped.value.dismissals, shipped.value.contacts)
        audiences = target(policy, engine.catalog, engine.config, scorer, products, top=top,
                           min_score=min_score, customers=given, channel=channel,
                           moment=moment, page=page, now=now, locale=locale)
        out: dict[str, list] = {name: [] for name in schema.names}
        for a in audiences:
            for column, value in (("product", a.product), ("customer_id", None),
                                  ("score", None), ("strategies", None), ("reason", None),
                                  ("scanned", a.scanned), ("ineligible", a.ineligible),
                                  ("held_back", a.held_back)):
                out[column].append(value)
            n = len(a.customers)
            out["product"] += [a.product] * n
            out["customer_id"] += a.customers
            out["score"] += a.scores
            out["strategies"] += a.strategies
            out["reason"] += a.reasons
            for column in ("scanned", "ineligible", "held_back"):
                out[column] += [0] * n
        yield pa.RecordBatch.from_pydict(out, schema=schema)

    found = frame.mapInArrow(score, _ddl(schema)).toArrow().to_pydict()
    audiences = {p: Audience(p) for p in products}
    offers: dict[str, list[tuple]] = {p: [] for p in products}
    for i, product in enumerate(found["product"]):
        if found["customer_id"][i] is None:
            a = audiences[product]
            a.scanned += found["scanned"][i]
            a.ineligible += found["ineligible"][i]
            a.held_back += found["held_back"][i]
        else:
            offers[product].append((-found["score"][i], found["customer_id"][i],
                                    found["strategies"][i], found["reason"][i]))
    for product, rows in offers.items():
        rows.sort(key=lambda r: (r[0], r[1]))
        a = audiences[product]
        for negative, cid, strategies, reason in rows[:top] if top is not None else rows:
            a.customers.append(cid)
            a.scores.append(-negative)
            a.strategies.append(strategies)
            a.reasons.append(reason)
    return [audiences[p] for p in products]

