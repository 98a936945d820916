"""The contact policy: settings refused with file and key, each rule against the responses that
should and should not fire it, and the engine holding back what the policy says."""

from __future__ import annotations

import shutil
import uuid

import pytest

from recommender import Config, ConfigError, RecommendationRequest
from recommender.contact_policy import (
    BUSINESS_WEEK_CAP,
    CATEGORY_SUPPRESSED,
    CHANNEL_DAY_CAP,
    CHANNEL_WEEK_CAP,
    DAY,
    DO_NOT_DISTURB,
    SUPPRESSED,
    ContactPolicy,
    Response,
)
from recommender.store import FeedbackEvent
from recommender.workspace import Workspace

NOW = 1_800_000_000


@pytest.mark.parametrize(("table", "key"), [
    ("dismissals = -1", "contact_policy.dismissals"),
    ("dismissals = 2.5", "contact_policy.dismissals"),
    ("dismissals = true", "contact_policy.dismissals"),
    ("dismissal_window_days = 0", "contact_policy.dismissal_window_days"),
    ("dismissal_window_days = inf", "contact_policy.dismissal_window_days"),
    ("cool_off_days = -3", "contact_policy.cool_off_days"),
    ("cool_off_days = nan", "contact_policy.cool_off_days"),
    ("max_per_channel_day = -1", "contact_policy.max_per_channel_day"),
    ("max_per_channel_week = 1e9", "contact_policy.max_per_channel_week"),
    ("max_per_business_week = 100000", "contact_policy.max_per_business_week"),
    ('suppress_category = "yes"', "contact_policy.suppress_category"),
    ('do_not_disturb_tags = "dnd"', "contact_policy.do_not_disturb_tags"),
    ('do_not_disturb_tags = [""]', "contact_policy.do_not_disturb_tags"),
    ('exempt_moments = ["lunch"]', "contact_policy.exempt_moments"),
    ("caps = 3", "contact_policy.caps"),
])
def test_bad_settings_are_refused_naming_file_and_key(tmp_path, table, key):
    path = tmp_path / "config.toml"
    path.write_text(f"[contact_policy]\n{table}\n")
    with pytest.raises(ConfigError) as raised:
        Config.load(path)
    assert str(path) in str(raised.value) and key in str(raised.value)


def test_defaults_and_a_full_table_load(tmp_path):
    assert Config.from_dict({}).contact_policy == ContactPolicy()
    path = tmp_path / "config.toml"
    path.write_text("[contact_policy]\ndismissals = 3\ndismissal_window_days = 7\n"
                    "cool_off_days = 90\nsuppress_category = true\nacross_channels = false\n"
                    "max_per_channel_day = 2\nmax_per_channel_week = 5\n"
                    "max_per_business_week = 1\ndo_not_disturb_tags = ['dnd', 'vip_quiet']\n"
                    "exempt_moments = []\n")
    policy = Config.load(path).contact_policy
    assert policy.dismissals == 3 and policy.cool_off_days == 90.0
    assert policy.do_not_disturb_tags == {"dnd", "vip_quiet"} and not policy.exempt_moments
    assert policy.lookback_seconds == 97 * DAY


@pytest.fixture(scope="module")
def engine(sample_workspace, tmp_path_factory):
    root = tmp_path_factory.mktemp("policy") / "ws"
    shutil.copytree(sample_workspace.root, root)
    with Workspace(root).engine(require_models=True) as engine:
        engine.clock = lambda: float(NOW)
        yield engine


def ask(engine, customer, channel="hotline", moment="query", **extra):
    return engine.recommend(RecommendationRequest(customer_id=customer, channel=channel,
                                                  moment=moment, debug=True, **extra))


def respond(engine, customer, product, action, *, channel="hotline", ago=0.0):
    engine.record_feedback(FeedbackEvent(
        event_id=uuid.uuid4().hex, request_id="test", product=product, action=action,
        ts=int(NOW - ago), customer_id=customer, channel=channel, moment="query"))


def policy_codes(result) -> dict[str, str]:
    return {e.product: e.code for e in result.excluded if e.code.startswith("policy_")}


def shown(result) -> list[str]:
    return [s.product for s in result.suggestions]


def test_two_dismissals_suppress_on_every_channel_and_only_for_that_customer(engine):
    top = shown(ask(engine, "C0000010"))[0]
    other_before = shown(ask(engine, "C0000011", channel="app"))
    respond(engine, "C0000010", top, "dismiss", ago=3 * DAY)
    assert top in shown(ask(engine, "C0000010"))  # one refusal is not enough
    respond(engine, "C0000010", top, "dismiss", ago=DAY)
    for channel in ("hotline", "app", "web", "wechat"):
        result = ask(engine, "C0000010", channel=channel)
        assert top not in shown(result), channel
        if top in policy_codes(result):
            assert policy_codes(result)[top] == SUPPRESSED
    detail = next(e.detail for e in ask(engine, "C0000010").excluded if e.product == top)
    assert "contact_policy.dismissals" in detail and "until" in detail
    assert shown(ask(engine, "C0000011", channel="app")) == other_before


def test_refusals_dated_ahead_of_the_clock_neither_suppress_nor_break_the_answer(engine):
    """Two dismissals an import dated in year 9999 (or a client's clock far ahead) have not
    happened yet: the customer is served as before, on every channel."""
    customer = "C0000012"
    before = shown(ask(engine, customer))
    for days in (3 * 10**6, 3 * 10**6 + 1):  # past year 10000, a day apart
        respond(engine, customer, before[0], "dismiss", ago=-days * DAY)
    for channel in ("hotline", "app"):
        assert before[0] not in policy_codes(ask(engine, customer, channel=channel)), channel
    assert shown(ask(engine, customer)) == before


def test_failure_moment_alternatives_are_exempt(engine):
    customer = "C0000020"
    result = ask(engine, customer, moment="failure", product="plan_5g_newsim",
                 failure_reason="not_eligible")
    alternatives = shown(result)
    assert alternatives
    for _ in range(3):
        respond(engine, customer, alternatives[0], "dismiss", ago=DAY)
    again = ask(engine, customer, moment="failure", product="plan_5g_newsim",
                failure_reason="not_eligible")
    assert shown(again) == alternatives and not policy_codes(again)


# -- the rules on their own, against hand-made response histories ----------------------------


class _Channel:
    id = "app"


class _Moment:
    value = "query"


class _Customer:
    def __init__(self, tags=()):
        self.tags = frozenset(tags)
        self.id = "C1"


class _Context:
    def __init__(self, tags=(), channel="app", moment="query"):
        self.customer = _Customer(tags)
        self.channel = _Channel()
        self.channel.id = channel
        self.moment = _Moment()
        self.moment.value = moment


CATEGORY = {"a": "data", "b": "data", "c": "plan", "svc": "service"}
SERVICE = {"a": False, "b": False, "c": False, "svc": True}


def decide(policy, responses, *, tags=(), channel="app", moment="query"):
    """What the policy holds back of every product, ranked in CATEGORY's order, as the engine
    asks it: refusals and do-not-disturb first, then the caps over the marketing left."""
    products = list(CATEGORY)
    dismissals = [r for r in responses if r.action == "dismiss"]
    out = {p: rule for p, rule, _ in policy.holds(
        _Context(tags, channel, moment), products, dismissals, now=NOW, category=CATEGORY,
        service=SERVICE)}
    if moment in policy.exempt_moments:
        return out
    marketing = [p for p in products if p not in out and not SERVICE[p]]
    contacts = [r for r in responses if r.action == "impression"]
    _, refused = policy.allowed(channel, marketing, contacts, now=NOW)
    out.update({p: rule for p, rule, _ in refused})
    return out


def dismiss(product, days_ago, channel="hotline"):
    return Response(int(NOW - days_ago * DAY), product, "dismiss", channel)


def shown_at(product, hours_ago, channel="app"):
    return Response(int(NOW - hours_ago * 3600), product, "impression", channel)


@pytest.mark.parametrize(("responses", "expected"), [
    ([dismiss("a", 1)], {}),
    ([dismiss("a", 1), dismiss("a", 2)], {"a": SUPPRESSED}),
    ([dismiss("a", 1), dismiss("b", 2)], {}),                       # different businesses
    ([dismiss("a", 50), dismiss("a", 85)], {}),                     # 35 days apart
    ([dismiss("a", 31), dismiss("a", 40)], {}),                     # cooled off (30 days)
    ([dismiss("a", 29), dismiss("a", 40)], {"a": SUPPRESSED}),      # still cooling off
    ([dismiss("svc", 1), dismiss("svc", 2)], {"svc": SUPPRESSED}),  # services too
    ([dismiss("a", -1), dismiss("a", -2)], {}),                     # dated ahead: not yet
    ([dismiss("a", 1), dismiss("a", -2)], {}),
    ([dismiss("a", 1), dismiss("a", -60 / 86400)], {"a": SUPPRESSED}),  # within clock skew
    ([dismiss("a", -10**7), dismiss("a", -10**7 - 1)], {}),         # past year 9999
])
def test_suppression_window_and_cool_off(responses, expected):
    assert decide(ContactPolicy(), responses) == expected


def test_suppression_per_channel_when_not_across_channels():
    policy = ContactPolicy(across_channels=False)
    responses = [dismiss("a", 1, "hotline"), dismiss("a", 2, "hotline")]
    assert decide(policy, responses, channel="app") == {}
    assert decide(policy, responses, channel="hotline") == {"a": SUPPRESSED}


def test_category_suppression():
    policy = ContactPolicy(suppress_category=True)
    assert decide(policy, [dismiss("a", 1), dismiss("a", 2)]) == {
        "a": SUPPRESSED, "b": CATEGORY_SUPPRESSED}


def test_no_suppression_when_switched_off():
    assert decide(ContactPolicy(dismissals=0), [dismiss("a", 1)] * 5) == {}


ALL_CAPPED = {"a": CHANNEL_DAY_CAP, "b": CHANNEL_DAY_CAP, "c": CHANNEL_DAY_CAP}


@pytest.mark.parametrize(("policy", "responses", "expected"), [
    (ContactPolicy(max_per_channel_day=2), [shown_at("a", 1), shown_at("c", 2)], ALL_CAPPED),
    (ContactPolicy(max_per_channel_day=2), [shown_at("a", 1)],   # one left: the best one
     {"b": CHANNEL_DAY_CAP, "c": CHANNEL_DAY_CAP}),
    (ContactPolicy(max_per_channel_day=2), [], {"c": CHANNEL_DAY_CAP}),
    (ContactPolicy(max_per_channel_day=4), [shown_at("a", 1), shown_at("c", 25)], {}),
    (ContactPolicy(max_per_channel_day=4), [shown_at("a", 1), shown_at("c", 2, "web")], {}),
    (ContactPolicy(max_per_channel_day=4), [shown_at("a", 1), shown_at("c", 2)],
     {"c": CHANNEL_DAY_CAP}),
    (ContactPolicy(max_per_channel_week=3),
     [shown_at("a", 30), shown_at("b", 60), shown_at("c", 150)],
     {"a": CHANNEL_WEEK_CAP, "b": CHANNEL_WEEK_CAP, "c": CHANNEL_WEEK_CAP}),
    (ContactPolicy(max_per_channel_week=5),
     [shown_at("a", 30), shown_at("b", 60), shown_at("c", 170)], {}),
    (ContactPolicy(max_per_business_week=2), [shown_at("a", 1), shown_at("a", 100, "web")],
     {"a": BUSINESS_WEEK_CAP}),
    (ContactPolicy(max_per_business_week=2), [shown_at("a", 1), shown_at("a", 200)], {}),
    (ContactPolicy(max_per_channel_day=1), [shown_at("a", -2)],  # dated ahead: not yet
     {"b": CHANNEL_DAY_CAP, "c": CHANNEL_DAY_CAP}),
    (ContactPolicy(max_per_channel_day=1), [shown_at("a", -0.01)], ALL_CAPPED),
])
def test_caps_leave_services_alone(policy, responses, expected):
    assert decide(policy, responses) == expected


def test_do_not_disturb_keeps_only_services():
    policy = ContactPolicy(do_not_disturb_tags=frozenset({"dnd"}))
    assert decide(policy, [], tags={"dnd", "family"}) == {
        "a": DO_NOT_DISTURB, "b": DO_NOT_DISTURB, "c": DO_NOT_DISTURB}
    assert decide(policy, [], tags={"family"}) == {}


def test_exempt_moments_skip_every_rule():
    policy = ContactPolicy(max_per_channel_day=1, do_not_disturb_tags=frozenset({"dnd"}))
    responses = [dismiss("a", 1), dismiss("a", 2), shown_at("b", 1)]
    assert decide(policy, responses, tags={"dnd"}, moment="failure") == {}
    assert decide(policy, responses, tags={"dnd"}, moment="query")
