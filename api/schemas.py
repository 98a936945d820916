"""Marshmallow schemas: the one definition of every request and response body.

They validate what comes in, serialise what goes out and generate the OpenAPI document, so the
three cannot drift apart. Unknown fields are refused everywhere: a misspelt field must fail
loudly rather than be silently ignored.
"""

from __future__ import annotations

import time
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

from recommender.attributes import MAX_INLINE_ATTRIBUTES, NAME_PATTERN, value_problem
from recommender.contact_policy import MAX_CLOCK_SKEW_S
from recommender.context import Moment
from recommender.store import EVENT_ID_PATTERN, MAX_ID_LENGTH, MAX_TAGS, text_problem

from .enums import (
    CHANNEL,
    EXCLUSION_CODE,
    FAILURE_REASON,
    FEEDBACK_ACTION,
    HANDOFF_ACTION,
    HEALTH_STATUS,
    LIFECYCLE,
    LOCALE,
    MOMENT,
    NETWORK,
    PERSONA,
    PRODUCT_KIND,
    READINESS_STATUS,
    SIGNAL_KIND,
    SLOT,
    STRATEGY_STAGE,
    STRATEGY_STATUS,
    SUGGESTION_KIND,
    TERMINAL_OS,
    VALUE_TIER,
    Choice,
    NamedEnum,
)


def _plain_text(value: str) -> bool:
    """No control characters and valid Unicode (a lone surrogate cannot be stored as UTF-8):
    the rule the CSV import applies too (``recommender.store.text_problem``)."""
    problem = text_problem(value, max_length=MAX_ID_LENGTH) if value else None
    if problem is not None:
        raise ValidationError(problem)
    return True


class FullMatch(validate.Regexp):
    """A pattern the whole value must match. ``validate.Regexp`` uses ``re.match``, where ``$``
    also matches before a final newline ("abc\\n" passed ``^[a-z]+$``); the document keeps the
    ``^...$`` form that OpenAPI's ECMAScript patterns read."""

    def __call__(self, value: str) -> str:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


ID = [validate.Length(min=1, max=MAX_ID_LENGTH), _plain_text]
MAX_HOLDINGS = 500
EVENT_ID = FullMatch(f"^{EVENT_ID_PATTERN.pattern}$")
#: A service event id: lower case, digits and underscores (``phone_lost``).
EVENT_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


def _enum(enum: NamedEnum, description: str, **kwargs: Any) -> Choice:
    return Choice(enum, metadata={"description": description}, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true or false only: not "yes", not 1."""

    def _deserialize(self, value: object, attr: object, data: object, **kwargs: object) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class AttributeValue(fields.Field):
    """A customer attribute's value: a finite number or a short text (not true/false)."""

    def _deserialize(self, value: object, attr: object, data: object,
                     **kwargs: object) -> object:
        problem = value_problem(value)
        if problem is not None:
            raise ValidationError(problem)
        return value


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


class CustomerSchema(StrictSchema):
    id = fields.String(validate=ID, metadata={
        "description": "Customer id in the operator's systems; looked up in the store.",
        "example": "C000001"})
    value_tier = _enum(VALUE_TIER, "ARPU value tier; overrides the stored one.")
    persona = _enum(PERSONA, "Behaviour persona; overrides the stored one.")
    lifecycle = _enum(LIFECYCLE, "Lifecycle stage; overrides the stored one.")
    tenure_months = fields.Integer(strict=True, validate=validate.Range(0, 1200))
    vip_level = fields.Integer(strict=True, validate=validate.Range(0, 10))
    tags = fields.List(fields.String(validate=ID), validate=validate.Length(max=MAX_TAGS))
    holdings = fields.List(
        fields.String(validate=ID), validate=validate.Length(max=MAX_HOLDINGS),
        metadata={"description": "Businesses the customer holds now; replaces the stored list."})
    attributes = fields.Dict(
        keys=fields.String(validate=FullMatch(f"^{NAME_PATTERN.pattern}$")),
        values=AttributeValue(), validate=validate.Length(max=MAX_INLINE_ATTRIBUTES),
        metadata={"description": "The operator's own attributes (name: number or text, at "
                                 f"most {MAX_INLINE_ATTRIBUTES}); each overrides the stored "
                                 "one of its name.",
                  "example": {"age": 42, "region": "north"}})

    @validates_schema
    def _identified(self, data: dict, **kwargs: object) -> None:
        if not data:
            raise ValidationError("give the customer's id, or inline attributes and holdings",
                                  field_name="id")


class TerminalSchema(StrictSchema):
    network = _enum(NETWORK, "Network generation the terminal supports.")
    smartphone = StrictBoolean()
    os = _enum(TERMINAL_OS, "Terminal operating system.")
    model = fields.String(validate=ID)


class RecommendationRequestSchema(StrictSchema):
    customer = fields.Nested(CustomerSchema, required=True)
    terminal = fields.Nested(TerminalSchema, metadata={
        "description": "What the channel knows of the terminal; overrides the stored one."})
    channel = _enum(CHANNEL, "The calling channel; decides the number of slots.",
                    required=True)
    moment = _enum(MOMENT, "The moment of the customer's journey.", required=True)
    product = fields.String(validate=ID, allow_none=True, metadata={
        "description": "The business being queried, ordered, just taken or just failed."})
    failure_reason = _enum(FAILURE_REASON, "Why the order failed (failure moment only).",
                           allow_none=True)
    k = fields.Integer(strict=True, validate=validate.Range(1, 100), metadata={
        "description": "How many suggestions; capped by the channel's slots."})
    debug = StrictBoolean(metadata={
        "description": "Also return exclusions with reasons, per-strategy timings and errors "
                       "(false when absent)."})
    request_id = fields.String(validate=FullMatch(r"^[A-Za-z0-9._:-]{1,64}$"), metadata={
        "description": "Caller's id for this request; generated when absent."})
    locale = _enum(LOCALE, "Language of every sentence in the answer; the channel's default "
                            "(config.toml [locale]) when absent.")
    event = fields.String(validate=FullMatch(EVENT_PATTERN), metadata={
        "description": "A service event the channel knows of (events.toml: phone_lost, "
                       "suspended, arrears, data_low, roaming_detected...): adds its service "
                       "guidance and businesses.", "example": "phone_lost"})

    @post_load
    def _debug_off_unless_asked(self, data: dict, **kwargs: object) -> dict:
        # Not a load_default: a documented default makes TypeScript clients send the field.
        data.setdefault("debug", False)
        return data

    @validates_schema
    def _moment_fields(self, data: dict, **kwargs: object) -> None:
        if data.get("failure_reason") and data.get("moment") != Moment.FAILURE:
            raise ValidationError("only a failure-moment request carries a failure reason",
                                  field_name="failure_reason")
        if data.get("moment") in (Moment.TRANSACTION, Moment.FAILURE) and not data.get("product"):
            raise ValidationError(f"the {data['moment']} moment needs the business acted on",
                                  field_name="product")


class HandoffSchema(Schema):
    channel = Choice(CHANNEL, required=True, metadata={
        "description": "The channel to order it on."})
    action = Choice(HANDOFF_ACTION, required=True, metadata={
        "description": "What the customer does there."})
    text = fields.String(required=True, metadata={"description": "The sentence to show or say."})
    link = fields.String(required=True, allow_none=True, metadata={
        "description": "Deep link, store finder or number (config.toml [handoff.links])."})


class SuggestionSchema(Schema):
    product = fields.String(required=True, metadata={
        "description": "Business id (a guidance id for kind 'service')."})
    name = fields.String(required=True, metadata={"description": "Display name, in the locale."})
    kind = Choice(SUGGESTION_KIND, required=True, metadata={
        "description": "business: orderable; service: guidance with a text and a link (not "
                       "sold; from a service event)."})
    score = fields.Float(required=True, metadata={
        "description": "Arbitration score the list is ranked by: propensity^a x value^b x "
                       "priority^c x relevance^d (config.toml [arbitration]); the propensity "
                       "is the blended score, each strategy's score scaled to 0-1 times its "
                       "weight. Exploration slots follow the ranked ones."})
    strategies = fields.List(fields.String(), required=True,
                             metadata={"description": "Strategies that proposed it."})
    reasons = fields.List(fields.String(), required=True,
                          metadata={"description": "One reason per proposing strategy."})
    order_channels = fields.List(Choice(CHANNEL), required=True, metadata={
        "description": "The channels that can transact it (empty for guidance)."})
    handoff = fields.Nested(HandoffSchema, required=True, allow_none=True, metadata={
        "description": "null when the calling channel can transact it; otherwise where and "
                       "how to order it (only on channels that allow hand-offs)."})
    talking_point = fields.String(metadata={
        "description": "Hotline: the agent's one line about it."})
    text = fields.String(metadata={"description": "Service guidance: what to do."})
    link = fields.String(allow_none=True, metadata={"description": "Service guidance: link."})
    components = fields.Dict(keys=fields.String(), values=fields.Float(), metadata={
        "description": "Debug: the factors of score, before their exponents: propensity, "
                       "value, priority, relevance."})
    slot = Choice(SLOT, metadata={
        "description": "Debug: 'ranked', or 'explore' for an exploration slot "
                       "(config.toml [exploration])."})


class ExclusionSchema(Schema):
    product = fields.String(required=True)
    reason = Choice(EXCLUSION_CODE, required=True, metadata={"description": "Machine code."})
    detail = fields.String(required=True, metadata={"description": "Plain sentence."})


class StrategyErrorSchema(Schema):
    strategy = fields.String(required=True)
    stage = Choice(STRATEGY_STAGE, required=True)
    error = fields.String(required=True)


class CheckSchema(Schema):
    product = fields.String(required=True)
    name = fields.String(required=True)
    will_succeed = fields.Boolean(required=True, metadata={
        "description": "Whether ordering it on this channel will succeed for this customer "
                       "and terminal."})
    reason = Choice(EXCLUSION_CODE, required=True, allow_none=True, metadata={
        "description": "Machine code of the obstacle (as in ``excluded``), null on success."})
    detail = fields.String(required=True, allow_none=True, metadata={
        "description": "The obstacle in a sentence, in the locale."})
    order_channels = fields.List(Choice(CHANNEL), required=True)
    handoff = fields.Nested(HandoffSchema, required=True, allow_none=True, metadata={
        "description": "When only the channel is in the way (on a hand-off channel): where "
                       "to order it."})
    alternatives = fields.List(fields.Nested(SuggestionSchema), required=True, metadata={
        "description": "When it will fail: what works instead, best first."})


class AssistSignalSchema(Schema):
    kind = Choice(SIGNAL_KIND, required=True)
    product = fields.String(allow_none=True)
    ts = fields.Integer(allow_none=True, metadata={"description": "Unix seconds."})
    detail = fields.String(required=True)


class AssistSchema(Schema):
    likely_need = fields.String(required=True, allow_none=True, metadata={
        "description": "Why the caller is probably calling, in one sentence."})
    signals = fields.List(fields.Nested(AssistSignalSchema), required=True)


class RecommendationSchema(Schema):
    request_id = fields.String(required=True)
    model_version = fields.String(required=True)
    moment = Choice(MOMENT, required=True)
    channel = Choice(CHANNEL, required=True)
    locale = Choice(LOCALE, required=True)
    event = fields.String(metadata={"description": "The request's service event."})
    assist = fields.Nested(AssistSchema, metadata={
        "description": "Hotline agent assist: the caller's likely need from recent events."})
    check = fields.Nested(CheckSchema, metadata={
        "description": "Transaction moment: the pre-order check of the business. When it "
                       "will fail, ``suggestions`` are the alternatives."})
    experiment = fields.String(metadata={
        "description": "The experiment the request belongs to (config.toml [experiments]); "
                       "absent when none applies. Send it back with the feedback."})
    arm = fields.String(metadata={
        "description": "The customer's arm in that experiment (with ``experiment``)."})
    suggestions = fields.List(fields.Nested(SuggestionSchema), required=True)
    explanation = fields.Nested(ExclusionSchema, metadata={
        "description": "Failure moment: why the customer could not take the business."})
    warnings = fields.List(fields.String())
    excluded = fields.List(fields.Nested(ExclusionSchema), metadata={"description": "Debug."})
    timings = fields.Dict(keys=fields.String(), values=fields.Float(),
                          metadata={"description": "Debug: milliseconds per strategy and step."})
    errors = fields.List(fields.Nested(StrategyErrorSchema),
                         metadata={"description": "Debug: strategies skipped and why."})


class CheckRequestSchema(StrictSchema):
    customer = fields.Nested(CustomerSchema, required=True)
    terminal = fields.Nested(TerminalSchema)
    channel = _enum(CHANNEL, "The channel the order would be placed on.", required=True)
    product = fields.String(required=True, validate=ID, metadata={
        "description": "The business about to be ordered."})
    locale = _enum(LOCALE, "Language of the sentences; the channel's default when absent.")
    request_id = fields.String(validate=FullMatch(r"^[A-Za-z0-9._:-]{1,64}$"))


class CheckResponseSchema(Schema):
    request_id = fields.String(required=True)
    channel = Choice(CHANNEL, required=True)
    locale = Choice(LOCALE, required=True)
    check = fields.Nested(CheckSchema, required=True)


class FeedbackRequestSchema(StrictSchema):
    event_id = fields.String(validate=EVENT_ID, metadata={
        "description": "Client-chosen id; a retry with the same id is stored once."})
    request_id = fields.String(required=True, validate=ID)
    product = fields.String(required=True, validate=ID)
    action = _enum(FEEDBACK_ACTION, "What the customer did with the suggestion.",
                   required=True)
    ts = fields.Integer(strict=True, validate=validate.Range(0, 2**41), metadata={
        "description": f"Unix time in seconds, at most {MAX_CLOCK_SKEW_S} s ahead of the "
                       f"server's clock "
                       "(events dated later have not happened yet); the server's clock when "
                       "absent."})
    customer_id = fields.String(validate=ID)
    channel = _enum(CHANNEL, "Channel that showed the suggestion.")
    moment = _enum(MOMENT, "Moment at which it was shown.")
    strategies = fields.List(fields.String(validate=ID), validate=validate.Length(max=32))
    experiment = fields.String(validate=ID, metadata={
        "description": "The response's ``experiment``, with ``arm``. When both are left out, "
                       "the server attributes the event from ``customer_id``, ``channel``, "
                       "``moment`` and ``ts`` with the experiments configured now."})
    arm = fields.String(validate=ID, metadata={
        "description": "The response's ``arm``, with ``experiment``."})

    @validates("ts")
    def _not_ahead(self, value: int, **kwargs: object) -> None:
        ahead = value - time.time()
        if ahead > MAX_CLOCK_SKEW_S:
            hint = (" (milliseconds? send seconds)" if value > 10**12
                    else ": send Unix time in seconds, UTC")
            raise ValidationError(f"is {ahead:.0f} s ahead of the server's clock, at most "
                                  f"{MAX_CLOCK_SKEW_S} s{hint}")

    @validates_schema
    def _experiment_and_arm(self, data: dict, **kwargs: object) -> None:
        for given, missing in (("experiment", "arm"), ("arm", "experiment")):
            if given in data and missing not in data:
                raise ValidationError(f"give {missing} with {given}, as the response had them",
                                      field_name=missing)


class FeedbackAckSchema(Schema):
    event_id = fields.String(required=True)
    stored = fields.Boolean(required=True, metadata={
        "description": "False when an event with this id was already stored."})


class EligibilitySchema(Schema):
    min_network = Choice(NETWORK)
    smartphone = fields.Boolean()
    os = fields.List(Choice(TERMINAL_OS))
    value_tiers = fields.List(Choice(VALUE_TIER))
    personas = fields.List(Choice(PERSONA))
    lifecycles = fields.List(Choice(LIFECYCLE))
    min_tenure_months = fields.Integer()


class ProductSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    name_en = fields.String()
    description = fields.String()
    category = fields.String(required=True)
    kind = Choice(PRODUCT_KIND, required=True)
    price = fields.Float(required=True)
    value = fields.Float(metadata={
        "description": "What taking it is worth (a margin) for arbitration; else its price."})
    priority = fields.Float(metadata={
        "description": "Marketing priority in arbitration (1: none), within its window."})
    priority_start = fields.String(metadata={
        "description": "First day (or instant) of the priority, ISO 8601."})
    priority_end = fields.String(metadata={
        "description": "Last day (or instant) of the priority, ISO 8601."})
    channels = fields.List(Choice(CHANNEL), required=True)
    requires = fields.List(fields.String(), metadata={"description": "Needs all of these."})
    requires_any = fields.List(fields.String(), metadata={"description": "Needs one of these."})
    conflicts = fields.List(fields.String(), metadata={
        "description": "Cannot be held with (whichever side declared it)."})
    upgrades = fields.List(fields.String(), metadata={"description": "Replaces these."})
    upgraded_by = fields.List(fields.String(), metadata={"description": "Replaced by these."})
    eligibility = fields.Nested(EligibilitySchema)
    terminal = fields.Dict(keys=fields.String(), metadata={
        "description": "A device business: the terminal it gives (network, smartphone, os)."})
    talking_point = fields.String(metadata={"description": "Hotline agent's line template."})
    talking_point_en = fields.String()


class ProductListSchema(Schema):
    products = fields.List(fields.Nested(ProductSchema), required=True)
    count = fields.Integer(required=True)


class ProductQuerySchema(StrictSchema):
    category = fields.String(validate=validate.Length(min=1, max=64))
    channel = _enum(CHANNEL, "Only businesses this channel can transact.")


class AudienceQuerySchema(StrictSchema):
    top = fields.Integer(strict=False, load_default=100, validate=validate.Range(1, 1000),
                         metadata={"description": "How many customers (at most 1,000; larger "
                                                  "audiences: recommender target)."})
    min_score = fields.Float(validate=validate.Range(0, 1), metadata={
        "description": "Only customers scoring at least this (a probability)."})
    channel = _enum(CHANNEL, "Only customers who can take it on this channel.")
    locale = _enum(LOCALE, "Language of the reasons; the channel's default when absent.")


class AudienceMemberSchema(Schema):
    rank = fields.Integer(required=True)
    customer_id = fields.String(required=True)
    score = fields.Float(required=True, metadata={"description": "Probability of taking it."})
    strategies = fields.List(fields.String(), required=True)
    reason = fields.String(required=True)


class AudienceSchema(Schema):
    product = fields.String(required=True)
    count = fields.Integer(required=True)
    scanned = fields.Integer(required=True, metadata={"description": "Customers scored."})
    ineligible = fields.Integer(required=True, metadata={
        "description": "Customers who cannot take it (held, conflicts, terminal...)."})
    held_back = fields.Integer(required=True, metadata={
        "description": "Eligible customers the contact policy holds back."})
    customers = fields.List(fields.Nested(AudienceMemberSchema), required=True)


class StrategySchema(Schema):
    name = fields.String(required=True)
    plugin = fields.String(required=True, metadata={"description": "Plugin that registered it."})
    moments = fields.List(Choice(MOMENT), required=True)
    model_version = fields.String(required=True)
    status = Choice(STRATEGY_STATUS, required=True, metadata={
        "description": "ready: serving; untrained: enabled but no model; disabled: weight 0."})
    weights = fields.Dict(keys=fields.String(), values=fields.Float(), required=True,
                          metadata={"description": "Blend weight per moment."})
    effective_weights = fields.Dict(
        keys=fields.String(), values=fields.Dict(keys=fields.String(), values=fields.Float()),
        required=True, metadata={"description": "The weight each channel applies at each "
                                 "moment: the channel's override where config.toml has one "
                                 "([blend.<moment>.<channel>]), else the moment's."})


class StrategyListSchema(Schema):
    model_version = fields.String(required=True)
    strategies = fields.List(fields.Nested(StrategySchema), required=True)


class PluginStrategySchema(Schema):
    name = fields.String(required=True)
    training = fields.String(required=True, metadata={
        "description": "trained in VERSION, not trained, needs no training or not in blend"})


class PluginSchema(Schema):
    name = fields.String(required=True, metadata={"description": "The plugin's registered "
                                                  "name (its entry-point name)."})
    module = fields.String(required=True)
    distribution = fields.String(required=True, allow_none=True, metadata={
        "description": "The installed distribution shipping it; null for code registered "
                       "from a script."})
    version = fields.String(required=True, allow_none=True)
    builtin = fields.Boolean(required=True)
    hooks = fields.List(fields.String(), required=True)
    strategies = fields.List(fields.Nested(PluginStrategySchema), required=True)


class PluginListSchema(Schema):
    model_version = fields.String(required=True, allow_none=True)
    load_warnings = fields.List(fields.String(), required=True)
    plugins = fields.List(fields.Nested(PluginSchema), required=True)


class HealthSchema(Schema):
    status = Choice(HEALTH_STATUS, required=True)


class ReadinessSchema(Schema):
    status = Choice(READINESS_STATUS, required=True)
    model_version = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class ReloadRequestSchema(StrictSchema):
    version = fields.String(validate=FullMatch(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
                            metadata={"description": "Model version folder; default CURRENT."})


class ReloadSchema(Schema):
    previous_version = fields.String(required=True)
    model_version = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details, the body of every 4xx and 5xx answer."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True, validate=validate.Range(400, 599), metadata={
        "description": "The HTTP status of the answer."})
    detail = fields.String(required=True)
    instance = fields.String()
    request_id = fields.String(metadata={
        "description": "The request's id: the X-Request-ID header sent, else one made up (also "
                       "in the response's X-Request-ID header and the access log)."})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), metadata={
        "description": "Per-field messages, keyed by the field's dotted path."})
    checks = fields.Dict(keys=fields.String(), values=fields.String())
