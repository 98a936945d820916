"""Marketing's rules and the blend weights: list, edit, dry-run, save.

Forms are filled from the files on disk (what a save would change) and checked by loading the
proposed files exactly as a reload does; a dry run compares the answers of a sample of
customers before and after; a save writes the file atomically and reloads every worker.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for

from recommender.catalog import Catalog, ProductKind
from recommender.config import Config
from recommender.context import CHANNEL_IDS, FailureReason, Moment
from recommender.engine import Engine
from recommender.errors import RecommenderError

from ..state import ServiceState, service
from . import forms, proposals, tomledit
from .i18n import M_
from .preview import Ask, preview_engine

blp = Blueprint("tuning", __name__, url_prefix="/rules")

MOMENTS = forms.MOMENTS
NEEDS_PRODUCT = frozenset({Moment.TRANSACTION.value, Moment.FAILURE.value})
MAX_ROWS = 100
_FIELD = re.compile(r"field '([^']+)'")
_BUSINESS = re.compile(r"business '([^']+)'")


def _disk_text(root: Any, name: str) -> tuple[str, str]:
    data = proposals.read_file(root, name)
    return ("" if data is None else data.decode("utf-8", errors="replace"),
            proposals.digest(data))


def _raw_rules(text: str) -> tuple[list[dict[str, Any]], str | None]:
    try:
        rules = tomllib.loads(text).get("rule", [])
    except tomllib.TOMLDecodeError as e:
        return [], str(e)
    if not isinstance(rules, list):
        return [], "'rule' is not an array of [[rule]] tables"
    return [r if isinstance(r, dict) else {} for r in rules], None


def _disk_config(state: ServiceState) -> tuple[Config, str | None]:
    """The configuration on disk (what a save edits), else the served one and why."""
    try:
        return Config.load(state.settings.root / "config.toml"), None
    except RecommenderError as e:
        return state.slot.engine.config, str(e)


def _weight_tables(config: Config) -> list[tuple[str, str | None]]:
    return [(m, None) for m in MOMENTS] + sorted(config.channel_blend)


def _weights(config: Config, table: tuple[str, str | None]) -> Mapping[str, float]:
    moment, channel = table
    if channel is None:
        return config.blend.get(moment, {})
    return config.channel_blend.get((moment, channel), {})


def _strategies(engine: Engine, config: Config) -> list[str]:
    named = {s for weights in [*config.blend.values(), *config.channel_blend.values()]
             for s in weights}
    return sorted(set(engine.strategies) | named)


def _scope(form: Mapping[str, str], catalog: Catalog, rule: Mapping[str, Any] | None
           ) -> dict[str, str]:
    """The business, query service and failure reason the dry run asks about: the form's,
    else those the rule's conditions name, else the catalog's first business."""
    when = rule.get("when", {}) if rule and isinstance(rule.get("when"), Mapping) else {}
    named = when.get("product", [])
    named = [named] if isinstance(named, str) else named if isinstance(named, list) else []
    businesses = [p.id for p in catalog if p.kind is not ProductKind.QUERY]
    services = [p.id for p in catalog if p.kind is ProductKind.QUERY]
    product = next((p for p in named if p in businesses), businesses[0] if businesses else "")
    query_product = next((p for p in named if p in services), "")
    reasons = when.get("failure_reason", [])
    reasons = [reasons] if isinstance(reasons, str) else reasons \
        if isinstance(reasons, list) else []
    reason = next((r for r in reasons if r in {f.value for f in FailureReason}),
                  FailureReason.NOT_ELIGIBLE.value)
    out = {"product": form.get("try_product", product),
           "query_product": form.get("try_query_product", query_product),
           "failure_reason": form.get("try_failure_reason", reason)}
    if out["product"] not in businesses:
        out["product"] = product
    if out["query_product"] and out["query_product"] not in services:
        out["query_product"] = ""
    if out["failure_reason"] not in {f.value for f in FailureReason}:
        out["failure_reason"] = reason
    return out


def _asks(channels: list[str], moments: list[str], scope: Mapping[str, str]) -> list[Ask]:
    out = []
    for moment in moments:
        for channel in channels:
            if moment == Moment.QUERY.value:
                out.append(Ask(channel, moment, scope["query_product"] or None))
            else:
                out.append(Ask(channel, moment, scope["product"] or None,
                               scope["failure_reason"] if moment == Moment.FAILURE.value
                               else None))
    return out


def _sample_size(form: Mapping[str, str]) -> int:
    try:
        size = int(form.get("sample", proposals.DEFAULT_SAMPLE))
    except ValueError:
        size = proposals.DEFAULT_SAMPLE
    return min(max(size, 1), proposals.MAX_SAMPLE)


def _compare(state: ServiceState, change: proposals.Change, channels: list[str],
             moments: list[str], scope: Mapping[str, str], size: int
             ) -> proposals.DryRun:
    root = state.settings.root
    with state.slot.lease() as served:
        before = preview_engine(served)
        customers = served.store.spread_customer_ids(size) if served.store is not None \
            else []
        with proposals.proposed_engine(state, proposals.proposed_files(root, change)) as after:
            return proposals.dry_run(before, after, customers,
                                     _asks(channels, moments, scope), g.locale)


# -- the list and the weights -----------------------------------------------------------------

@blp.route("/")
def index() -> Any:
    return _rules_page()


def _rules_page(*, weights: Mapping[str, str] | None = None,
                errors: forms.FormErrors | None = None, dry: proposals.DryRun | None = None,
                scope: Mapping[str, str] | None = None, base: str | None = None,
                status: int = 200) -> Any:
    state = service()
    root = state.settings.root
    config, config_problem = _disk_config(state)
    rules_name = proposals.rules_file(config)
    rules_text, _ = _disk_text(root, rules_name)
    rules, rules_problem = _raw_rules(rules_text)
    _, config_base = _disk_text(root, "config.toml")
    engine = state.slot.engine
    tables = _weight_tables(config)
    values = weights if weights is not None else {
        forms.weight_field(m, c, s): f"{w:g}"
        for m, c in tables for s, w in _weights(config, (m, c)).items()}
    return render_template(
        "rules.html", rules=rules, rules_file=rules_name, rules_problem=rules_problem,
        config_problem=config_problem, tables=tables, strategies=_strategies(engine, config),
        values=values, errors=errors or forms.FormErrors(), dry=dry,
        scope=scope or _scope({}, engine.catalog, None), base=base or config_base,
        catalog=engine.catalog, sample=proposals.DEFAULT_SAMPLE,
        unpublished=proposals.unpublished(state, root, "config.toml"),
        reasons=[r.value for r in FailureReason], channels=CHANNEL_IDS), status


@blp.route("/weights", methods=["POST"])
def weights() -> Any:
    """Dry-run or save the blend weights."""
    state = service()
    root = state.settings.root
    config, _ = _disk_config(state)
    tables = _weight_tables(config)
    strategies = _strategies(state.slot.engine, config)
    parsed, errors = forms.weights_from_form(request.form, strategies, tables)
    scope = _scope(request.form, state.slot.engine.catalog, None)
    base = request.form.get("base", "")
    typed = {k: v for k, v in request.form.items() if k.startswith(("w:", "remove:"))}
    if errors:
        return _rules_page(weights=typed, errors=errors, scope=scope, base=base, status=422)
    changed_blend = {m: w for m, w in parsed.blend.items() if w != dict(config.blend.get(m, {}))}
    changed_channels = {t: w for t, w in parsed.channel_blend.items()
                        if w != dict(config.channel_blend.get(t, {}))}
    if not changed_blend and not changed_channels and not parsed.removed:
        errors.general.append(M_("Nothing changed."))
        return _rules_page(weights=typed, errors=errors, scope=scope, base=base, status=422)
    text, _ = _disk_text(root, "config.toml")
    try:
        new_text = tomledit.edit_blend(text, changed_blend, changed_channels, parsed.removed)
    except tomledit.EditError as e:
        errors.general.append(str(e))
        return _rules_page(weights=typed, errors=errors, scope=scope, base=base, status=422)
    change = proposals.Change("config.toml", new_text, base)
    moments = sorted({*changed_blend, *(m for m, _ in changed_channels),
                      *(m for m, _ in parsed.removed)}, key=MOMENTS.index)
    try:
        if request.form.get("action") == "save":
            previous, now = proposals.save(state, change)
            flash(("saved", "config.toml", state.settings.reload_poll_seconds))
            return redirect(url_for("tuning.index"), 303)
        dry = _compare(state, change, list(CHANNEL_IDS), moments, scope,
                       _sample_size(request.form))
    except proposals.ProposalError as e:
        errors.general.append(str(e))
        return _rules_page(weights=typed, errors=errors, scope=scope, base=base, status=422)
    return _rules_page(weights=typed, dry=dry, scope=scope, base=base)


# -- one rule ---------------------------------------------------------------------------------

def _field_of(message: str, rule: Mapping[str, Any]) -> str | None:
    """The form field a loader's message is about (``field 'when.channel'``)."""
    match = _FIELD.search(message)
    if match is None:
        return None
    name = match.group(1)
    if name.startswith("when."):
        return "when-" + name[5:]
    if name == "recommend":
        product = _BUSINESS.search(message) or re.search(r"'([^']+)' ", message)
        for row, entry in enumerate(rule.get("recommend", [])):
            entry_product = entry if isinstance(entry, str) else entry.get("product")
            if product is not None and entry_product == product.group(1):
                return f"recommend-{row}-product"
        return "recommend-0-product"
    return name


def _rule_page(number: int | None, values: dict[str, Any], *, base: str,
               errors: forms.FormErrors | None = None, dry: proposals.DryRun | None = None,
               scope: Mapping[str, str] | None = None, deleting: bool = False,
               status: int = 200) -> Any:
    state = service()
    engine = state.slot.engine
    config, _ = _disk_config(state)
    rules_name = proposals.rules_file(config)
    return render_template(
        "rule.html", number=number, values=values, base=base, errors=errors or
        forms.FormErrors(), dry=dry, scope=scope or _scope({}, engine.catalog, None),
        deleting=deleting, rules_file=rules_name, catalog=engine.catalog,
        businesses=[p for p in engine.catalog if p.kind is not ProductKind.QUERY],
        query_services=[p for p in engine.catalog if p.kind is ProductKind.QUERY],
        choices=forms.CHOICE_CONDITIONS, lists=forms.LIST_CONDITIONS,
        numbers=forms.NUMBER_CONDITIONS, labels=forms.CONDITION_LABELS, moments=MOMENTS,
        sample=proposals.DEFAULT_SAMPLE,
        reasons=[r.value for r in FailureReason],
        unpublished=proposals.unpublished(state, state.settings.root, rules_name)), status


def _current_rule(number: int) -> tuple[dict[str, Any], str, str]:
    state = service()
    config, _ = _disk_config(state)
    name = proposals.rules_file(config)
    text, base = _disk_text(state.settings.root, name)
    rules, _ = _raw_rules(text)
    if not 1 <= number <= len(rules):
        abort(404)
    return rules[number - 1], text, base


@blp.route("/new")
def new() -> Any:
    state = service()
    config, _ = _disk_config(state)
    _, base = _disk_text(state.settings.root, proposals.rules_file(config))
    values = forms.rule_values({"moments": list(MOMENTS), "priority": 50})
    return _rule_page(None, values, base=base)


@blp.route("/<int:number>")
def edit(number: int) -> Any:
    rule, _, base = _current_rule(number)
    return _rule_page(number, forms.rule_values(rule), base=base,
                      scope=_scope({}, service().slot.engine.catalog, rule))


@blp.route("/new", methods=["POST"])
def post_new() -> Any:
    return _post_rule(None)


@blp.route("/<int:number>", methods=["POST"])
def post_edit(number: int) -> Any:
    return _post_rule(number)


def _post_rule(number: int | None) -> Any:
    """Dry-run, save or delete one rule."""
    state = service()
    form = request.form
    action = form.get("action", "dry_run")
    if action not in ("dry_run", "save", "dry_run_delete", "delete") or \
            (number is None and action in ("dry_run_delete", "delete")):
        abort(400)
    config, _ = _disk_config(state)
    name = proposals.rules_file(config)
    text, _ = _disk_text(state.settings.root, name)
    rules, problem = _raw_rules(text)
    if number is not None and not 1 <= number <= len(rules):
        abort(404)
    base = form.get("base", "")
    try:
        rows = min(max(int(form.get("rows", "0")), 0), MAX_ROWS)
    except ValueError:
        rows = 0
    deleting = action in ("dry_run_delete", "delete")
    if deleting:
        rule: dict[str, Any] | None = None
        assert number is not None
        values = forms.rule_values(rules[number - 1])
        errors = forms.FormErrors()
    else:
        rule, errors = forms.rule_from_form(form, rows)
        values = forms.rule_values(rule)
    scope = _scope(form, state.slot.engine.catalog,
                   rule if rule is not None else rules[number - 1] if number else None)
    if problem is not None:
        errors.general.append(f"{name} is not valid TOML: {problem}")
    if errors:
        return _rule_page(number, values, base=base, errors=errors, scope=scope, status=422)
    try:
        new_text = tomledit.edit_rule(text, None if number is None else number - 1, rule, name)
    except tomledit.EditError as e:
        errors.general.append(str(e))
        return _rule_page(number, values, base=base, errors=errors, scope=scope, status=422)
    change = proposals.Change(name, new_text, base)
    old = rules[number - 1] if number is not None else {}
    moments = [m for m in MOMENTS if m in set(_moments_of(old)) | set(_moments_of(rule or {}))]
    channels = sorted(set(_channels_of(old)) | set(_channels_of(rule or {})),
                      key=CHANNEL_IDS.index)
    try:
        if action in ("save", "delete"):
            proposals.save(state, change)
            flash(("saved", name, state.settings.reload_poll_seconds))
            return redirect(url_for("tuning.index"), 303)
        dry = _compare(state, change, channels, moments, scope, _sample_size(form))
    except proposals.ProposalError as e:
        message = str(e)
        field = _field_of(message, rule or {})
        if field and not isinstance(e, proposals.StaleError):
            errors.fields[field] = message
        else:
            errors.general.append(message)
        return _rule_page(number, values, base=base, errors=errors, scope=scope,
                          deleting=deleting, status=422)
    return _rule_page(number, values, base=base, dry=dry, scope=scope, deleting=deleting)


def _moments_of(rule: Mapping[str, Any]) -> list[str]:
    moments = rule.get("moments", MOMENTS)
    return [m for m in moments if m in MOMENTS] if isinstance(moments, list | tuple) else []


def _channels_of(rule: Mapping[str, Any]) -> list[str]:
    when = rule.get("when") if isinstance(rule.get("when"), Mapping) else {}
    channels = when.get("channel") if when else None
    if isinstance(channels, str):
        channels = [channels]
    if not isinstance(channels, list) or not channels:
        return list(CHANNEL_IDS)
    return [c for c in channels if c in CHANNEL_IDS]


__all__ = ["blp"]
