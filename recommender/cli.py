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
from .errors import ConfigError, RecommenderError
from .i18n import LOCALES
from .spark.cli import check_engine, spark_options
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
    from .attributes import declared_kinds
    from .csvimport import import_file

    ws = Workspace(directory)
    catalog = ws.catalog()
    config = ws.config()
    with ws.store() as store:
        result = import_file(store, catalog, table, csv_file, progress=_progress,
                             attribute_kinds=declared_kinds(config.raw, config.source))
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
@click.option("--strategies", "only", default=None, metavar="NAME[,NAME...]",
              help="Fit only these strategies; copy the others from the current version.")
@spark_options(sample=True)
@friendly_errors
def train(directory: Path, csv_dir: Path | None, activate: bool, only: str | None,
          engine_name: str, master: str, inputs: tuple[str, ...], sample: int | None) -> None:
    """Fit every enabled strategy on the store and write a new model version.

    The new version becomes the newest trained one (CURRENT); a running server keeps serving
    what it serves until it is reloaded, unless --activate is given (or config.toml has
    [training] activate = true). A strategy whose training fails is left out of the version,
    which is written with the others but not activated; the exit status is then 1.
    """
    ws = Workspace(directory)
    activate = activate or _activate_by_config(ws)
    names = None if only is None else [n.strip() for n in only.split(",") if n.strip()]
    if names is not None and not names:
        raise click.BadParameter("name at least one strategy", param_hint="--strategies")
    t0 = time.perf_counter()
    check_engine(engine_name, inputs=inputs, sample=sample)
    if engine_name == "spark":
        if csv_dir is not None:
            raise click.UsageError("with --engine spark, name the CSV folder with --input")
        from .spark import cli as spark_cli

        model_dir = spark_cli.train(ws, master, inputs, only=names, sample=sample,
                                    progress=_progress)
    else:
        model_dir = ws.train(progress=_progress, csv_dir=csv_dir, only=names)
    failed = json.loads((model_dir / "manifest.json").read_text()).get("failed", {})
    out: dict[str, Any] = {"model_dir": str(model_dir), "version": model_dir.name,
                           "seconds": round(time.perf_counter() - t0, 2)}
    if failed:
        out["failed"] = failed
    elif activate:
        out["activated"] = _activate(ws, model_dir.name)
    click.echo(json.dumps(out, ensure_ascii=False))
    if failed:
        names = ", ".join(f"{n} (plugin {f['plugin']!r})" for n, f in failed.items())
        click.echo(f"Error: training failed for {names}; {model_dir.name} was written without "
                   f"{'it' if len(failed) == 1 else 'them'}"
                   + (" and not activated" if activate else ""), err=True)
        sys.exit(1)


def _writable_file(option: str, path: Path | None) -> None:
    """Make the folder ``path`` is to be written in (a workspace's ``reports/`` on first use;
    where a link points), or refuse the option with the reason."""
    if path is None:
        return
    target = path.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise click.BadParameter(f"cannot make the folder {target.parent}: {e.strerror or e}",
                                 param_hint=option) from None
    if target.is_dir():
        raise click.BadParameter(f"{path} is a folder", param_hint=option)
    if not os.access(target if target.exists() else target.parent, os.W_OK):
        raise click.BadParameter(f"cannot write {path}", param_hint=option)


def _write_report(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror or e}") from None
    click.echo(f"wrote {path}", err=True)


def _activate_by_config(ws: Workspace) -> bool:
    """``[training] activate = true`` in config.toml: every training is served at once."""
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
    from .snapshot import EngineBuilder, published, server_changes, snapshot_server_table

    with ws.store() as store:
        before = published(store)
        engine, record = EngineBuilder(ws.root, ws.models_path, store,
                                       make_plugin_manager()).activate(version)
        engine.close()
        changed = [] if before is None else server_changes(
            snapshot_server_table(store, before), snapshot_server_table(store, record))
    _progress(f"published {version}: running servers follow within their poll interval")
    if changed:
        _progress(f"note: config.toml changes {', '.join(changed)} from the files served "
                  f"before: running servers serve the new files but keep the [server] "
                  f"settings they started with; restart them to apply these")
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
@click.option("--locale", default=None, type=click.Choice(LOCALES),
              help="Language of the sentences [default: the channel's, config.toml [locale]].")
@click.option("--event", default=None, help="A service event of events.toml (phone_lost...).")
@click.option("--debug", is_flag=True, help="Also show exclusions, timings and errors.")
@friendly_errors
def recommend(directory: Path, customer_id: str, channel: str, moment: str,
              product: str | None, failure_reason: str | None, k: int | None,
              locale: str | None, event: str | None, debug: bool) -> None:
    """Print the JSON the HTTP API returns for one request."""
    with Workspace(directory).engine(require_models=True) as engine:
        result = engine.recommend(RecommendationRequest(
            customer_id=customer_id, channel=channel, moment=moment, product=product,
            failure_reason=failure_reason, k=k, debug=debug, locale=locale, event=event))
    click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))


@main.command()
@dir_option
@click.option("--customer", "customer_id", required=True, help="Customer id.")
@click.option("--channel", required=True, type=click.Choice(CHANNEL_IDS))
@click.option("--product", required=True, help="The business about to be ordered.")
@click.option("--locale", default=None, type=click.Choice(LOCALES),
              help="Language of the sentences [default: the channel's].")
@friendly_errors
def check(directory: Path, customer_id: str, channel: str, product: str,
          locale: str | None) -> None:
    """Print the pre-order check POST /v1/checks returns: will the order succeed, why not,
    and what works instead."""
    with Workspace(directory).engine(require_models=True) as engine:
        context, _ = engine.build_context(RecommendationRequest(
            customer_id=customer_id, channel=channel, moment="transaction", product=product,
            locale=locale))
        result = engine.check(context)
    click.echo(json.dumps({"request_id": context.request_id, "channel": channel,
                           "locale": context.locale, "check": result.to_dict()},
                          ensure_ascii=False, indent=2))


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
@click.option("--memory-budget-mb", type=click.FloatRange(0, min_open=True),
              help="Stop with an error rather than use more memory for itemsets and rules "
                   "[default: a quarter of the available memory, at most 2048].")
@click.option("--max-itemsets", type=click.IntRange(1),
              help="Stop with an error beyond this many frequent itemsets [default: no cap].")
@spark_options()
@friendly_errors
def rules(baskets_file: Path | None, directory: Path | None, min_support: float,
          min_confidence: float, min_lift: float, max_len: int | None, fmt: str,
          out: Path | None, memory_budget_mb: float | None, max_itemsets: int | None,
          engine_name: str, master: str, inputs: tuple[str, ...]) -> None:
    """Mine association rules X => y (support, confidence, lift) for analysts."""
    from .mining import MiningLimitError, mine_rules, read_baskets

    check_engine(engine_name, inputs=inputs, needs_input=False)
    if engine_name == "local" and (baskets_file is None) == (directory is None):
        raise click.UsageError("give exactly one of --baskets FILE or --dir DIR")
    _writable_file("--out", out)  # before the mining, not after it
    t0 = time.perf_counter()
    if engine_name == "spark":
        baskets = None
    elif baskets_file is not None:
        baskets = read_baskets(baskets_file)
    else:
        ws = Workspace(directory)
        if not ws.store_path.exists():
            raise click.ClickException(f"{ws.store_path}: no store in this workspace")
        with ws.store() as store:
            baskets = store.holding_baskets()
    budget = None if memory_budget_mb is None else int(memory_budget_mb * 2**20)
    settings = {"min_support": min_support, "min_confidence": min_confidence,
                "max_len": max_len, "min_lift": min_lift, "memory_budget": budget,
                "max_itemsets": max_itemsets}
    try:
        if engine_name == "spark":
            from .spark import cli as spark_cli

            found, n_baskets = spark_cli.rules(master, inputs, baskets_file, directory,
                                               **settings)
        else:
            found, n_baskets = mine_rules(baskets, **settings), len(baskets)
    except MiningLimitError as e:
        raise e.named(min_support="--min-support", max_len="--max-len",
                      memory_budget="--memory-budget-mb", max_itemsets="--max-itemsets") from None
    if out is None:
        _write_rules(found, sys.stdout, fmt)
    else:
        try:
            with out.open("w", encoding="utf-8", newline="") as f:
                _write_rules(found, f, fmt)
        except OSError as e:
            raise click.ClickException(f"cannot write {out}: {e.strerror or e}") from None
    _progress(f"{len(found)} rules from {n_baskets} baskets in "
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
              default=None, help="Default: temporal; for a basket file, leave-last (one random "
              "item of each basket held out); for a ratings file (movielens), random per "
              "customer.")
@click.option("--per-customer", is_flag=True,
              help="Split each customer's own orders (temporal: their latest; random: a random "
                   "share) instead of all orders at once.")
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
              help="Override a strategy setting, e.g. cf.factors=64 (repeatable; "
                   "--list-params shows them all).")
@click.option("--list-params", is_flag=True, is_eager=True, expose_value=False,
              callback=lambda ctx, _, value: _list_params(ctx) if value else None,
              help="Print every strategy's settings (the --param keys) and exit.")
@click.option("--bootstrap", default=1000, show_default=True, type=click.IntRange(0),
              help="Bootstrap resamples for the confidence intervals (0: none).")
@click.option("--max-users", default=None, type=click.IntRange(1),
              help="Evaluate a seeded sample of at most this many customers.")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write {strategy: {metric@k: value}} here.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a self-contained HTML report with plots here.")
@spark_options(inputs=False)
@friendly_errors
def evaluate(directory: Path | None, csv_dir: Path | None, input_file: Path | None,
             input_format: str,
             user_column: str, item_column: str, time_column: str, weight_column: str,
             split_kind: str | None, per_customer: bool, test_fraction: float, leave_out: int,
             seed: int, ks: str, strategies: str, moments: str, params: tuple[str, ...],
             bootstrap: int, max_users: int | None, json_file: Path | None,
             html_file: Path | None, engine_name: str, master: str) -> None:
    """Evaluate strategies and blends offline, served the way the engine serves them."""
    from . import evaluation as ev

    if (directory is None) == (input_file is None):
        raise click.UsageError("give exactly one of --dir and --input")
    try:
        cutoffs = tuple(int(k) for k in ks.split(",") if k.strip())
    except ValueError:
        raise click.BadParameter(f"not a comma-separated list of integers: {ks!r}",
                                 param_hint="--k") from None
    if not cutoffs:
        raise click.BadParameter("give at least one cutoff, as in 5,10", param_hint="--k")
    if min(cutoffs) < 1:
        raise click.BadParameter("each k must be at least 1", param_hint="--k")
    if csv_dir is not None and directory is None:
        raise click.UsageError("--from-csv needs --dir (the workspace whose catalog to use)")
    for option, path in (("--json", json_file), ("--html", html_file)):
        _writable_file(option, path)  # before the run, not after it
    click.echo("loading ...", err=True)
    if directory is not None:
        source = ev.from_workspace(directory, csv_dir)
    else:
        source = ev.load(input_file, input_format, user=user_column, item=item_column,
                         timestamp=time_column, weight=weight_column or None)
    source = _with_params(source, params)
    try:
        split = ev.split_source(source, split_kind, test_fraction=test_fraction, seed=seed,
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

    from .spark.cli import evaluation_plugins

    try:
        with evaluation_plugins(engine_name, master) as plugin_manager:
            result = ev.evaluate(source, split, [s for s in strategies.split(",") if s.strip()],
                                 ks=cutoffs, moments=[m.strip() for m in moments.split(",")],
                                 bootstrap_samples=bootstrap, seed=seed, max_users=max_users,
                                 plugin_manager=plugin_manager, progress=progress)
    except ConfigError as e:
        setting = e.key.removeprefix("strategies.")
        strategy = setting.partition(".")[0]
        if not e.key.startswith("strategies.") or not any(
                p.partition("=")[0].strip().partition(".")[0] == strategy for p in params):
            raise
        raise click.BadParameter(f"{setting}: {e.message.removeprefix(strategy + ': ')}",
                                 param_hint="--param") from None
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--strategies/--moments") from None
    for bar in bars.values():
        bar.render_finish()
    if directory is not None and csv_dir is None:
        with Workspace(directory).store() as store:
            result.online = ev.funnel(store)
    click.echo(ev.table(result))
    if json_file:
        _write_report(json_file, json.dumps(result.to_json(), indent=2, ensure_ascii=False))
    if html_file:
        _write_report(html_file, ev.html_report(result))


def _list_params(ctx: click.Context) -> None:
    from .strategy_settings import registered_settings, settings_markdown

    click.echo(settings_markdown(registered_settings()), nl=False)
    ctx.exit()


def _with_params(source: Any, params: tuple[str, ...]) -> Any:
    """Apply --param strategy.key=value overrides to the evaluation's configuration."""
    import dataclasses

    from .config import Config

    if not params:
        return source
    from .strategy_settings import registered_settings

    known: dict[str, list[str]] = {}
    for setting in registered_settings():
        known.setdefault(setting.strategy, []).append(setting.key)
    raw = {key: dict(value) if isinstance(value, dict) else value
           for key, value in source.config.raw.items()}
    strategies = {name: dict(v) for name, v in raw.get("strategies", {}).items()}
    for param in params:
        target, sep, text = param.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or not name or not key:
            raise click.BadParameter(f"expected STRATEGY.KEY=VALUE, got {param!r}",
                                     param_hint="--param")
        if name in known and key not in known[name]:
            raise click.BadParameter(f"{param!r}: {name} has no setting {key!r}; it takes "
                                     f"{', '.join(known[name])} (see --list-params)",
                                     param_hint="--param")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        strategies.setdefault(name, {})[key] = value
    raw["strategies"] = strategies
    config = Config.from_dict(raw, root=source.config.root)
    return dataclasses.replace(source, config=config)


def _products(values: tuple[str, ...]) -> list[str]:
    """``--product a --product b`` or ``--product a,b``."""
    return [p.strip() for value in values for p in value.split(",") if p.strip()]


def _outbound_engine(ws: Workspace) -> Any:
    """The engine with the current models, and its trained bulk scorer (propensity)."""
    from .errors import ModelError

    engine = ws.engine(require_models=True)
    scorer = engine.strategies.get("propensity")
    if scorer is None or not scorer.is_fitted:
        engine.close()
        raise ModelError(f"{ws.models_path}: the current model version has no trained "
                         f"propensity strategy; run 'recommender train --dir {ws.root}' "
                         f"(it is trained unless [targeting] strategies leaves it out)")
    return engine, scorer


@main.command()
@dir_option
@click.option("--product", "products", multiple=True, required=True,
              help="Business to target (repeat, or comma-separate, for several).")
@click.option("--top", default=None, type=click.IntRange(1),
              help="How many customers per business.")
@click.option("--min-score", default=None, type=click.FloatRange(0, 1),
              help="Every customer scoring at least this (a probability).")
@click.option("--customers", "customers_file",
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Only these customers: a CSV of ids (header 'id'), or customers with "
                   "their own columns (the customers.csv format), scored as given.")
@click.option("--channel", default=None, type=click.Choice(CHANNEL_IDS),
              help="Leave out customers who cannot take it on this channel.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this .csv or .parquet file instead of standard output.")
@click.option("--locale", default=None, type=click.Choice(LOCALES),
              help="Language of the reasons [default: the channel's, config.toml [locale]].")
@spark_options()
@friendly_errors
def target(directory: Path, products: tuple[str, ...], top: int | None,
           min_score: float | None, customers_file: Path | None, channel: str | None,
           out: Path | None, locale: str | None, engine_name: str, master: str,
           inputs: tuple[str, ...]) -> None:
    """Rank the customers to offer a business to: eligible ones only, the contact policy
    respected, best first, with score, strategies and reasons."""
    from .attributes import declared_kinds
    from .batch import OfferWriter
    from .targeting import TARGET_COLUMNS, read_customers
    from .targeting import target as run_target

    if top is None and min_score is None:
        raise click.UsageError("give --top N or --min-score S (or both)")
    if out is not None:
        OfferWriter.check(out)  # before the scoring, not after it
    ws = Workspace(directory)
    t0 = time.perf_counter()
    check_engine(engine_name, inputs=inputs)
    if engine_name == "spark":
        from .spark import cli as spark_cli

        customers = spark_cli.ids_file(customers_file)
        audiences = spark_cli.target(ws, master, inputs, _products(products), ids=customers,
                                     top=top, min_score=min_score, channel=channel,
                                     locale=locale)
    else:
        engine, scorer = _outbound_engine(ws)
        with engine:
            store, catalog, config = engine.store, engine.catalog, engine.config
            customers = None
            if customers_file is not None:
                customers = read_customers(customers_file, store, catalog,
                                           declared_kinds(config.raw, config.source))
            total = len(customers) if isinstance(customers, list) else \
                customers.data.n_customers if customers is not None else \
                store.count("customers")
            with click.progressbar(length=total, label="  scoring", file=sys.stderr) as bar:
                audiences = run_target(store, catalog, config, scorer, _products(products),
                                       top=top, min_score=min_score, customers=customers,
                                       channel=channel, progress=bar.update, locale=locale)
    rows = [row for audience in audiences for row in audience.rows()]
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in TARGET_COLUMNS]
    if out is None:
        import csv

        writer = csv.writer(sys.stdout)
        writer.writerow(TARGET_COLUMNS)
        writer.writerows((p, r, c, f"{s:.6g}", st, why) for p, r, c, s, st, why in rows)
    else:
        with OfferWriter(out, TARGET_COLUMNS, ("str", "int", "str", "float", "str", "str")
                         ) as writer:
            writer.write(columns)
    summary = {"products": [{k: v for k, v in a.to_dict().items() if k != "customers"}
                            for a in audiences],
               "seconds": round(time.perf_counter() - t0, 2)}
    if isinstance(customers, list) and audiences:
        summary["not_found"] = len(set(customers)) - audiences[0].scanned
    if out is not None:
        summary["out"] = str(out)
    click.echo(json.dumps(summary), err=out is None)


@main.command()
@dir_option
@click.option("--channel", required=True, type=click.Choice(CHANNEL_IDS),
              help="The channel the offers are for (its eligibility and policy).")
@click.option("--moment", default="query", show_default=True,
              type=click.Choice([m.value for m in Moment]),
              help="The moment the offers are for (the policy's exempt moments).")
@click.option("--k", default=3, show_default=True, type=click.IntRange(1, 100),
              help="Offers per customer.")
@click.option("--customers", "customers_file",
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Only these customers: a CSV of ids (header 'id').")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="The .csv or .parquet file to write (with --engine spark: a folder of "
                   "part files, a path or URI every executor reaches).")
@click.option("--page", default=10_000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Customers read, scored and written at a time (bounds memory).")
@click.option("--locale", default=None, type=click.Choice(LOCALES),
              help="Language of the reasons [default: the channel's, config.toml [locale]].")
@spark_options()
@friendly_errors
def batch(directory: Path, channel: str, moment: str, k: int, customers_file: Path | None,
          out: str, page: int, locale: str | None, engine_name: str, master: str,
          inputs: tuple[str, ...]) -> None:
    """Next-best offers for every customer (or a file of ids) on one channel: top-k each,
    eligible and within the contact policy, for a front-end cache or an SMS send.

    With --engine spark, the executors write --out as a folder of part files."""
    from .batch import batch as run_batch
    from .errors import ImportRowError
    from .targeting import read_customers

    ws = Workspace(directory)
    check_engine(engine_name, inputs=inputs)
    if engine_name == "spark":
        from .spark import cli as spark_cli

        result = spark_cli.batch(ws, master, inputs, out, ids=spark_cli.ids_file(
            customers_file), channel=channel, moment=moment, k=k, page=page, locale=locale)
    else:
        engine, scorer = _outbound_engine(ws)
        with engine:
            store, catalog, config = engine.store, engine.catalog, engine.config
            ids = None
            if customers_file is not None:
                ids = read_customers(customers_file, store, catalog)
                if not isinstance(ids, list):
                    raise ImportRowError(str(customers_file), 1, None,
                                         "batch takes a file of ids (one column, header 'id')")
            total = len(set(ids)) if ids is not None else store.count("customers")
            with click.progressbar(length=total, label="  customers", file=sys.stderr) as bar:
                result = run_batch(store, catalog, config, scorer, Path(out), channel=channel,
                                   moment=moment, k=k, ids=ids, page=page, progress=bar.update,
                                   locale=locale)
    click.echo(json.dumps({"out": result.path, "customers": result.customers,
                           "offers": result.offers, "without_offer": result.without_offer,
                           "seconds": round(result.seconds, 2)}))


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


@main.command()
@dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@friendly_errors
def plugins(directory: Path, as_json: bool) -> None:
    """List every registered plugin: its distribution and version, the hooks it implements,
    its strategies and whether each is trained in the current model."""
    from .plugin_info import engine_plugins

    ws = Workspace(directory)
    with (ws.engine() if ws.exists() else _bare_engine()) as engine:
        infos = engine_plugins(engine)
        version = engine.model_version if engine.trained_strategies else None
        warnings = engine.load_warnings
    if as_json:
        click.echo(json.dumps({"model_version": version, "load_warnings": list(warnings),
                               "plugins": [i.as_dict() for i in infos]},
                              ensure_ascii=False, indent=2))
        return
    click.echo(f"model: {version or 'none trained'}"
               + ("" if ws.exists() else f" (no workspace in {directory})"))
    rows = [("plugin", "distribution", "hooks", "strategies")]
    for info in infos:
        where = f"{info.distribution or '(not installed)'} {info.version or ''}".strip()
        strategies = ", ".join(f"{s} ({info.training[s]})" for s in info.strategies)
        rows.append((info.name + ("" if info.builtin else " *"), where, ", ".join(info.hooks),
                     strategies or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    for row in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  "
                   + row[3])
    if any(not i.builtin for i in infos):
        click.echo("* installed separately (entry point or registered by the host)")
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)


@main.command("new-plugin")
@click.argument("name")
@click.option("--out", "parent", default=".", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the package recommender-NAME into.")
@friendly_errors
def new_plugin(name: str, parent: Path) -> None:
    """Write a strategy plugin package: entry point, a learning strategy with validated
    settings, and tests on the testing kit's trained sample operator."""
    from .scaffold import write_plugin

    folder = write_plugin(name, parent)
    click.echo(f"wrote {folder}\n  pip install -e \"{folder}[test]\" && "
               f"python -m pytest {folder}/tests")


def _bare_engine() -> Any:
    """An engine over the built-in defaults, to list plugins outside any workspace."""
    from .catalog import Catalog
    from .engine import Engine
    from .sampledata import write_workspace_files

    with tempfile.TemporaryDirectory() as tmp:
        write_workspace_files(Path(tmp))
        catalog = Catalog.from_toml(Path(tmp) / "catalog.toml")
    return Engine(catalog)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
