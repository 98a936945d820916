"""The enums of the API contract, each named once: the OpenAPI document registers every one as a
schema component (``Moment``, ``Channel``, ``ExclusionCode``...) that the bodies refer to, so
a generated client gets one type per set, and requests are validated against the same values.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from marshmallow import fields, validate

from recommender.catalog import Exclusion, ProductKind
from recommender.contact_policy import RULES as POLICY_RULES
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
from recommender.experiments import HOLDOUT
from recommender.handoff import ACTIONS
from recommender.i18n import LOCALES

FEEDBACK_ACTIONS = ("impression", "click", "accept", "dismiss")


@dataclass(frozen=True)
class NamedEnum:
    """A set of string values the OpenAPI document names once, as a schema component, so that
    generated clients share one type (``Moment``, ``Channel``) across every body using it.

    ``extensible``: plugins may add values (an eligibility plugin's own exclusion code), so a
    response field of this set is documented as one of the known values or any other string,
    and clients must accept a value they do not know.
    """

    name: str
    values: tuple[str, ...]
    description: str
    extensible: bool = False


def _named(name: str, values: Iterable[object], description: str, *,
           extensible: bool = False) -> NamedEnum:
    return NamedEnum(name, tuple(str(v) for v in values), description, extensible)


MOMENT = _named("Moment", Moment, "A moment of the customer's journey.")
CHANNEL = _named("Channel", CHANNEL_IDS, "A touchpoint: the channel calling or transacting.")
LOCALE = _named("Locale", LOCALES, "The language of every sentence in an answer.")
FAILURE_REASON = _named("FailureReason", FailureReason, "Why an order failed.")
VALUE_TIER = _named("ValueTier", ValueTier, "Customer value tier by ARPU.")
PERSONA = _named("Persona", Persona, "Behaviour persona.")
LIFECYCLE = _named("Lifecycle", Lifecycle, "Lifecycle stage of the subscription.")
NETWORK = _named("Network", Network, "Network generation of a terminal.")
TERMINAL_OS = _named("TerminalOS", OS, "Operating system of a terminal.")
FEEDBACK_ACTION = _named("FeedbackAction", FEEDBACK_ACTIONS,
                         "What the customer did with a suggestion.")
HANDOFF_ACTION = _named("HandoffAction", sorted(set(ACTIONS.values())),
                        "What the customer does on the channel a suggestion is handed off to.")
SUGGESTION_KIND = _named("SuggestionKind", ("business", "service"),
                         "business: orderable; service: guidance with a text and a link.")
SLOT = _named("Slot", ("ranked", "explore"), "The kind of slot a suggestion holds.")
SIGNAL_KIND = _named("SignalKind", ("event", "failed_order", "suspended", "data_low", "arrears"),
                     "A reason a hotline caller is probably calling.")
PRODUCT_KIND = _named("ProductKind", ProductKind, "The kind of a business in the catalog.")
STRATEGY_STATUS = _named("StrategyStatus", ("ready", "untrained", "disabled"),
                         "ready: serving; untrained: enabled but no model; disabled: weight 0.")
#: Why a business is not offered: the catalog's checks, the contact policy, an experiment's
#: holdout, a failed eligibility plugin; eligibility plugins may add codes of their own.
EXCLUSION_CODE = _named(
    "ExclusionCode",
    [*(e.code for e in Exclusion if e is not Exclusion.OK), *POLICY_RULES, HOLDOUT,
     "eligibility_check_failed"],
    "Machine code of why a business is not offered. Eligibility plugins may add codes of "
    "their own: accept any other string too.", extensible=True)
STRATEGY_STAGE = _named(
    "StrategyStage", ("untrained", "timeout", "skipped", "strategy", "garbage", "eligibility"),
    "Where a strategy or plugin failed for a request. Accept any other string too.",
    extensible=True)
HEALTH_STATUS = _named("HealthStatus", ("ok",), "The process answers.")
READINESS_STATUS = _named("ReadinessStatus", ("ready",),
                          "Ready to serve (not ready is a 503 problem).")
#: Every named enum, registered as a schema component of the OpenAPI document.
ENUMS = (MOMENT, CHANNEL, LOCALE, FAILURE_REASON, VALUE_TIER, PERSONA, LIFECYCLE, NETWORK,
         TERMINAL_OS, FEEDBACK_ACTION, HANDOFF_ACTION, SUGGESTION_KIND, SLOT, SIGNAL_KIND,
         PRODUCT_KIND, STRATEGY_STATUS, EXCLUSION_CODE, STRATEGY_STAGE, HEALTH_STATUS,
         READINESS_STATUS)


class Choice(fields.String):
    """A string of a :class:`NamedEnum`: a request value outside the set is refused (unless
    the set is extensible); the document refers to the set's component."""

    def __init__(self, enum: NamedEnum, **kwargs: Any):
        self.named_enum = enum
        if not enum.extensible:
            kwargs["validate"] = validate.OneOf(enum.values)
        super().__init__(**kwargs)
