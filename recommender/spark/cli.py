"""The ``--engine spark`` side of the command line: options and what each command runs.

``recommender.cli`` adds :func:`spark_options` to ``train``, ``rules``, ``batch``,
``target`` and ``evaluate`` and hands over here when ``--engine spark`` is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..workspace import Workspace
from .session import DEFAULT_MASTER

ENGINES = ("local", "spark")


def spark_options(*, inputs: bool = True, sample: bool = False
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--engine``, ``--master`` and, if asked, ``--input`` and ``--sample``."""
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        if sample:
            command = click.option(
                "--sample", type=click.IntRange(1), default=None,
                help="With --engine spark: fit the strategies that have no Spark fit locally "
                     "on this many customers drawn at random (else they are refused).")(command)
        if inputs:
            command = click.option(
                "--input", "inputs", multiple=True, metavar="TABLES",
                help="With --engine spark: the import schema's tables (customers, terminals, "
                     "holdings, events): a folder of TABLE.parquet, TABLE/ or TABLE.csv, "
                     "hive:DATABASE, or TABLE=PATH|hive:DB.TABLE; repeatable.")(command)
        command = click.option(
            "--master", default=DEFAULT_MASTER, show_default=True,
            help="With --engine spark: the Spark master (local[2], yarn, spark://HOST:7077); "
                 "under spark-submit its session is used.")(command)
        return click.option(
            "--engine", "engine_name", type=click.Choice(ENGINES), default="local",
            show_default=True,
            help="local: this process; spark: Apache Spark (pip install "
                 "'recommender[spark]', Java 17+).")(command)
    return decorate


def check_engine(engine: str, *, inputs: Sequence[str] = (), sample: int | None = None,
                 needs_input: bool = True) -> None:
    """``--input`` and ``--sample`` belong to ``--engine spark``, which needs ``--input``."""
    if engine == "local" and (inputs or sample is not None):
        raise click.UsageError("--input and --sample go with --engine spark")
    if engine == "spark" and needs_input and not inputs:
        raise click.UsageError("--engine spark reads the tables named by --input (a folder "
                               "of customers.parquet, terminals.parquet, ...)")


def _progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


@contextmanager
def session(master: str) -> Iterator[Any]:
    from .session import spark_session

    with spark_session(master, progress=_progress) as spark:
        yield spark


def train(ws: Workspace, master: str, inputs: Sequence[str], *, only: Sequence[str] | None,
          sample: int | None, progress: Callable[[str], None]) -> Path:
    """Fit on Spark and write a new model version of ``ws``."""
    from .tables import parse_inputs
    from .train import train_on_spark

    sources = parse_inputs(inputs)
    with session(master) as spark:
        return train_on_spark(ws, spark, sources, progress=progress, only=only, sample=sample)


def rules(master: str, inputs: Sequence[str], baskets_file: Path | None,
          directory: Path | None, **settings: Any) -> tuple[list[Any], int]:
    """Rules mined on Spark from a basket file, a workspace's holdings or the ``--input``
    tables' holdings; with the basket count."""
    from .mining import list_baskets, mine_rules_spark, table_baskets, text_baskets
    from .tables import parse_inputs

    given = sum(x is not None and x != () for x in (baskets_file, directory, inputs or None))
    if given != 1:
        raise click.UsageError("give exactly one of --baskets FILE, --dir DIR or --input TABLES")
    with session(master) as spark:
        if baskets_file is not None:
            baskets = text_baskets(spark, str(baskets_file))
        elif directory is not None:
            ws = Workspace(directory)
            if not ws.store_path.exists():
                raise click.ClickException(f"{ws.store_path}: no store in this workspace")
            with ws.store() as store:
                found = store.holding_baskets()
            baskets = list_baskets(spark, found)
        else:
            baskets = table_baskets(spark, parse_inputs(inputs))
        return mine_rules_spark(baskets, **settings), baskets.n


def ids_file(path: Path | None) -> list[str] | None:
    """A ``--customers`` file of ids (header ``id``) for Spark scoring; None without one.

    :raises ImportRowError: the file holds customers with their own columns, which only
        local scoring reads.
    """
    import csv

    from ..errors import ImportRowError
    from ..targeting import read_customers

    if path is None:
        return None
    with path.open(encoding="utf-8-sig", newline="") as f:
        header = [h.strip() for h in next(csv.reader(f), [])]
    if header not in (["id"], ["customer_id"]):
        raise ImportRowError(str(path), 1, None, "with --engine spark, --customers is a file "
                                                 "of ids (one column, header 'id')")
    return read_customers(path, None, None)  # type: ignore[arg-type, return-value]


def batch(ws: Workspace, master: str, inputs: Sequence[str], out: str, *,
          ids: Sequence[str] | None, **settings: Any) -> Any:
    """``recommender batch`` on Spark: a folder of part files at ``out``."""
    from .scoring import batch_on_spark
    from .tables import parse_inputs

    sources = parse_inputs(inputs)
    with session(master) as spark:
        return batch_on_spark(spark, ws, sources, out, ids=ids, **settings)


def target(ws: Workspace, master: str, inputs: Sequence[str], products: Sequence[str], *,
           ids: Sequence[str] | None, **settings: Any) -> list[Any]:
    """``recommender target`` on Spark: the audiences, merged on the driver."""
    from .scoring import target_on_spark
    from .tables import parse_inputs

    sources = parse_inputs(inputs)
    with session(master) as spark:
        return target_on_spark(spark, ws, sources, products, ids=ids, **settings)


@contextmanager
def evaluation_plugins(engine: str, master: str) -> Iterator[Any]:
    """The plugin manager for ``recommender evaluate``: None (the default) locally."""
    if engine == "local":
        yield None
        return
    from .plugin import spark_plugin_manager

    with session(master) as spark:
        yield spark_plugin_manager(spark)
