"""The import schema's tables on Spark: where they are (``--input``), read, checked and coded.

``--input`` names the tables of ``recommender.csvimport``'s schema (customers, terminals,
holdings, events), in one of three forms, repeatable (a later one wins for its table):

- ``FOLDER``: each table as ``FOLDER/<table>.parquet`` (a file or a Parquet folder),
  ``FOLDER/<table>/`` (a Parquet folder) or ``FOLDER/<table>.csv`` (with a header row);
- ``hive:DATABASE``: the tables ``DATABASE.customers``, ``DATABASE.terminals``...;
- ``TABLE=SOURCE``: one table from a ``.parquet`` or ``.csv`` path or ``hive:DB.TABLE``.

Columns are those of the CSV import (``csvimport.COLUMNS``); a missing required column is an
error naming the table and its source. Times are unix seconds or ISO 8601 (UTC without a
zone), or Parquet/Hive timestamps. Like ``TrainingData.from_store``, rows naming an unknown
customer, business, channel or event kind are skipped, and an unknown value tier or
lifecycle is an error.

:class:`SparkData` is what Spark fits learn from: the same tables with customers and
businesses as integer positions (businesses in catalog order), value tiers, channels and event
kinds as codes, cached on the cluster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..attributes import CATEGORICAL, NUMERIC, AttributeTable
from ..catalog import Catalog
from ..context import CHANNEL_IDS, Network
from ..csvimport import COLUMNS, DEFAULTS
from ..errors import RecommenderError
from ..training import (
    LIFECYCLES,
    MOMENTS,
    OSES,
    PERSONAS,
    TIERS,
    EventLog,
    TrainingData,
)

TABLES = ("customers", "terminals", "holdings", "events")
_POSITION_BITS = 33  # monotonically_increasing_id: partition id above, row number below
#: ``recommender.attributes.parse_number``'s numbers, as a Java regular expression.
NUMBER_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


class InputError(RecommenderError, ValueError):
    """An ``--input`` table cannot be found or read as the import schema says."""


@dataclass(frozen=True)
class TableSource:
    """Where one table is: ``kind`` is parquet, csv or hive; ``location`` a path or a name."""

    table: str
    kind: str
    location: str

    def __str__(self) -> str:
        return f"hive:{self.location}" if self.kind == "hive" else self.location


def parse_inputs(specs: Iterable[str]) -> dict[str, TableSource]:
    """The tables ``--input`` names (see the module's documentation); later specs win.

    :raises InputError: a spec names an unknown table, a missing path or an unknown format.
    """
    found: dict[str, TableSource] = {}
    for spec in specs:
        table, sep, source = spec.partition("=")
        if sep and table in TABLES:
            found[table] = _source(table, source, spec)
        elif sep and "/" not in table and ":" not in table:
            raise InputError(f"--input {spec}: unknown table {table!r}; the tables are "
                             f"{', '.join(TABLES)}")
        elif spec.startswith("hive:"):
            database = spec.removeprefix("hive:")
            if not database:
                raise InputError(f"--input {spec}: name the Hive database, hive:DATABASE")
            for table in TABLES:
                found[table] = TableSource(table, "hive", f"{database}.{table}")
        else:
            found |= _folder(Path(spec))
    return found


def _source(table: str, source: str, spec: str) -> TableSource:
    if source.startswith("hive:"):
        return TableSource(table, "hive", source.removeprefix("hive:"))
    path = Path(source)
    kind = "csv" if path.suffix.lower() == ".csv" else "parquet"
    if not path.exists():
        raise InputError(f"--input {spec}: {path} does not exist")
    return TableSource(table, kind, str(path))


def _folder(folder: Path) -> dict[str, TableSource]:
    if not folder.is_dir():
        raise InputError(f"--input {folder}: not a folder, nor TABLE=PATH, nor hive:DATABASE")
    found = {}
    for table in TABLES:
        for candidate, kind in ((folder / f"{table}.parquet", "parquet"),
                                (folder / table, "parquet"), (folder / f"{table}.csv", "csv")):
            if candidate.exists():
                found[table] = TableSource(table, kind, str(candidate))
                break
    if not found:
        raise InputError(f"--input {folder}: no table found; expected customers.parquet, "
                         f"customers/ or customers.csv (and the other tables) there")
    return found


def read_table(spark: Any, source: TableSource) -> Any:
    """One table as a DataFrame with the schema's columns typed, defaults filled in.

    :raises InputError: unreadable, or a required column is missing.
    """
    from pyspark.errors import PySparkException

    try:
        if source.kind == "hive":
            frame = spark.table(source.location)
        elif source.kind == "csv":
            frame = spark.read.option("header", True).option("encoding", "UTF-8") \
                .option("ignoreLeadingWhiteSpace", True) \
                .option("ignoreTrailingWhiteSpace", True).csv(source.location)
        else:
            frame = spark.read.parquet(source.location)
    except PySparkException as e:
        raise InputError(f"{source.table} ({source}): cannot be read: "
                         f"{str(e).splitlines()[0]}") from None
    if source.kind == "csv":  # header names as the CSV import reads them (BOM, spaces)
        frame = frame.toDF(*[c.lstrip("\ufeff").strip() for c in frame.columns])
    present = set(frame.columns)
    for column, required in COLUMNS[source.table]:
        if required and column not in present:
            raise InputError(f"{source.table} ({source}): required column {column!r} missing; "
                             f"it has {', '.join(frame.columns)}")
    return _typed(frame, source.table)


def _typed(frame: Any, table: str) -> Any:
    """The schema's columns with their types; optional columns left out are filled with their
    default (``csvimport.DEFAULTS``) or NULL; other customer columns are kept (attributes)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    def text(column: str) -> Any:
        if column not in frame.columns:
            default = DEFAULTS.get(column) if table == "customers" else None
            return F.lit(None if default is None else str(default)).cast(StringType())
        trimmed = F.trim(F.col(column).cast(StringType()))
        default = DEFAULTS.get(column) if table == "customers" else None
        value = F.when(trimmed != "", trimmed)
        return value if default is None else F.coalesce(value, F.lit(str(default)))

    columns = {c: text(c).alias(c) for c, _ in COLUMNS[table]}
    if table == "customers":
        columns["tenure_months"] = text("tenure_months").cast("int").alias("tenure_months")
        extra = [F.col(c) for c in frame.columns if c not in columns]
        return frame.select(*columns.values(), *extra)
    if table == "terminals":
        smart = F.lower(text("smartphone"))
        columns["smartphone"] = F.when(smart.isin("true", "1", "yes"), F.lit(True)) \
            .when(smart.isin("false", "0", "no"), F.lit(False)).alias("smartphone")
    if table == "events":
        columns["ts"] = _seconds(frame, "ts").alias("ts")
    if table == "holdings":
        columns["since"] = _seconds(frame, "since").alias("since")
    return frame.select(*columns.values())


def _seconds(frame: Any, column: str) -> Any:
    """A time column as unix seconds: from numbers, timestamps, digits or ISO 8601 text."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType, TimestampNTZType, TimestampType

    if column not in frame.columns:
        return F.lit(None).cast("long")
    kind = frame.schema[column].dataType
    if isinstance(kind, NumericType):
        return F.col(column).cast("long")
    if isinstance(kind, TimestampType | TimestampNTZType):
        return F.unix_timestamp(F.col(column))
    value = F.trim(F.col(column).cast("string"))
    return F.when(value.rlike(r"^-?[0-9]+$"), value.cast("long")) \
        .otherwise(F.unix_timestamp(F.to_timestamp(value)))


@dataclass
class SparkData:
    """The tables as DataFrames of positions and codes: what Spark fits learn from.

    - ``customers``: ``customer`` (int position), ``id``, ``value_tier``, ``persona``,
      ``lifecycle`` (codes as in ``TrainingData``), ``tenure``;
    - ``terminals``: ``customer``, ``network`` (2 to 5), ``smartphone``, ``os`` (code);
    - ``holdings``: ``customer``, ``product`` (catalog position), distinct;
    - ``events``: ``customer``, ``product``, ``channel``, ``kind`` (codes), ``ts``.

    Positions are dense (0 to ``n_customers - 1``) but not in id order; ``now`` is the time of
    the latest event, as ``TrainingData.now``.
    """

    spark: Any
    catalog: Catalog
    customers: Any
    terminals: Any
    holdings: Any
    events: Any
    n_customers: int
    n_events: int
    now: int
    fingerprint: str
    #: The customers' attributes: name -> kind, columns ``_a0``, ``_a1``... of ``customers``.
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def n_products(self) -> int:
        return len(self.catalog)

    def release(self) -> None:
        """Drop the cached tables from the cluster."""
        for frame in (self.customers, self.terminals, self.holdings, self.events):
            frame.unpersist()

    def sample(self, customers: int, seed: int = 0) -> TrainingData:
        """About ``customers`` customers drawn at random (seeded), with their terminals,
        holdings and events, as ``TrainingData`` on the driver: for a strategy without a
        Spark fit. Customers are in id order, as ``TrainingData.from_store`` gives them."""
        from pyspark.sql import functions as F

        fraction = min(1.0, customers / max(self.n_customers, 1))
        chosen = self.customers.where(F.rand(seed) < fraction) if fraction < 1 else \
            self.customers
        chosen = chosen.limit(customers).cache()
        try:
            return self._collect(chosen)
        finally:
            chosen.unpersist()

    def _collect(self, chosen: Any) -> TrainingData:
        """The rows of customers ``chosen`` (a subset of ``customers``) as TrainingData."""
        keys = chosen.select("customer")
        columns = [f"_a{i}" for i in range(len(self.attributes))]
        people = _numpy(chosen.select("customer", "id", "value_tier", "persona", "lifecycle",
                                      "tenure", *columns))
        order = np.argsort(people["id"], kind="stable")
        people = {k: v[order] for k, v in people.items()}
        n = len(order)
        local = np.full(max(self.n_customers, 1), -1, np.int64)
        local[people["customer"]] = np.arange(n)
        terminals = _numpy(self.terminals.join(keys, "customer"))
        held = _numpy(self.holdings.join(keys, "customer"))
        events = _numpy(self.events.join(keys, "customer").orderBy("ts", "customer"))
        network = np.full(n, Network.G4.rank, np.int8)
        smartphone = np.ones(n, bool)
        os = np.full(n, -1, np.int8)
        at = local[terminals["customer"]]
        network[at] = terminals["network"]
        smartphone[at] = terminals["smartphone"]
        os[at] = terminals["os"]
        attributes = None
        if self.attributes:
            values = [people[c] for c in columns]
            rows = ({name: v for name, v in zip(self.attributes, row, strict=True)
                     if v is not None and v == v} for row in zip(*values, strict=True))
            attributes = AttributeTable.from_mappings(rows, n, self.attributes)
        holdings = sp.csr_matrix((np.ones(len(held["customer"]), np.float32),
                                  (local[held["customer"]], held["product"])),
                                 shape=(n, self.n_products))
        return TrainingData(
            catalog=self.catalog, customers=people["id"].astype(object), holdings=holdings,
            events=EventLog(local[events["customer"]].astype(np.int32),
                            events["product"].astype(np.int32),
                            events["channel"].astype(np.int8), events["kind"].astype(np.int8),
                            events["ts"].astype(np.int64)),
            value_tier=people["value_tier"].astype(np.int8),
            persona=people["persona"].astype(np.int8),
            lifecycle=people["lifecycle"].astype(np.int8),
            tenure=people["tenure"].astype(np.int32), network=network, smartphone=smartphone,
            os=os, attributes=attributes)


def attribute_kinds(customers: Any, declared: Mapping[str, str]) -> dict[str, str]:
    """The kind of each extra customer column (a customer attribute): as ``[attributes]``
    declares it; else numeric for a numeric column, and for a text column (CSV) as the CSV
    import decides: numeric when every value is a number, categorical when none is.

    :raises InputError: a text column mixes numbers and text and its kind is not declared.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    known = {c for c, _ in COLUMNS["customers"]}
    out, texts = {}, []
    for f in customers.schema.fields:
        if f.name in known:
            continue
        if f.name in declared:
            out[f.name] = declared[f.name]
        elif isinstance(f.dataType, NumericType):
            out[f.name] = NUMERIC
        else:
            out[f.name] = CATEGORICAL
            texts.append(f.name)
    if texts:
        def trimmed(name: str) -> Any:
            return F.trim(F.col(name).cast("string"))

        counts = customers.agg(*(
            F.sum((trimmed(name).rlike(NUMBER_PATTERN)).cast("int")).alias(f"n{i}")
            for i, name in enumerate(texts)), *(
            F.sum(((trimmed(name) != "") & ~trimmed(name).rlike(NUMBER_PATTERN)).cast("int"))
            .alias(f"t{i}") for i, name in enumerate(texts))).first()
        for i, name in enumerate(texts):
            numbers, words = counts[f"n{i}"] or 0, counts[f"t{i}"] or 0
            if numbers and words:
                raise InputError(f"customers: column {name!r} mixes numbers and text; declare "
                                 f"its kind in config.toml, [attributes] {name} = "
                                 f'"categorical" or "numeric"')
            if numbers:
                out[name] = NUMERIC
    return out


def _numpy(frame: Any) -> dict[str, np.ndarray]:
    """A DataFrame's columns as numpy arrays, through Arrow."""
    table = frame.toArrow()
    return {name: table.column(name).to_numpy() for name in table.column_names}


def _codes(column: Any, values: Sequence[str]) -> Any:
    """The position of the column's value in ``values``, -1 for any other (or NULL)."""
    from pyspark.sql import functions as F

    lookup = F.create_map(*[x for i, v in enumerate(values) for x in (F.lit(v), F.lit(i))])
    return F.coalesce(lookup[column], F.lit(-1))


def load(spark: Any, sources: Mapping[str, TableSource], catalog: Catalog, *,
         declared: Mapping[str, str] | None = None, progress: Any = None) -> SparkData:
    """Read, check and code the tables; cached on the cluster until ``release``.

    :raises InputError: no customers table, a table unreadable or missing a column, or an
        unknown value tier or lifecycle.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    if "customers" not in sources:
        raise InputError("--input names no customers table: there is nobody to learn from")
    say = progress or (lambda message: None)
    raw = {t: read_table(spark, sources[t]) for t in TABLES if t in sources}
    customers = raw["customers"].where(F.col("id").isNotNull()).dropDuplicates(["id"])
    for name, members in (("value_tier", TIERS), ("lifecycle", LIFECYCLES)):
        allowed = [m.value for m in members]
        bad = customers.where(~F.col(name).isin(allowed) | F.col(name).isNull()) \
            .select(name).limit(1).collect()
        if bad:
            raise InputError(f"customers ({sources['customers']}): {name}: unknown value "
                             f"{bad[0][0]!r}; known: {', '.join(allowed)}")
    kinds = attribute_kinds(customers, declared or {})
    positions = _positions(customers.select("id").distinct())
    level = StorageLevel.MEMORY_AND_DISK
    coded = customers.join(positions, "id").select(
        "customer", "id",
        _codes(F.col("value_tier"), [m.value for m in TIERS]).cast("byte").alias("value_tier"),
        _codes(F.col("persona"), [m.value for m in PERSONAS]).cast("byte").alias("persona"),
        _codes(F.col("lifecycle"), [m.value for m in LIFECYCLES]).cast("byte")
        .alias("lifecycle"),
        F.coalesce(F.col("tenure_months"), F.lit(0)).cast("int").alias("tenure"),
        *(F.col(name).cast("double" if kind == NUMERIC else "string").alias(f"_a{i}")
          for i, (name, kind) in enumerate(kinds.items())),
    ).persist(level)
    n_customers = coded.count()
    say(f"read {n_customers:,} customers from {sources['customers']}")
    by_id = positions.withColumnRenamed("id", "customer_id")
    products = spark.createDataFrame([(p, i) for i, p in enumerate(catalog.ids)],
                                     "product_id string, product int")
    empty = {"terminals": "customer int, network byte, smartphone boolean, os byte",
             "holdings": "customer int, product int",
             "events": "customer int, product int, channel byte, kind byte, ts long"}
    terminals = spark.createDataFrame([], empty["terminals"])
    if "terminals" in raw:
        terminals = raw["terminals"].join(by_id, "customer_id").select(
            "customer",
            F.coalesce(F.substring("network", 1, 1).cast("byte"), F.lit(Network.G4.rank))
            .cast("byte").alias("network"),
            F.coalesce(F.col("smartphone"), F.lit(True)).alias("smartphone"),
            _codes(F.col("os"), [m.value for m in OSES]).cast("byte").alias("os"),
        ).dropDuplicates(["customer"])
    holdings = spark.createDataFrame([], empty["holdings"])
    if "holdings" in raw:
        holdings = raw["holdings"].join(by_id, "customer_id") \
            .join(F.broadcast(products), "product_id").select("customer", "product").distinct()
    events = spark.createDataFrame([], empty["events"])
    if "events" in raw:
        events = raw["events"].join(by_id, "customer_id") \
            .join(F.broadcast(products), "product_id").select(
                "customer", "product",
                _codes(F.col("channel"), list(CHANNEL_IDS)).cast("byte").alias("channel"),
                _codes(F.col("kind"), [m.value for m in MOMENTS]).cast("byte").alias("kind"),
                F.col("ts"),
            ).where((F.col("channel") >= 0) & (F.col("kind") >= 0) & F.col("ts").isNotNull())
    terminals, holdings, events = (f.persist(level) for f in (terminals, holdings, events))
    summary = events.agg(F.count(F.lit(1)), F.max("ts")).first()
    n_events, now = int(summary[0]), int(summary[1] or 0)
    say(f"read {n_events:,} events")
    fingerprint = hashlib.sha256(repr((sorted((t, str(s)) for t, s in sources.items()),
                                       n_customers, n_events, now)).encode()).hexdigest()
    return SparkData(spark, catalog, coded, terminals, holdings, events, n_customers,
                     n_events, now, f"spark:{fingerprint}", kinds)


def _positions(ids: Any) -> Any:
    """Each distinct ``id`` with a dense position ``customer`` (0 to n - 1), computed on the
    cluster: a row number within each partition plus the rows of the partitions before it.
    Checkpointed, so that every later use sees the same positions."""
    from pyspark.sql import functions as F

    numbered = ids.withColumn("_n", F.monotonically_increasing_id()).localCheckpoint(True)
    part = F.shiftright("_n", _POSITION_BITS)
    counts = sorted((int(r[0]), int(r[1])) for r in
                    numbered.groupBy(part.alias("p")).count().collect())
    starts, total = [], 0
    for p, count in counts:
        starts.append((p, total))
        total += count
    spark = ids.sparkSession
    offsets = spark.createDataFrame(starts or [(0, 0)], "p long, start long")
    low = F.col("_n").bitwiseAND(F.lit((1 << _POSITION_BITS) - 1))
    return numbered.join(F.broadcast(offsets), part == F.col("p")) \
        .select("id", (F.col("start") + low).cast("int").alias("customer")) \
        .localCheckpoint(True)


def from_training_data(spark: Any, data: TrainingData, *, fingerprint: str = "") -> SparkData:
    """TrainingData (held on the driver) as SparkData: for evaluating Spark fits on the
    same split as local ones (``recommender evaluate --engine spark``) and for tests."""
    import pyarrow as pa

    n = data.n_customers
    held = data.holdings.tocoo()
    ev = data.events

    def frame(columns: dict[str, np.ndarray]) -> Any:
        return spark.createDataFrame(pa.table(columns)).cache()

    customers = frame({"customer": np.arange(n, dtype=np.int32),
                       "id": np.asarray(data.customers, dtype=str),
                       "value_tier": data.value_tier.astype(np.int8),
                       "persona": _or_default(data.persona, n, -1, np.int8),
                       "lifecycle": _or_default(data.lifecycle, n, 1, np.int8),
                       "tenure": _or_default(data.tenure, n, 0, np.int32)})
    terminals = frame({"customer": np.arange(n, dtype=np.int32),
                       "network": _or_default(data.network, n, Network.G4.rank, np.int8),
                       "smartphone": _or_default(data.smartphone, n, True, bool),
                       "os": _or_default(data.os, n, -1, np.int8)})
    holdings = frame({"customer": held.row.astype(np.int32),
                      "product": held.col.astype(np.int32)})
    events = frame({"customer": ev.customer.astype(np.int32),
                    "product": ev.product.astype(np.int32),
                    "channel": ev.channel.astype(np.int8), "kind": ev.kind.astype(np.int8),
                    "ts": ev.ts.astype(np.int64)})
    return SparkData(spark, data.catalog, customers, terminals, holdings, events, n,
                     len(ev), data.now, fingerprint)


def _or_default(values: np.ndarray, n: int, default: Any, dtype: Any) -> np.ndarray:
    """A per-customer array, or ``default`` for everyone when it was left empty."""
    return values.astype(dtype) if len(values) == n else np.full(n, default, dtype)
