"""Marshmallow schemas: the one definition of every request and response body.

They validate what comes in, serialise what goes out and generate the OpenAPI document, so the
three cannot drift apart. Unknown fields are refused everywhere: a misspelt field must fail
loudly rather than be silently ignored.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from recommender.catalog import ProductKind
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
from recommender.store import EVENT_ID_PATTERN, MAX_ID_LENGTH, MAX_TAGS, text_problem


def _plain_text(value: str) -> bool:
    """No control characters and valid Unicode (a lone surrogate cannot be stored as UTF-8):
    the rule the CSV import applies too (``recommender.store.text_problem``)."""
    problem = text_problem(value, max_length=MAX_ID_LENGTH) if value else None
    if problem is not None:
        raise ValidationError(problem)
    return True


ID = [validate.Length(min=1, max=MAX_ID_LENGTH), _plain_text]
FEEDBACK_ACTIONS = ("impression", "click", "accept", "dismiss")
MAX_HOLDINGS = 500
EVENT_ID = validate.Regexp(f"^{EVENT_ID_PATTERN.pattern}$")


def _enum(values: object, description: str, **kwargs: object) -> fields.String:
    choices = [str(v) for v in values]  # type: ignore[attr-defined]
    return fields.String(validate=validate.OneOf(choices),
                         metadata={"description": description, "enum": choices}, **kwargs)


class StrictBoolean(fields.Boolean):
    """JSON true or false only: not "yes", not 1."""

    def _deserialize(self, value: object, attr: object, data: object, **kwargs: object) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE
        ordered = True


class CustomerSchema(StrictSchema):
    id = fields.String(validate=ID, metadata={
        "description": "Customer id in the operator's systems; looked up in the store.",
        "example": "C000001"})
    value_tier = _enum(ValueTier, "ARPU value tier; overrides the stored one.")
    persona = _enum(Persona, "Behaviour persona; overrides the stored one.")
    lifecycle = _enum(Lifecycle, "Lifecycle stage; overrides the stored one.")
    tenure_months = fields.Integer(strict=True, validate=validate.Range(0, 1200))
    vip_level = fields.Integer(strict=True, validate=validate.Range(0, 10))
    tags = fields.List(fields.String(validate=ID), validate=validate.Length(max=MAX_TAGS))
    holdings = fields.List(
        fields.String(validate=ID), validate=validate.Length(max=MAX_HOLDINGS),
        metadata={"description": "Businesses the customer holds now; replaces the stored list."})

    @validates_schema
    def _identified(self, data: dict, **kwargs: object) -> None:
        if not data:
            raise ValidationError("give the customer's id, or inline attributes and holdings",
                                  field_name="id")


class TerminalSchema(StrictSchema):
    network = _enum(Network, "Network generation the terminal supports.")
    smartphone = StrictBoolean()
    os = _enum(OS, "Terminal operating system.")
    model = fields.String(validate=ID)


class RecommendationRequestSchema(StrictSchema):
    customer = fields.Nested(CustomerSchema, required=True)
    terminal = fields.Nested(TerminalSchema, metadata={
        "description": "What the channel knows of the terminal; overrides the stored one."})
    channel = _enum(CHANNEL_IDS, "The calling channel; decides the number of slots.",
                    required=True)
    moment = _enum(Moment, "The moment of the customer's journey.", required=True)
    product = fields.String(validate=ID, allow_none=True, metadata={
        "description": "The business being queried, ordered, just taken or just failed."})
    failure_reason = _enum(FailureReason, "Why the order failed (failure moment only).",
                           allow_none=True)
    k = fields.Integer(strict=True, validate=validate.Range(1, 100), metadata={
        "description": "How many suggestions; capped by the channel's slots."})
    debug = StrictBoolean(load_default=False, metadata={
        "description": "Also return exclusions with reasons, per-strategy timings and errors."})
    request_id = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9._:-]{1,64}$"), metadata={
        "description": "Caller's id for this request; generated when absent."})

    @validates_schema
    def _moment_fields(self, data: dict, **kwargs: object) -> None:
        if data.get("failure_reason") and data.get("moment") != Moment.FAILURE:
            raise ValidationError("only a failure-moment request carries a failure reason",
                                  field_name="failure_reason")
        if data.get("moment") in (Moment.TRANSACTION, Moment.FAILURE) and not data.get("product"):
            raise ValidationError(f"the {data['moment']} moment needs the business acted on",
                                  field_name="product")


class SuggestionSchema(Schema):
    product = fields.String(required=True, metadata={"description": "Business id."})
    name = fields.String(required=True, metadata={"description": "Display name."})
    score = fields.Float(required=True, metadata={
        "description": "Arbitration score the list is ranked by: propensity^a x value^b x "
                       "priority^c x relevance^d (config.toml [arbitration]); the propensity "
                       "is the blended score, each strategy's score scaled to 0-1 times its "
                       "weight. Exploration slots follow the ranked ones."})
    strategies = fields.List(fields.String(), required=True,
                             metadata={"description": "Strategies that proposed it."})
    reasons = fields.List(fields.String(), required=True,
                          metadata={"description": "One reason per proposing strategy."})
    components = fields.Dict(keys=fields.String(), values=fields.Float(), metadata={
        "description": "Debug: the factors of score, before their exponents: propensity, "
                       "value, priority, relevance."})
    slot = fields.String(metadata={
        "description": "Debug: 'ranked', or 'explore' for an exploration slot "
                       "(config.toml [exploration]).", "enum": ["ranked", "explore"]})


class ExclusionSchema(Schema):
    product = fields.String(required=True)
    reason = fields.String(required=True, metadata={"description": "Machine code."})
    detail = fields.String(required=True, metadata={"description": "Plain sentence."})


class StrategyErrorSchema(Schema):
    strategy = fields.String(required=True)
    stage = fields.String(required=True)
    error = fields.String(required=True)


class RecommendationSchema(Schema):
    request_id = fields.String(required=True)
    model_version = fields.String(required=True)
    moment = fields.String(required=True)
    channel = fields.String(required=True)
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


class FeedbackRequestSchema(StrictSchema):
    event_id = fields.String(validate=EVENT_ID, metadata={
        "description": "Client-chosen id; a retry with the same id is stored once."})
    request_id = fields.String(required=True, validate=ID)
    product = fields.String(required=True, validate=ID)
    action = _enum(FEEDBACK_ACTIONS, "What the customer did with the suggestion.",
                   required=True)
    ts = fields.Integer(strict=True, validate=validate.Range(0, 2**41), metadata={
        "description": "Unix time in seconds; the server's clock when absent."})
    customer_id = fields.String(validate=ID)
    channel = _enum(CHANNEL_IDS, "Channel that showed the suggestion.")
    moment = _enum(Moment, "Moment at which it was shown.")
    strategies = fields.List(fields.String(validate=ID), validate=validate.Length(max=32))
    experiment = fields.String(validate=ID, metadata={
        "description": "The response's ``experiment``, with ``arm``. When both are left out, "
                       "the server attributes the event from ``customer_id``, ``channel``, "
                       "``moment`` and ``ts`` with the experiments configured now."})
    arm = fields.String(validate=ID, metadata={
        "description": "The response's ``arm``, with ``experiment``."})

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
    min_network = fields.String()
    smartphone = fields.Boolean()
    os = fields.List(fields.String())
    value_tiers = fields.List(fields.String())
    personas = fields.List(fields.String())
    lifecycles = fields.List(fields.String())
    min_tenure_months = fields.Integer()


class ProductSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    name_en = fields.String()
    description = fields.String()
    category = fields.String(required=True)
    kind = fields.String(required=True, metadata={"enum": [k.value for k in ProductKind]})
    price = fields.Float(required=True)
    value = fields.Float(metadata={
        "description": "What taking it is worth (a margin) for arbitration; else its price."})
    priority = fields.Float(metadata={
        "description": "Marketing priority in arbitration (1: none), within its window."})
    priority_start = fields.String(metadata={
        "description": "First day (or instant) of the priority, ISO 8601."})
    priority_end = fields.String(metadata={
        "description": "Last day (or instant) of the priority, ISO 8601."})
    channels = fields.List(fields.String(), required=True)
    requires = fields.List(fields.String(), metadata={"description": "Needs all of these."})
    requires_any = fields.List(fields.String(), metadata={"description": "Needs one of these."})
    conflicts = fields.List(fields.String(), metadata={
        "description": "Cannot be held with (whichever side declared it)."})
    upgrades = fields.List(fields.String(), metadata={"description": "Replaces these."})
    upgraded_by = fields.List(fields.String(), metadata={"description": "Replaced by these."})
    eligibility = fields.Nested(EligibilitySchema)


class ProductListSchema(Schema):
    products = fields.List(fields.Nested(ProductSchema), required=True)
    count = fields.Integer(required=True)


class ProductQuerySchema(StrictSchema):
    category = fields.String(validate=validate.Length(min=1, max=64))
    channel = _enum(CHANNEL_IDS, "Only businesses this channel can transact.")


class StrategySchema(Schema):
    name = fields.String(required=True)
    plugin = fields.String(required=True, metadata={"description": "Plugin that registered it."})
    moments = fields.List(fields.String(), required=True)
    model_version = fields.String(required=True)
    status = fields.String(required=True, metadata={
        "enum": ["ready", "untrained", "disabled"],
        "description": "ready: serving; untrained: enabled but no model; disabled: weight 0."})
    weights = fields.Dict(keys=fields.String(), values=fields.Float(), required=True,
                          metadata={"description": "Blend weight per moment."})


class StrategyListSchema(Schema):
    model_version = fields.String(required=True)
    strategies = fields.List(fields.Nested(StrategySchema), required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)


class ReadinessSchema(Schema):
    status = fields.String(required=True)
    model_version = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String(), required=True)


class ReloadRequestSchema(StrictSchema):
    version = fields.String(validate=validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
                            metadata={"description": "Model version folder; default CURRENT."})


class ReloadSchema(Schema):
    previous_version = fields.String(required=True)
    model_version = fields.String(required=True)


class ProblemSchema(Schema):
    """RFC 9457 problem details, the body of every 4xx and 5xx answer."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    instance = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), metadata={
        "description": "Per-field messages, keyed by the field's dotted path."})
    checks = fields.Dict(keys=fields.String(), values=fields.String())
