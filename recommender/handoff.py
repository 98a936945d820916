"""Hand-offs: a suggestion shown on one channel and ordered on another.

The hotline agent cannot sell a phone or replace a SIM, but a caller who lost the phone must
hear about both, with where to get them. On a channel that allows hand-offs (``[handoff]
channels``: the hotline and the SMS hall by default) a business the customer can take, whose
only obstacle is that this channel cannot transact it, is kept and carries a hand-off: the
channel to order it on (the first of ``prefer`` that can), what to do there and a link from the
``[handoff.links]`` templates. Everywhere else such a business is dropped, as before.

``config.toml``::

    [handoff]
    channels = ["hotline", "sms"]      # channels that may show what they cannot transact
    prefer = ["app", "store", "hotline", "web", "wechat", "sms"]

    [handoff.links]                    # placeholders: {product}, {customer}, {channel}
    app = "https://app.example.com/order?product={product}"
    store = "https://m.example.com/stores/nearest"
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .context import CHANNEL_IDS
from .errors import ConfigError
from .i18n import N_, tr

#: What the customer does on each ordering channel.
ACTIONS = {
    "app": "deep_link",
    "web": "link",
    "wechat": "link",
    "store": "store_visit",
    "hotline": "agent_transfer",
    "sms": "sms",
}
#: The sentence of each ordering channel (English message ids, see ``recommender.i18n``).
TEXTS = {
    "app": N_("Order {name} in the mobile app"),
    "web": N_("Order {name} in the web hall"),
    "wechat": N_("Order {name} in the WeChat hall"),
    "store": N_("Order {name} at the nearest store"),
    "hotline": N_("Transfer to an agent to order {name}"),
    "sms": N_("Order {name} by SMS"),
}
#: Channels the customer needs a smartphone to reach.
SMARTPHONE_CHANNELS = frozenset({"app", "wechat"})
PLACEHOLDERS = frozenset({"product", "customer", "channel"})
DEFAULT_CHANNELS = ("hotline", "sms")
DEFAULT_PREFER = ("app", "store", "hotline", "web", "wechat", "sms")
DEFAULT_LINKS = {"hotline": "tel:10086", "sms": "sms:10086"}
_KEYS = {"channels", "prefer", "links"}


@dataclass(frozen=True)
class Handoff:
    """Where a suggestion can be ordered instead of the calling channel, and how to get there."""

    channel: str
    action: str
    text: str
    link: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "action": self.action,
            "text": self.text,
            "link": self.link,
        }


@dataclass(frozen=True)
class HandoffSettings:
    """The ``[handoff]`` table, validated."""

    channels: frozenset[str] = frozenset(DEFAULT_CHANNELS)
    prefer: tuple[str, ...] = DEFAULT_PREFER
    links: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_LINKS))

    def allowed(self, channel: str) -> bool:
        """Whether ``channel`` may show a business it cannot transact, with a hand-off."""
        return channel in self.channels

    def target(self, order_channels: frozenset[str], *, smartphone: bool) -> str | None:
        """The ordering channel a hand-off points to, or None when the customer can reach none
        (an app-only business for a feature phone)."""
        for channel in self.prefer:
            if channel in order_channels and (smartphone or channel not in SMARTPHONE_CHANNELS):
                return channel
        return None

    def handoff(
        self,
        product: str,
        name: str,
        order_channels: frozenset[str],
        *,
        customer: str,
        calling: str,
        smartphone: bool,
        locale: str,
    ) -> Handoff | None:
        """The hand-off for ``product`` asked about on ``calling``, or None if none applies."""
        if calling in order_channels:
            return None
        target = self.target(order_channels, smartphone=smartphone)
        if target is None:
            return None
        link = self.links.get(target)
        if link is not None:
            link = link.format(product=product, customer=customer, channel=calling)
        return Handoff(target, ACTIONS[target], tr(locale, TEXTS[target], name=name), link)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], source: str) -> HandoffSettings:
        """Read ``raw["handoff"]``; every error names the file and the key."""
        values = raw.get("handoff", {})
        if not isinstance(values, Mapping):
            raise ConfigError(source, "handoff", "must be a table")
        unknown = sorted(set(values) - _KEYS)
        if unknown:
            raise ConfigError(
                source, f"handoff.{unknown[0]}", f"unknown key; known: {', '.join(sorted(_KEYS))}"
            )
        channels = _channels(
            values.get("channels", list(DEFAULT_CHANNELS)), source, "handoff.channels"
        )
        prefer = _channels(values.get("prefer", list(DEFAULT_PREFER)), source, "handoff.prefer")
        if len(set(prefer)) != len(prefer):
            raise ConfigError(source, "handoff.prefer", "names a channel twice")
        links_raw = values.get("links", {})
        if not isinstance(links_raw, Mapping):
            raise ConfigError(source, "handoff.links", "must be a table of channel = link")
        links = dict(DEFAULT_LINKS)
        for channel, link in links_raw.items():
            key = f"handoff.links.{channel}"
            if channel not in CHANNEL_IDS:
                raise ConfigError(source, key, f"unknown channel; known: {', '.join(CHANNEL_IDS)}")
            if not isinstance(link, str) or not link.strip():
                raise ConfigError(source, key, f"must be a non-empty string, got {link!r}")
            _check_template(link, source, key)
            links[channel] = link
        return cls(channels=frozenset(channels), prefer=tuple(prefer), links=links)


def _channels(value: Any, source: str, key: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(source, key, f"must be a list of channel ids, got {value!r}")
    bad = [v for v in value if v not in CHANNEL_IDS]
    if bad:
        raise ConfigError(
            source, key, f"unknown channel {bad[0]!r}; known: {', '.join(CHANNEL_IDS)}"
        )
    return list(value)


def _check_template(link: str, source: str, key: str) -> None:
    """Refuse a link template that would not format: a stray brace or an unknown name."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(link) if name is not None}
    except ValueError as e:
        raise ConfigError(source, key, f"is not a valid template: {e}") from None
    unknown = sorted(names - PLACEHOLDERS)
    if unknown:
        raise ConfigError(
            source,
            key,
            f"unknown placeholder {{{unknown[0]}}}; known: "
            + ", ".join(f"{{{p}}}" for p in sorted(PLACEHOLDERS)),
        )


__all__ = ["ACTIONS", "Handoff", "HandoffSettings"]
