"""Service events: what happened to the customer (the phone was lost, data is running low).

A channel that knows of an event sends it with the request (``event``); the events table of the
workspace (``events.toml``, ``[events] file`` of ``config.toml``) maps each to service guidance
(suggestions of kind ``service`` with a text and a link, never sold: "how to resume service")
and to businesses, served through the cross-sell strategy like a marketing rule whose condition
is the event. On the hotline the event is also the caller's likely need (agent assist)::

    [[event]]
    id = "phone_lost"
    name = "手机丢失"
    name_en = "Phone lost"
    need = "手机丢失：可能需要挂失停机、补换卡和购买新机"
    need_en = "The phone was lost: probably needs to suspend service, a new SIM and a phone"
    priority = 95
    recommend = [{ product = "sim_replacement", reason = "...", reason_en = "..." }]

    [[event.guidance]]
    id = "guide_report_loss"
    name = "挂失停机"
    name_en = "Report the loss"
    text = "..."
    text_en = "..."
    link = "https://..."

Every error on load names the file, the event and the field.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import Catalog
from .config import Config
from .errors import ConfigError

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_EVENT_KEYS = {"id", "name", "name_en", "need", "need_en", "priority", "recommend", "guidance"}
_GUIDANCE_KEYS = {"id", "name", "name_en", "text", "text_en", "link"}


@dataclass(frozen=True, slots=True)
class Guidance:
    """One piece of service guidance: not sold, shown with a text and a link."""

    id: str
    name: str
    text: str
    link: str | None = None
    name_en: str | None = None
    text_en: str | None = None

    def localized(self, locale: str) -> tuple[str, str]:
        """(name, text) in ``locale``: the English ones for ``en`` when given."""
        if locale == "en":
            return self.name_en or self.name, self.text_en or self.text
        return self.name, self.text


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    """An event, its likely-need sentence, guidance and businesses (product, reason, en)."""

    id: str
    name: str
    need: str
    guidance: tuple[Guidance, ...] = ()
    recommend: tuple[tuple[str, str, str | None], ...] = ()
    priority: float = 95.0
    name_en: str | None = None
    need_en: str | None = None

    def localized_need(self, locale: str) -> str:
        return self.need_en or self.need if locale == "en" else self.need


class EventsError(ConfigError):
    """An events file is malformed; names the file, event and field."""

    def __init__(self, source: str, event: str, field: str, message: str):
        self.event = event
        super().__init__(source, f"event {event!r}, field {field!r}", message)


@dataclass(frozen=True)
class Events:
    """The validated events table."""

    events: Mapping[str, ServiceEvent]
    source: str = "(no events)"

    def get(self, event_id: str) -> ServiceEvent | None:
        return self.events.get(event_id)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.events

    @classmethod
    def from_config(cls, config: Config, catalog: Catalog) -> Events:
        """The table ``[events] file`` names (default ``events.toml``; absent: no events)."""
        settings = config.raw.get("events", {})
        if not isinstance(settings, Mapping):
            raise ConfigError(config.source, "events", "must be a table")
        unknown = sorted(set(settings) - {"file"})
        if unknown:
            raise ConfigError(config.source, f"events.{unknown[0]}", "unknown key; known: file")
        name = settings.get("file", "events.toml")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(
                config.source, "events.file", f"must be the path of an events file, got {name!r}"
            )
        path = config.resolve(name)
        if not path.exists() and "file" not in settings:
            return cls({})
        return load_events(path, catalog)


def load_events(path: str | Path, catalog: Catalog) -> Events:
    """Read and validate an events file against the catalog."""
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(source, "(file)", "events file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(source, "(file)", f"not valid TOML: {e}") from None
    return parse_events(data, catalog, source=source)


def parse_events(data: Mapping[str, Any], catalog: Catalog, *, source: str = "<events>") -> Events:
    unknown = sorted(set(data) - {"event"})
    if unknown:
        raise ConfigError(source, unknown[0], "unknown top-level key")
    entries = data.get("event", [])
    if not isinstance(entries, list):
        raise ConfigError(source, "event", "must be an array of [[event]] tables")
    events: dict[str, ServiceEvent] = {}
    guidance_ids: set[str] = set()
    for position, entry in enumerate(entries, 1):
        event = _parse_event(entry, position, catalog, source)
        if event.id in events:
            raise EventsError(source, event.id, "id", "duplicate event id")
        for g in event.guidance:
            if g.id in guidance_ids or g.id in catalog:
                raise EventsError(
                    source,
                    event.id,
                    "guidance",
                    f"guidance id {g.id!r} is used twice or names a business",
                )
            guidance_ids.add(g.id)
        events[event.id] = event
    return Events(events, source)


def _text(entry: Mapping[str, Any], key: str, err: Any, *, required: bool = False) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise err(key, f"must be a non-empty string, got {value!r}")
    return value


def _parse_event(entry: Any, position: int, catalog: Catalog, source: str) -> ServiceEvent:
    if not isinstance(entry, dict):
        raise EventsError(source, f"#{position}", "(event)", "must be a table")
    event_id = entry.get("id")
    if not isinstance(event_id, str) or not ID_PATTERN.fullmatch(event_id):
        raise EventsError(
            source,
            f"#{position}",
            "id",
            f"must be lower case letters, digits and _, got {event_id!r}",
        )

    def err(field: str, message: str) -> EventsError:
        return EventsError(source, event_id, field, message)

    unknown = sorted(set(entry) - _EVENT_KEYS)
    if unknown:
        raise err(unknown[0], "unknown field")
    priority = entry.get("priority", 95)
    if (
        isinstance(priority, bool)
        or not isinstance(priority, int | float)
        or not math.isfinite(priority)
        or not 0 < priority <= 100
    ):
        raise err("priority", f"must be a finite number in (0, 100], got {priority!r}")
    recommend = []
    raw = entry.get("recommend", [])
    if not isinstance(raw, list):
        raise err("recommend", "must be a list of { product, reason, reason_en } tables")
    for item in raw:
        if not isinstance(item, dict) or not set(item) <= {"product", "reason", "reason_en"}:
            raise err(
                "recommend", f"entries must be {{ product, reason, reason_en }}, got {item!r}"
            )
        product = item.get("product")
        if product not in catalog:
            raise err("recommend", f"unknown business {product!r}")
        if not catalog[product].orderable:
            raise err("recommend", f"{product!r} is a query service, not an orderable business")
        reason = _text(item, "reason", lambda f, m: err(f"recommend.{f}", m), required=True)
        reason_en = _text(item, "reason_en", lambda f, m: err(f"recommend.{f}", m))
        recommend.append((product, reason, reason_en))
    guidance = []
    raw_guidance = entry.get("guidance", [])
    if not isinstance(raw_guidance, list):
        raise err("guidance", "must be an array of [[event.guidance]] tables")
    for item in raw_guidance:
        if not isinstance(item, dict):
            raise err("guidance", "each [[event.guidance]] must be a table")
        bad = sorted(set(item) - _GUIDANCE_KEYS)
        if bad:
            raise err(f"guidance.{bad[0]}", "unknown field")
        gid = item.get("id")
        if not isinstance(gid, str) or not ID_PATTERN.fullmatch(gid):
            raise err("guidance.id", f"must be lower case letters, digits and _, got {gid!r}")

        def gerr(field: str, message: str, gid: str = gid) -> EventsError:
            return err(f"guidance[{gid}].{field}", message)

        guidance.append(
            Guidance(
                id=gid,
                name=_text(item, "name", gerr, required=True),  # type: ignore[arg-type]
                text=_text(item, "text", gerr, required=True),  # type: ignore[arg-type]
                link=_text(item, "link", gerr),
                name_en=_text(item, "name_en", gerr),
                text_en=_text(item, "text_en", gerr),
            )
        )
    if not recommend and not guidance:
        raise err("recommend", "an event needs businesses (recommend) or guidance, or both")
    return ServiceEvent(
        id=event_id,
        name=_text(entry, "name", err, required=True),  # type: ignore[arg-type]
        need=_text(entry, "need", err, required=True),  # type: ignore[arg-type]
        guidance=tuple(guidance),
        recommend=tuple(recommend),
        priority=float(priority),
        name_en=_text(entry, "name_en", err),
        need_en=_text(entry, "need_en", err),
    )


__all__ = ["Events", "EventsError", "Guidance", "ServiceEvent", "load_events", "parse_events"]
