"""The ``recommender`` command: sample data, training, recommending and the quickstart."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .context import CHANNEL_IDS, FailureReason, Moment
from .engine import RecommendationRequest
from .errors import RecommenderError
from .workspace import DEFAULT_DIR, Workspace

dir_option = click.option(
    "--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR, show_default=True,
    help="Workspace folder holding catalog, rules, config, store and models.")


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the package's own errors into a one-line message and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RecommenderError as e:
            raise click.ClickException(str(e)) from None

    return wrapper


def _progress(message: str) -> None:
    click.echo(f"  {message}", err=True)


@click.group()
@click.version_option(package_name="recommender")
def main() -> None:
    """Touchpoint recommendations for telecom channels: TCPC context, pluggable strategies."""


@main.command("demo-data")
@dir_option
@click.option("--customers", default=2000, show_default=True, type=click.IntRange(1),
              help="Number of customers to generate.")
@click.option("--seed", default=7, show_default=True, type=int, help="Random seed.")
@click.option("--force", is_flag=True, help="Replace an existing store in the folder.")
@friendly_errors
def demo_data(directory: Path, customers: int, seed: int, force: bool) -> None:
    """Generate a seeded sample operator: catalog, rules, config, customers and events."""
    counts = _generate(Workspace(directory), customers, seed, force)
    click.echo(json.dumps({"dir": str(directory), **counts}))


def _generate(ws: Workspace, customers: int, seed: int, force: bool) -> dict[str, int]:
    from . import sampledata

    ws.root.mkdir(parents=True, exist_ok=True)
    if ws.store_path.exists():
        if not force:
            raise click.ClickException(
                f"{ws.store_path} already exists; pass --force to replace it")
        for suffix in ("", "-wal", "-shm"):
            Path(str(ws.store_path) + suffix).unlink(missing_ok=True)
    sampledata.write_workspace_files(ws.root)
    t0 = time.perf_counter()
    with ws.store() as store:
        counts = sampledata.generate(store, ws.catalog(), customers=customers, seed=seed)
        store.set_meta("generator", f"demo-data customers={customers} seed={seed}")
    _progress(f"generated {customers} customers in {time.perf_counter() - t0:.1f} s")
    return counts


@main.command("import")
@dir_option
@click.argument("table", type=click.Choice(["customers", "terminals", "holdings", "events"]))
@click.argument("csv_file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@friendly_errors
def import_(directory: Path, table: str, csv_file: Path) -> None:
    """Import a CSV file into the store: a bad row writes nothing; running it again adds
    nothing twice, so it also completes an interrupted import."""
    from .csvimport import import_file

    ws = Workspace(directory)
    catalog = ws.catalog()
    with ws.store() as store:
        result = import_file(store, catalog, table, csv_file, progress=_progress)
    _progress(f"{table}: {result.rows:,} rows, {result.stored:,} new or updated, "
              f"{result.transactions} transactions (longest "
              f"{result.longest_transaction_s * 1000:.0f} ms), written in "
              f"{result.write_s:.1f} s")
    click.echo(json.dumps({"table": table, "rows": result.rows}))


@main.command()
@dir_option
@click.option("--from-csv", "csv_dir", type=click.Path(file_okay=False, exists=True,
                                                       path_type=Path),
              help="Learn from customers.csv, terminals.csv, holdings.csv and events.csv "
                   "in this folder instead of the store.")
@click.option("--activate", is_flag=True,
              help="Also serve the new version: check it with the workspace files and "
                   "publish both to every worker of a running server (as a reload does).")
@friendly_errors
def train(directory: Path, csv_dir: Path | None, activate: bool) -> None:
    """Fit every enabled strategy on the store and write a new model version.

    The new version becomes the newest trained one (CURRENT); a running server keeps serving
    what it serves until it is reloaded, unless --activate is given (or config.toml has
    [training] activate = true).
    """
    ws = Workspace(directory)
    activate = activate or _activate_by_config(ws)
    t0 = time.perf_counter()
    model_dir = ws.train(progress=_progress, csv_dir=csv_dir)
    out: dict[str, Any] = {"model_dir": str(model_dir), "version": model_dir.name,
                           "seconds": round(time.perf_counter() - t0, 2)}
    if activate:
        out["activated"] = _activate(ws, model_dir.name)
    click.echo(json.dumps(out))


def _activate_by_config(ws: Workspace) -> bool:
    """``[training] activate = true`` in config.toml: every training is served at once."""
    from .errors import ConfigError

    training = ws.config().raw.get("training", {})
    unknown = set(training) - {"activate"}
    if unknown:
        raise ConfigError(str(ws.config_path), f"training.{sorted(unknown)[0]}",
                          "unknown key; known: activate")
    value = training.get("activate", False)
    if not isinstance(value, bool):
        raise ConfigError(str(ws.config_path), "training.activate",
                          f"must be true or false, got {value!r}")
    return value


def _activate(ws: Workspace, version: str) -> bool:
    """Publish ``version`` with the workspace files as they are now, after checking both."""
    from .plugin_manager import make_plugin_manager
    from .snapshot import EngineBuilder

    with ws.store() as store:
        engine, _ = EngineBuilder(ws.root, ws.models_path, store,
                                  make_plugin_manager()).activate(version)
        engine.close()
    _progress(f"published {version}: running servers follow within their poll interval")
    return True


@main.command()
@dir_option
@click.option("--customer", "customer_id", required=True, help="Customer id.")
@click.option("--channel", required=True, type=click.Choice(CHANNEL_IDS))
@click.option("--moment", required=True, type=click.Choice([m.value for m in Moment]))
@click.option("--product", default=None, help="The business being queried or ordered.")
@click.option("--failure-reason", default=None,
              type=click.Choice([r.value for r in FailureReason]),
              help="Why the order failed (failure moment).")
@click.option("--k", default=None, type=click.IntRange(1), help="How many suggestions.")
@click.option("--debug", is_flag=True, help="Also show exclusions, timings and errors.")
@friendly_errors
def recommend(directory: Path, customer_id: str, channel: str, moment: str,
              product: str | None, failure_reason: str | None, k: int | None,
              debug: bool) -> None:
    """Print the JSON the HTTP API returns for one request."""
    with Workspace(directory).engine(require_models=True) as engine:
        result = engine.recommend(RecommendationRequest(
            customer_id=customer_id, channel=channel, moment=moment, product=product,
            failure_reason=failure_reason, k=k, debug=debug))
    click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))


@main.command()
@click.option("--baskets", "baskets_file", type=click.Path(dir_okay=False, exists=True,
                                                          path_type=Path),
              help="Basket file: one basket per line, items comma-separated.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Mine the workspace store's holdings instead (one basket per customer).")
@click.option("--min-support", default=0.01, show_default=True,
              type=click.FloatRange(0, 1, min_open=True), help="Minimum support (fraction).")
@click.option("--min-confidence", default=0.5, show_default=True,
              type=click.FloatRange(0, 1), help="Minimum confidence.")
@click.option("--min-lift", default=0.0, show_default=True, type=click.FloatRange(0),
              help="Minimum lift.")
@click.option("--max-len", default=None, type=click.IntRange(2),
              help="Longest itemset (antecedents + consequent); unlimited if unset.")
@click.option("--format", "fmt", default="csv", show_default=True,
              type=click.Choice(["csv", "json"]))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here instead of standard output.")
@friendly_errors
def rules(baskets_file: Path | None, directory: Path | None, min_support: float,
          min_confidence: float, min_lift: float, max_len: int | None, fmt: str,
          out: Path | None) -> None:
    """Mine association rules X => y (support, confidence, lift) for analysts."""
    from .mining import mine_rules, read_baskets

    if (baskets_file is None) == (directory is None):
        raise click.UsageError("give exactly one of --baskets FILE or --dir DIR")
    t0 = time.perf_counter()
    if baskets_file is not None:
        baskets = read_baskets(baskets_file)
    else:
        ws = Workspace(directory)
        if not ws.store_path.exists():
            raise click.ClickException(f"{ws.store_path}: no store in this workspace")
        with ws.store() as store:
            baskets = store.holding_baskets()
    found = mine_rules(baskets, min_support=min_support, min_confidence=min_confidence,
                       max_len=max_len, min_lift=min_lift)
    if out is None:
        _write_rules(found, sys.stdout, fmt)
    else:
        with out.open("w", encoding="utf-8", newline="") as f:
            _write_rules(found, f, fmt)
    _progress(f"{len(found)} rules from {len(baskets)} baskets in "
              f"{time.perf_counter() - t0:.2f} s")


def _write_rules(found: list[Any], stream: Any, fmt: str) -> None:
    """Rules as CSV (antecedents joined by '|') or as the JSON list of the CLI contract."""
    import csv

    if fmt == "json":
        json.dump([r.to_dict() for r in found], stream, ensure_ascii=False, indent=1)
        stream.write("\n")
        return
    writer = csv.writer(stream)
    writer.writerow(["antecedents", "consequent", "support", "confidence", "lift", "count"])
    for r in found:
        writer.writerow(["|".join(r.antecedents), r.consequent, repr(r.support),
                         repr(r.confidence), repr(r.lift), r.count])


@main.command()
@dir_option
@click.option("--customers", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=7, show_default=True, type=int)
@friendly_errors
def quickstart(directory: Path, customers: int, seed: int) -> None:
    """Build sample data and models, then show suggestions for every moment and channel."""
    from .quickstart import run

    ws = Workspace(directory)
    if not ws.store_path.exists():
        click.echo(f"Generating a sample operator in {directory} ...")
        _generate(ws, customers, seed, force=False)
    else:
        click.echo(f"Using the sample operator already in {directory}.")
    click.echo("Training ...")
    ws.train(progress=_progress)
    run(ws, click.echo)


@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, exists=True,
              path_type=Path), help="Evaluate on this workspace's store.")
@click.option("--from-csv", "csv_dir", type=click.Path(file_okay=False, exists=True,
              path_type=Path), help="With --dir: evaluate on the project's CSV files in this "
              "folder (customers.csv, holdings.csv, events.csv...) instead of the store.")
@click.option("--input", "input_file", type=click.Path(dir_okay=False, exists=True,
              path_type=Path), help="Evaluate on this file instead (see --input-format).")
@click.option("--input-format", type=click.Choice(["csv", "movielens", "baskets"]),
              default="csv", show_default=True,
              help="csv: long format user,item,timestamp[,weight]; movielens: u.data; "
                   "baskets: one basket per line.")
@click.option("--user-column", default="user", show_default=True)
@click.option("--item-column", default="item", show_default=True)
@click.option("--time-column", default="timestamp", show_default=True)
@click.option("--weight-column", default="weight", show_default=True,
              help="Rows with a weight of 0 or less are skipped (returns); '' for none.")
@click.option("--split", "split_kind", type=click.Choice(["temporal", "leave-last", "random"]),
              default="temporal", show_default=True)
@click.option("--per-customer", is_flag=True,
              help="Temporal split per customer instead of one global cut in time.")
@click.option("--test-fraction", default=0.2, show_default=True, type=click.FloatRange(
              0, 1, min_open=True, max_open=True))
@click.option("--leave-out", default=1, show_default=True, type=click.IntRange(1),
              help="Orders held out per customer by --split leave-last.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--k", "ks", default="5,10,20", show_default=True,
              help="Cut-offs, comma-separated.")
@click.option("--strategies", default="cf,association", show_default=True,
              help="Comma-separated names; a blend is name+name or name:w+name:w. "
                   "Popularity is always added as the baseline.")
@click.option("--moments", default="query", show_default=True,
              help="Moments to ask at: query and/or success; the first is the headline.")
@click.option("--param", "params", multiple=True, metavar="STRATEGY.KEY=VALUE",
              help="Override a strategy setting, e.g. cf.factors=64 (repeatable).")
@click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(0),
              help="Bootstrap resamples for the confidence intervals (0: none).")
@click.option("--max-users", default=None, type=click.IntRange(1),
              help="Evaluate a seeded sample of at most this many customers.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write {strategy: {metric@k: value}} here.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a self-contained HTML report with plots here.")
@friendly_errors
def evaluate(directory: Path | None, csv_dir: Path | None, input_file: Path | None,
             input_format: str,
             user_column: str, item_column: str, time_column: str, weight_column: str,
             split_kind: str, per_customer: bool, test_fraction: float, leave_out: int,
             seed: int, ks: str, strategies: str, moments: str, params: tuple[str, ...],
             bootstrap: int, max_users: int | None, json_file: Path | None,
             html_file: Path | None) -> None:
    """Evaluate strategies and blends offline, served the way the engine serves them."""
    from . import evaluation as ev

    if (directory is None) == (input_file is None):
        raise click.UsageError("give exactly one of --dir and --input")
    try:
        cutoffs = tuple(int(k) for k in ks.split(",") if k.strip())
    except ValueError:
        raise click.BadParameter(f"not a comma-separated list of integers: {ks!r}",
                                 param_hint="--k") from None
    if not cutoffs or min(cutoffs) < 1:
        raise click.BadParameter("each k must be at least 1", param_hint="--k")
    click.echo("loading ...", err=True)
    if csv_dir is not None and directory is None:
        raise click.UsageError("--from-csv needs --dir (the workspace whose catalog to use)")
    if directory is not None:
        source = ev.from_workspace(directory, csv_dir)
    else:
        source = ev.load(input_file, input_format, user=user_column, item=item_column,
                         timestamp=time_column, weight=weight_column or None)
    source = _with_params(source, params)
    try:
        split = ev.make_split(source.data, split_kind, test_fraction=test_fraction, seed=seed,
                              per_customer=per_customer, leave_out=leave_out)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--split/--test-fraction") from None
    click.echo(f"split: {split.protocol}", err=True)
    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.render_finish()
            bars[stage] = click.progressbar(length=total, label=f"  {stage}", file=sys.stderr)
        bar = bars[stage]
        bar.update(done - bar.pos)

    try:
        result = ev.evaluate(source, split, [s for s in strategies.split(",") if s.strip()],
                             ks=cutoffs, moments=[m.strip() for m in moments.split(",")],
                             bootstrap_samples=bootstrap, seed=seed, max_users=max_users,
                             progress=progress)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--strategies/--moments") from None
    for bar in bars.values():
        bar.render_finish()
    if directory is not None and csv_dir is None:
        with Workspace(directory).store() as store:
            result.online = ev.funnel(store)
    click.echo(ev.table(result))
    if json_file:
        json_file.write_text(json.dumps(result.to_json(), indent=2, ensure_ascii=False))
        click.echo(f"wrote {json_file}", err=True)
    if html_file:
        html_file.write_text(ev.html_report(result), encoding="utf-8")
        click.echo(f"wrote {html_file}", err=True)


def _with_params(source: Any, params: tuple[str, ...]) -> Any:
    """Apply --param strategy.key=value overrides to the evaluation's configuration."""
    import dataclasses

    from .config import Config

    if not params:
        return source
    raw = {key: dict(value) if isinstance(value, dict) else value
           for key, value in source.config.raw.items()}
    strategies = {name: dict(v) for name, v in raw.get("strategies", {}).items()}
    for param in params:
        target, sep, text = param.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or not name or not key:
            raise click.BadParameter(f"expected STRATEGY.KEY=VALUE, got {param!r}",
                                     param_hint="--param")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        strategies.setdefault(name, {})[key] = value
    raw["strategies"] = strategies
    config = Config.from_dict(raw, root=source.config.root)
    return dataclasses.replace(source, config=config)


@main.command()
@dir_option
@click.option("--host", default=None, help="Interface to listen on [default: 127.0.0.1, or "
              "[server] bind].")
@click.option("--port", default=None, type=click.IntRange(0, 65535),
              help="Port to listen on [default: 8000, or [server] bind].")
@click.option("--workers", default=None, type=click.IntRange(1),
              help="Worker processes [default: number of cores, or [server] workers].")
@click.option("--threads", default=None, type=click.IntRange(1),
              help="Threads per worker [default: 4, or [server] threads].")
@click.option("--timeout", default=None, type=click.IntRange(1),
              help="Seconds before a silent worker is restarted [default: 30].")
@click.option("--access-log/--no-access-log", default=True, show_default=True)
@click.option("--dev", is_flag=True, help="Use Flask's development server (one process).")
@friendly_errors
def serve(directory: Path, host: str | None, port: int | None, workers: int | None,
          threads: int | None, timeout: int | None, access_log: bool, dev: bool) -> None:
    """Serve the HTTP API over a workspace (gunicorn; --dev for Flask's server).

    Settings come from the [server] table of config.toml and RECOMMENDER_* environment
    variables; the options here win over both.
    """
    if dev:
        _serve(directory, host, port, workers, threads, timeout, access_log, dev)
        return
    # Workers pool their metrics in one folder; it must be known before prometheus_client
    # is imported, which importing the api package does.
    owned = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        owned = tempfile.mkdtemp(prefix="recommender-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = owned
    try:
        _serve(directory, host, port, workers, threads, timeout, access_log, dev)
    finally:
        if owned:
            shutil.rmtree(owned, ignore_errors=True)


def _serve(directory: Path, host: str | None, port: int | None, workers: int | None,
           threads: int | None, timeout: int | None, access_log: bool, dev: bool) -> None:
    from api.settings import ServerSettings

    settings = ServerSettings.load(directory)
    if not Workspace(settings.root).exists():
        raise click.ClickException(f"{settings.root}: no workspace here; create one with "
                                   f"'recommender quickstart --dir {settings.root}'")
    if not dev:
        _check_and_publish(settings)
    bind_host, _, bind_port = settings.bind.rpartition(":")
    host = host or bind_host or "127.0.0.1"
    port = port if port is not None else int(bind_port or 8000)
    if dev:
        from api import create_app

        create_app(settings.root).run(host=host, port=port, threaded=True)
        return
    from api.server import serve as run_gunicorn

    settings = dataclasses.replace(settings, workers=workers or settings.workers,
                                   threads=threads or settings.threads)
    run_gunicorn(settings, bind=f"{host}:{port}", workers=workers or settings.workers,
                 threads=threads or settings.threads, timeout=timeout or settings.timeout,
                 access_log=access_log)


def _check_and_publish(settings: Any) -> None:
    """Before any worker starts: check the workspace files and the newest model, and publish
    them as what every worker serves. A problem stops the server here, named, rather than
    as workers that fail to boot."""
    from .plugin_manager import make_plugin_manager
    from .snapshot import EngineBuilder
    from .store import Store
    from .workspace import Workspace

    ws = Workspace(settings.root)
    with Store(settings.store or ws.store_path) as store:
        engine, record = EngineBuilder(settings.root, settings.models or ws.models_path, store,
                                       make_plugin_manager()).activate()
        engine.close()
    _progress(f"serving model {record.version}, files {record.snapshot[:12]}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
