"""The rule and weights forms: a rule as form fields and back, the weights table from a form.

Only the shape is checked here (a number where a number goes); what the values may be is
checked by loading the proposed files, exactly as a reload loads them (``proposals``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from werkzeug.datastructures import MultiDict

from recommender.context import (
    CHANNEL_IDS,
    OS,
    FailureReason,
    Lifecycle,
    Moment,
    Network,
    Persona,
    ValueTier,
)

from .i18n import M_

#: Conditions chosen from a fixed set (check boxes), with their choices.
CHOICE_CONDITIONS: dict[str, tuple[str, ...]] = {
    "channel": CHANNEL_IDS,
    "network": tuple(n.value for n in Network),
    "os": tuple(o.value for o in OS),
    "value_tier": tuple(t.value for t in ValueTier),
    "persona": tuple(p.value for p in Persona),
    "lifecycle": tuple(s.value for s in Lifecycle),
    "failure_reason": tuple(r.value for r in FailureReason),
}
#: Conditions written as a list of ids (businesses, categories, tags, events).
LIST_CONDITIONS = ("product", "category", "holds_all", "holds_any", "lacks", "tags_any",
                   "event")
NUMBER_CONDITIONS = ("min_tenure_months", "max_tenure_months")
#: What each condition of ``[rule.when]`` is called on the form.
CONDITION_LABELS = {
    "channel": M_("Channel"), "network": M_("Network"), "os": M_("Operating system"),
    "value_tier": M_("Value tier"), "persona": M_("Persona"), "lifecycle": M_("Lifecycle"),
    "failure_reason": M_("Failure reason"), "smartphone": M_("Smartphone"),
    "min_tenure_months": M_("At least this many months of tenure"),
    "max_tenure_months": M_("At most this many months of tenure"),
    "product": M_("Business acted on is one of"),
    "category": M_("Category of the business acted on is one of"),
    "holds_all": M_("Holds all of"), "holds_any": M_("Holds any of"),
    "lacks": M_("Holds none of"), "tags_any": M_("Has any of the tags"),
    "event": M_("Service event is one of"),
}
MOMENTS = tuple(m.value for m in Moment)
#: Empty rows a rule form offers for new recommended businesses.
SPARE_ROWS = 2
_SEPARATORS = re.compile(r"[\s,，、]+")


@dataclass
class FormErrors:
    """Problems by field name; ``general`` for those no field owns."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)


def words(text: str) -> list[str]:
    """Ids typed in one box, split on spaces and commas (Chinese commas too)."""
    return [w for w in _SEPARATORS.split(text.strip()) if w]


def number(text: str) -> int | float:
    """A number as typed: an integer when it is one."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() \
        else value


def rule_values(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A rule (as TOML data) as the values of the form's fields."""
    when = rule.get("when") if isinstance(rule.get("when"), Mapping) else {}
    recommend = []
    for entry in rule.get("recommend", []) if isinstance(rule.get("recommend"), list) else []:
        if isinstance(entry, str):
            recommend.append({"product": entry, "reason": "", "reason_en": ""})
        elif isinstance(entry, Mapping):
            recommend.append({"product": str(entry.get("product", "")),
                              "reason": str(entry.get("reason", "")),
                              "reason_en": str(entry.get("reason_en", ""))})
    recommend += [{"product": "", "reason": "", "reason_en": ""}] * SPARE_ROWS

    def listed(name: str) -> list[str]:
        item = when.get(name, [])
        return [item] if isinstance(item, str) else [str(v) for v in item] \
            if isinstance(item, list) else []

    smartphone = when.get("smartphone")
    return {
        "id": str(rule.get("id", "")),
        "description": str(rule.get("description", "")),
        "enabled": rule.get("enabled", True) is not False,
        "moments": [str(m) for m in rule.get("moments", MOMENTS)]
        if isinstance(rule.get("moments", MOMENTS), list | tuple) else [],
        "priority": "" if rule.get("priority") is None else str(rule.get("priority")),
        "reason": str(rule.get("reason", "")),
        "reason_en": str(rule.get("reason_en", "")),
        "recommend": recommend,
        "choices": {name: listed(name) for name in CHOICE_CONDITIONS},
        "lists": {name: " ".join(listed(name)) for name in LIST_CONDITIONS},
        "numbers": {name: "" if when.get(name) is None else str(when.get(name))
                    for name in NUMBER_CONDITIONS},
        "smartphone": "" if smartphone is None else ("true" if smartphone else "false"),
    }


def rule_from_form(form: MultiDict[str, str], rows: int) -> tuple[dict[str, Any], FormErrors]:
    """The rule the form describes (as TOML data), and what in the form is not even of the
    right shape."""
    errors = FormErrors()
    rule: dict[str, Any] = {"id": form.get("id", "").strip()}
    description = form.get("description", "").strip()
    if description:
        rule["description"] = description
    if not form.get("enabled"):
        rule["enabled"] = False
    rule["moments"] = [m for m in MOMENTS if m in form.getlist("moments")]
    priority = form.get("priority", "").strip()
    if priority:
        try:
            rule["priority"] = number(priority)
        except ValueError:
            errors.fields["priority"] = M_("must be a number")
    for name in ("reason", "reason_en"):
        text = form.get(name, "").strip()
        if text:
            rule[name] = text
    recommend: list[Any] = []
    for row in range(rows):
        product = form.get(f"recommend-{row}-product", "").strip()
        reason = form.get(f"recommend-{row}-reason", "").strip()
        reason_en = form.get(f"recommend-{row}-reason_en", "").strip()
        if not product:
            if reason or reason_en:
                errors.fields[f"recommend-{row}-product"] = M_("choose the business")
            continue
        if reason or reason_en:
            entry = {"product": product}
            if reason:
                entry["reason"] = reason
            if reason_en:
                entry["reason_en"] = reason_en
            recommend.append(entry)
        else:
            recommend.append(product)
    rule["recommend"] = recommend
    when: dict[str, Any] = {}
    for name, choices in CHOICE_CONDITIONS.items():
        picked = [c for c in choices if c in form.getlist(f"when-{name}")]
        if picked:
            when[name] = picked
    smartphone = form.get("when-smartphone", "")
    if smartphone in ("true", "false"):
        when["smartphone"] = smartphone == "true"
    for name in NUMBER_CONDITIONS:
        text = form.get(f"when-{name}", "").strip()
        if text:
            try:
                when[name] = number(text)
            except ValueError:
                errors.fields[f"when-{name}"] = M_("must be a whole number")
    for name in LIST_CONDITIONS:
        items = words(form.get(f"when-{name}", ""))
        if items:
            when[name] = items
    if when:
        rule["when"] = when
    return rule, errors


@dataclass(frozen=True)
class WeightsForm:
    """The blend weights a form sets: per moment, per (moment, channel), and the channel
    tables to remove."""

    blend: dict[str, dict[str, float]]
    channel_blend: dict[tuple[str, str], dict[str, float]]
    removed: list[tuple[str, str]]


def weight_field(moment: str, channel: str | None, strategy: str) -> str:
    """The name of one weight's input."""
    return f"w:{moment}{'.' + channel if channel else ''}:{strategy}"


def weights_from_form(form: MultiDict[str, str], strategies: Sequence[str],
                      tables: Sequence[tuple[str, str | None]]
                      ) -> tuple[WeightsForm, FormErrors]:
    """The weights of each table (a blank box: the strategy does not run there)."""
    errors = FormErrors()
    blend: dict[str, dict[str, float]] = {}
    channel_blend: dict[tuple[str, str], dict[str, float]] = {}
    removed: list[tuple[str, str]] = []
    for moment, channel in tables:
        if channel is not None and form.get(f"remove:{moment}.{channel}"):
            removed.append((moment, channel))
            continue
        weights: dict[str, float] = {}
        for strategy in strategies:
            name = weight_field(moment, channel, strategy)
            text = form.get(name, "").strip()
            if not text:
                continue
            try:
                weights[strategy] = float(number(text))
            except ValueError:
                errors.fields[name] = M_("must be a number")
        if channel is None:
            blend[moment] = weights
        else:
            channel_blend[moment, channel] = weights
    return WeightsForm(blend, channel_blend, removed), errors
