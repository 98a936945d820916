"""The TCPC request context: Terminal, Customer, Product, Channel, plus the moment.

Every value is immutable and validated on construction, so a strategy can trust what it reads
and a bad request fails early with the field and value named.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

from .attributes import checked as _checked_attributes
from .errors import ContextError
from .i18n import DEFAULT_LOCALE, parse_locale


class Moment(StrEnum):
    """The key moments of a customer's journey at which a channel asks for suggestions."""

    QUERY = "query"
    TRANSACTION = "transaction"
    SUCCESS = "success"
    FAILURE = "failure"


class FailureReason(StrEnum):
    """Why an order failed, carried by a failure-moment request."""

    NOT_ELIGIBLE = "not_eligible"
    CONFLICT = "conflict"
    MISSING_PREREQUISITE = "missing_prerequisite"
    OTHER = "other"


class Network(StrEnum):
    """Terminal network generation; ordered, so a 5G requirement excludes 4G phones."""

    G2 = "2G"
    G3 = "3G"
    G4 = "4G"
    G5 = "5G"

    @property
    def rank(self) -> int:
        return int(self.value[0])


class OS(StrEnum):
    ANDROID = "android"
    IOS = "ios"
    HARMONYOS = "harmonyos"
    OTHER = "other"


class ValueTier(StrEnum):
    """Customer value tier by ARPU."""

    HIGH = "high"
    MID = "mid"
    LOW = "low"


class Persona(StrEnum):
    """Behaviour persona from the operator's customer model."""

    DATA = "data"
    VOICE = "voice"
    PRODUCT = "product"
    NETWORK = "network"
    PRICE = "price"
    SERVICE = "service"


class Lifecycle(StrEnum):
    """Lifecycle stage of the subscriber relationship."""

    NEW = "new"
    STEADY = "steady"
    OPEN_REQUEST = "open_request"
    RESOLVED = "resolved"


CHANNEL_IDS = ("app", "web", "hotline", "sms", "wechat", "store")


def parse_enum(enum: type[StrEnum], field_name: str, value: Any) -> Any:
    """Return ``value`` as a member of ``enum``, or raise a ContextError naming the field."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            # Terminal networks and OS names arrive in every case from device libraries.
            for member in enum:
                if member.value.lower() == value.strip().lower():
                    return member
    allowed = ", ".join(m.value for m in enum)
    raise ContextError(field_name, value, f"must be one of {allowed}")


def _check_str(field_name: str, value: Any, *, max_len: int = 128) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ContextError(field_name, value, "must be a non-empty string")
    if len(value) > max_len:
        raise ContextError(field_name, value[:20] + "...", f"must be at most {max_len} characters")
    return value


def _check_int(field_name: str, value: Any, *, minimum: int = 0, maximum: int = 10**6) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContextError(field_name, value, "must be an integer")
    if not minimum <= value <= maximum:
        raise ContextError(field_name, value, f"must be between {minimum} and {maximum}")
    return value


def _str_set(field_name: str, values: Any) -> frozenset[str]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise ContextError(field_name, values, "must be a list of strings")
    return frozenset(_check_str(f"{field_name}[]", v) for v in values)


@dataclass(frozen=True, slots=True)
class Terminal:
    """The customer's device: what it can use decides which businesses make sense."""

    network: Network = Network.G4
    smartphone: bool = True
    os: OS | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "network", parse_enum(Network, "terminal.network", self.network))
        if not isinstance(self.smartphone, bool):
            raise ContextError("terminal.smartphone", self.smartphone, "must be true or false")
        if self.os is not None:
            object.__setattr__(self, "os", parse_enum(OS, "terminal.os", self.os))
        if self.model is not None:
            _check_str("terminal.model", self.model)


@dataclass(frozen=True, slots=True)
class Customer:
    """The subscriber: segment attributes, tags and current holdings (subscriptions).

    ``attributes`` are the operator's own columns (``recommender.attributes``): name to a
    number or a text.
    """

    id: str
    value_tier: ValueTier = ValueTier.MID
    persona: Persona | None = None
    lifecycle: Lifecycle = Lifecycle.STEADY
    tenure_months: int = 0
    vip_level: int = 0
    tags: frozenset[str] = field(default_factory=frozenset)
    holdings: frozenset[str] = field(default_factory=frozenset)
    attributes: Mapping[str, float | str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        _check_str("customer.id", self.id)
        set_ = object.__setattr__
        set_(self, "value_tier", parse_enum(ValueTier, "customer.value_tier", self.value_tier))
        if self.persona is not None:
            set_(self, "persona", parse_enum(Persona, "customer.persona", self.persona))
        set_(self, "lifecycle", parse_enum(Lifecycle, "customer.lifecycle", self.lifecycle))
        _check_int("customer.tenure_months", self.tenure_months, maximum=1200)
        _check_int("customer.vip_level", self.vip_level, maximum=10)
        set_(self, "tags", _str_set("customer.tags", self.tags))
        set_(self, "holdings", _str_set("customer.holdings", self.holdings))
        if self.attributes or not isinstance(self.attributes, dict):
            set_(self, "attributes", _checked_attributes(self.attributes))

    @property
    def segment(self) -> str:
        """The segment key popularity is counted by: value tier."""
        return self.value_tier.value


@dataclass(frozen=True, slots=True)
class Channel:
    """The touchpoint asking: its id and how many suggestions it can show."""

    id: str
    slots: int

    def __post_init__(self) -> None:
        if self.id not in CHANNEL_IDS:
            raise ContextError("channel", self.id, f"must be one of {', '.join(CHANNEL_IDS)}")
        _check_int("channel.slots", self.slots, minimum=1, maximum=100)


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Everything a strategy may use to answer one request, gathered before strategies run.

    ``product`` is the business the customer is querying, ordering, has just taken or failed to
    take; ``k`` is how many suggestions the caller wants (never more than the channel's slots).
    ``attributes`` carries whatever extra a context-provider plugin added.
    """

    customer: Customer
    terminal: Terminal
    channel: Channel
    moment: Moment
    product: str | None = None
    failure_reason: FailureReason | None = None
    k: int | None = None
    request_id: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)
    #: The language every sentence of the answer is written in (``zh-CN`` or ``en``); a
    #: strategy writes its reasons in it (``recommender.i18n.tr``).
    locale: str = DEFAULT_LOCALE
    #: A service event the channel knows of (``phone_lost``, ``data_low``...), if any.
    event: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "moment", parse_enum(Moment, "moment", self.moment))
        set_(self, "locale", parse_locale(self.locale))
        if self.event is not None:
            _check_str("event", self.event, max_len=64)
        if self.product is not None:
            _check_str("product", self.product)
        if self.failure_reason is not None:
            if self.moment is not Moment.FAILURE:
                raise ContextError(
                    "failure_reason", self.failure_reason, "only allowed at the failure moment"
                )
            set_(self, "failure_reason", parse_enum(FailureReason, "failure_reason",
                                                   self.failure_reason))
        if self.moment in (Moment.TRANSACTION, Moment.FAILURE) and self.product is None:
            raise ContextError("product", None, f"is required at the {self.moment} moment")
        if self.k is not None:
            _check_int("k", self.k, minimum=1, maximum=100)
        set_(self, "attributes", dict(self.attributes))

    @property
    def holdings_after(self) -> frozenset[str]:
        """What the customer holds once the business being ordered goes through.

        During a transaction and after a success the current business counts as held, so
        its add-ons are offered and what conflicts with it is not. After a failure it does not.
        """
        if self.product is not None and self.moment in (Moment.TRANSACTION, Moment.SUCCESS):
            return self.customer.holdings | {self.product}
        return self.customer.holdings

    @property
    def limit(self) -> int:
        """How many suggestions to return: the request's k, capped by the channel's slots."""
        return self.channel.slots if self.k is None else min(self.k, self.channel.slots)

    def evolve(self, **changes: Any) -> RequestContext:
        """Return a copy with ``changes`` applied and validated again."""
        return replace(self, **changes)


def customer_from_mapping(data: Mapping[str, Any], *, base: Customer | None = None) -> Customer:
    """Build a Customer from plain data (JSON, a store row), over ``base`` if given."""
    known = {f.name for f in fields(Customer)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ContextError(f"customer.{unknown[0]}", data[unknown[0]], "is not a customer field")
    values = {} if base is None else {f.name: getattr(base, f.name) for f in fields(Customer)}
    values.update({k: v for k, v in data.items() if v is not None})
    if base is not None and isinstance(data.get("attributes"), Mapping):
        # Inline attributes override the stored ones name by name; the rest are kept.
        values["attributes"] = {**base.attributes, **data["attributes"]}
    if "id" not in values:
        raise ContextError("customer.id", None, "is required")
    return Customer(**values)


def terminal_from_mapping(data: Mapping[str, Any], *, base: Terminal | None = None) -> Terminal:
    """Build a Terminal from plain data, over ``base`` if given."""
    known = {f.name for f in fields(Terminal)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ContextError(f"terminal.{unknown[0]}", data[unknown[0]], "is not a terminal field")
    values = {} if base is None else {f.name: getattr(base, f.name) for f in fields(Terminal)}
    values.update({k: v for k, v in data.items() if v is not None})
    return Terminal(**values)
