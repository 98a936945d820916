"""``[handoff]`` and ``[locale]`` of config.toml: validated on load, errors naming the file and
the key; and where a hand-off points."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender import (
    Candidate,
    Config,
    ConfigError,
    Engine,
    RecommendationRequest,
    Strategy,
    hookimpl,
)
from recommender.events import Events
from recommender.handoff import DEFAULT_CHANNELS, HandoffSettings
from recommender.plugin_manager import make_plugin_manager


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return Config.load(path)


def test_the_defaults_allow_hand_offs_on_the_hotline_and_sms_only() -> None:
    config = Config.from_dict({})
    assert sorted(DEFAULT_CHANNELS) == ["hotline", "sms"]
    assert [
        c for c in ("app", "web", "hotline", "sms", "wechat", "store") if config.handoff.allowed(c)
    ] == ["hotline", "sms"]
    assert config.locale("app") == "en"


def test_a_channel_setting_switches_hand_offs_and_locales(tmp_path) -> None:
    config = load(
        tmp_path,
        '[handoff]\nchannels = ["store"]\nprefer = ["web", "store"]\n'
        '[handoff.links]\nweb = "https://x.example/{product}?c={customer}"\n'
        '[locale]\ndefault = "zh-CN"\nweb = "en"\n',
    )
    assert config.handoff.allowed("store") and not config.handoff.allowed("hotline")
    assert config.locale("web") == "en" and config.locale("sms") == "zh-CN"
    handoff = config.handoff.handoff(
        "p1",
        "P one",
        frozenset({"web", "app"}),
        customer="C1",
        calling="store",
        smartphone=True,
        locale="en",
    )
    assert handoff.to_dict() == {
        "channel": "web",
        "action": "link",
        "text": "Order P one in the web hall",
        "link": "https://x.example/p1?c=C1",
    }


def test_a_hand_off_skips_channels_a_feature_phone_cannot_reach() -> None:
    settings = HandoffSettings()
    assert settings.target(frozenset({"app", "store"}), smartphone=True) == "app"
    assert settings.target(frozenset({"app", "store"}), smartphone=False) == "store"
    assert settings.target(frozenset({"app", "wechat"}), smartphone=False) is None
    assert (
        settings.handoff(
            "p",
            "P",
            frozenset({"hotline"}),
            customer="c",
            calling="hotline",
            smartphone=True,
            locale="en",
        )
        is None
    )  # orderable where it is shown


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ('[handoff]\nchannels = ["fax"]', "handoff.channels", "unknown channel 'fax'"),
        ('[handoff]\nchannels = "hotline"', "handoff.channels", "must be a list of channel ids"),
        ('[handoff]\nprefer = ["app", "app"]', "handoff.prefer", "names a channel twice"),
        ('[handoff]\nallow = ["sms"]', "handoff.allow", "unknown key"),
        (
            '[handoff.links]\napp = "https://x/{product_id}"',
            "handoff.links.app",
            "unknown placeholder {product_id}",
        ),
        (
            '[handoff.links]\napp = "https://x/{product"',
            "handoff.links.app",
            "is not a valid template",
        ),
        ('[handoff.links]\napp = "https://x/{0}"', "handoff.links.app", "unknown placeholder {0}"),
        (
            '[handoff.links]\napp = "https://x/{product.__class__}"',
            "handoff.links.app",
            "unknown placeholder",
        ),
        ('[handoff.links]\nfax = "x"', "handoff.links.fax", "unknown channel"),
        ('[handoff.links]\napp = ""', "handoff.links.app", "must be a non-empty string"),
        ("[handoff]\nlinks = 3", "handoff.links", "must be a table"),
        ("handoff = 3", "handoff", "must be a table"),
        ('[locale]\ndefault = "fr"', "locale.default", "must be one of zh-CN, en"),
        ('[locale]\nfax = "en"', "locale.fax", "unknown key"),
        ('[locale]\napp = "zh_CN"', "locale.app", "must be one of zh-CN, en"),
        ('[events]\nfile = ""', "events.file", "must be the path"),
    ],
)
def test_a_bad_setting_is_refused_naming_file_key_and_reason(tmp_path, text, key, message):
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(ConfigError) as info:
        config = Config.load(path)
        Events.from_config(config, None)  # type: ignore[arg-type]  # read as an engine starts
    text_ = str(info.value)
    assert text_.startswith(f"{path}, {key}:"), text_
    assert message in text_, text_
    assert path.read_bytes() == before  # nothing rewritten


class EveryBusiness:
    """A strategy plugin proposing every orderable business."""

    @hookimpl
    def register_strategies(self, catalog):
        class Every(Strategy):
            name = "every"

            def candidates(self, context, n):
                return [Candidate(p.id, 1.0, "x") for p in catalog if p.orderable][:n]

        return [Every()]


@pytest.mark.parametrize(("channels", "shown"), [(["hotline"], True), ([], False)])
def test_the_channel_setting_decides_whether_the_hotline_hands_off(catalog, channels, shown):
    config = Config.from_dict(
        {
            "handoff": {"channels": channels},
            "blend": {"query": {"every": 1.0}},
            "channels": {"hotline": 50},
        }
    )
    pm = make_plugin_manager(
        extra_plugins=[("every", EveryBusiness())],
        load_entry_points=False,
        allow=["eligibility", "channels", "every"],
    )
    with Engine(catalog, config, plugin_manager=pm) as engine:
        result = engine.recommend(
            RecommendationRequest(
                "walk-in", "hotline", "query", customer={"holdings": ["plan_4g"]}, debug=True
            )
        )
    offers = {s.product: s for s in result.suggestions}
    assert ("sim_replacement" in offers) is shown
    excluded = {e.product: e for e in result.excluded}
    if shown:
        assert offers["sim_replacement"].handoff.channel == "store"
        assert "sim_replacement" not in excluded
    else:
        assert excluded["sim_replacement"].code == "channel"
        assert excluded["sim_replacement"].detail  # debug: the sentence is written
    # what no channel lets this customer take is excluded either way
    assert excluded["plan_5g"].code == "terminal_network"
    quiet = Engine(catalog, config, plugin_manager=pm)
    try:
        plain = quiet.recommend(
            RecommendationRequest(
                "walk-in", "hotline", "query", customer={"holdings": ["plan_4g"]}, debug=False
            )
        )
        # not debug: the hook's explain=False reaches the plugin, no sentence is written
        assert plain.excluded and all(e.detail == "" for e in plain.excluded)
        assert "excluded" not in plain.to_dict()
    finally:
        quiet.close()
