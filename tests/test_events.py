"""The service events table: validated against the catalog on load, every error naming the
file, the event and the field; events reach the cross-sell strategy as rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender import Config, ConfigError, Engine, PluginError, RecommendationRequest
from recommender.events import Events, load_events, parse_events
from recommender.plugin_manager import make_plugin_manager

GOOD = {
    "id": "data_low",
    "name": "流量不足",
    "need": "流量快用完了",
    "recommend": [{"product": "data_daypass", "reason": "日包", "reason_en": "Day pass"}],
    "guidance": [{"id": "guide_balance", "name": "查余量", "text": "发CXLL", "link": "sms:1"}],
}


def test_the_sample_events_load_against_the_sample_catalog(catalog) -> None:
    events = load_events(Path(__file__).parents[1] / "recommender/sample/events.toml", catalog)
    assert {"phone_lost", "suspended", "arrears", "data_low", "roaming_detected"} <= set(
        events.events
    )
    lost = events.get("phone_lost")
    assert [p for p, _, _ in lost.recommend] == ["sim_replacement", "phone_purchase"]
    assert all(en for _, _, en in lost.recommend) and lost.need_en and lost.guidance


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"id": "Phone Lost"}, "event '#1', field 'id'", "lower case"),
        ({"id": "phone_lost\n"}, "event '#1', field 'id'", "lower case"),
        (
            {"recommend": [{"product": "no_such", "reason": "x"}]},
            "field 'recommend'",
            "unknown business 'no_such'",
        ),
        (
            {"recommend": [{"product": "bill_query", "reason": "x"}]},
            "field 'recommend'",
            "query service",
        ),
        ({"recommend": [{"product": "data_1gb"}]}, "field 'recommend.reason'", "non-empty string"),
        (
            {"recommend": [{"product": "data_1gb", "reason": "x", "why": "y"}]},
            "field 'recommend'",
            "entries must be",
        ),
        ({"priority": 0}, "field 'priority'", "(0, 100]"),
        ({"priority": float("nan")}, "field 'priority'", "(0, 100]"),
        ({"need": ""}, "field 'need'", "non-empty string"),
        ({"colour": "red"}, "field 'colour'", "unknown field"),
        ({"guidance": [{"id": "g", "name": "n"}]}, "field 'guidance[g].text'", "non-empty string"),
        (
            {"guidance": [{"id": "data_1gb", "name": "n", "text": "t"}]},
            "field 'guidance'",
            "names a business",
        ),
        (
            {"guidance": [{"id": "g", "name": "n", "text": "t", "href": "x"}]},
            "field 'guidance.href'",
            "unknown field",
        ),
        ({"recommend": [], "guidance": []}, "field 'recommend'", "needs businesses"),
    ],
)
def test_a_bad_event_is_refused_naming_file_event_and_field(catalog, change, where, message):
    entry = {**GOOD, **change}
    with pytest.raises(ConfigError) as info:
        parse_events({"event": [entry]}, catalog, source="events.toml")
    text = str(info.value)
    assert text.startswith("events.toml, ") and where in text and message in text, text


def test_duplicate_events_and_unknown_sections_are_refused(catalog) -> None:
    with pytest.raises(ConfigError, match="duplicate event id"):
        parse_events({"event": [GOOD, GOOD]}, catalog, source="e.toml")
    with pytest.raises(ConfigError, match="unknown top-level key"):
        parse_events({"events": [GOOD]}, catalog, source="e.toml")


def test_a_broken_events_file_stops_the_engine_naming_the_file(tmp_path, catalog) -> None:
    (tmp_path / "events.toml").write_text("[[event]]\nid = 'x'\nname = ", encoding="utf-8")
    config = Config.load(tmp_path / "config.toml")
    with pytest.raises((ConfigError, PluginError), match="events.toml, .*not valid TOML"):
        Engine(catalog, config, plugin_manager=make_plugin_manager(load_entry_points=False))
    named = Config.from_dict({"events": {"file": "missing.toml"}}, root=tmp_path)
    with pytest.raises(ConfigError, match="events file not found"):
        Events.from_config(named, catalog)
    assert not Events.from_config(Config.from_dict({}, root=tmp_path / "none"), catalog).events


EVENTS_TOML = """
[[event]]
id = "data_low"
name = "流量不足"
need = "流量快用完了"
recommend = [{ product = "data_daypass", reason = "日包应急", reason_en = "Day pass for now" }]
"""


@pytest.mark.parametrize(("moment", "product"), [("query", None), ("success", "caller_id")])
def test_an_event_reaches_cross_sell_as_a_rule_at_every_moment(
    tmp_path, catalog, moment, product
) -> None:
    (tmp_path / "events.toml").write_text(EVENTS_TOML, encoding="utf-8")
    config = Config.load(tmp_path / "config.toml")
    pm = make_plugin_manager(
        load_entry_points=False, allow=["eligibility", "channels", "cross_sell"]
    )
    with Engine(catalog, config, plugin_manager=pm) as engine:
        for locale, reason in (("en", "Day pass for now"), ("zh-CN", "日包应急")):
            result = engine.recommend(
                RecommendationRequest(
                    "walk-in",
                    "app",
                    moment,
                    product=product,
                    event="data_low",
                    locale=locale,
                    customer={"holdings": ["plan_4g"]},
                )
            )
            offers = {s.product: s for s in result.suggestions}
            assert offers["data_daypass"].reasons == (reason,)
            assert offers["data_daypass"].strategies == ("cross_sell",)
        quiet = engine.recommend(
            RecommendationRequest(
                "walk-in", "app", moment, product=product, customer={"holdings": ["plan_4g"]}
            )
        )
        assert "data_daypass" not in {s.product for s in quiet.suggestions}
