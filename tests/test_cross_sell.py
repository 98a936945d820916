"""Rule-based cross-sell: the rules file's validation and the rules' matching."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest

from plugins.cross_sell import (
    CrossSellStrategy,
    RulesError,
    load_rules,
    parse_rules,
    register_strategies,
)
from recommender import (
    Catalog,
    Channel,
    Config,
    ConfigError,
    Customer,
    Engine,
    RecommendationRequest,
    RequestContext,
    Terminal,
)

BASE_RULE = {
    "id": "roaming-kit",
    "moments": ["transaction", "success"],
    "priority": 90,
    "reason": "出国必备",
    "recommend": ["intl_data_daypass", {"product": "intl_sms", "reason": "International SMS"}],
    "when": {"product": ["intl_roaming"]},
}


def with_rule(**changes) -> dict:
    rule = copy.deepcopy(BASE_RULE)
    for key, value in changes.items():
        if key.startswith("when_"):
            rule["when"][key[5:]] = value
        elif value is None:
            rule.pop(key, None)
        else:
            rule[key] = value
    return {"rule": [rule]}


@pytest.mark.parametrize(("data", "field", "fragment"), [
    (with_rule(recommend=["gold_bar"]), "recommend", "unknown business 'gold_bar'"),
    (with_rule(recommend=["bill_query"]), "recommend", "query service"),
    (with_rule(recommend=[]), "recommend", "non-empty"),
    (with_rule(recommend=None), "recommend", "non-empty"),
    (with_rule(recommend=[{"product": "intl_sms", "colour": "red"}]), "recommend", "entries"),
    (with_rule(reason=None), "recommend", "no reason text"),
    (with_rule(moments=["lunch"]), "moments", "values must be among"),
    (with_rule(moments="success"), "moments", "non-empty list"),
    (with_rule(priority=0), "priority", "(0, 100]"),
    (with_rule(priority="high"), "priority", "(0, 100]"),
    (with_rule(priority=math.inf), "priority", "finite number in (0, 100]"),
    (with_rule(priority=-math.inf), "priority", "finite number in (0, 100]"),
    (with_rule(priority=math.nan), "priority", "finite number in (0, 100]"),
    (with_rule(priority=10**400), "priority", "(0, 100]"),
    (with_rule(priority=True), "priority", "(0, 100]"),
    (with_rule(description=5), "description", "must be a string"),
    (with_rule(colour="red"), "colour", "unknown field"),
    (with_rule(id=""), "id", "non-empty"),
    (with_rule(when_channel=["fax"]), "when.channel", "unknown channel 'fax'"),
    (with_rule(when_network=["6G"]), "when.network", "values must be among"),
    (with_rule(when_value_tier=["gold"]), "when.value_tier", "values must be among"),
    (with_rule(when_persona=["shopper"]), "when.persona", "values must be among"),
    (with_rule(when_lifecycle=["dormant"]), "when.lifecycle", "values must be among"),
    (with_rule(when_failure_reason=["bad luck"]), "when.failure_reason", "values must be"),
    (with_rule(when_holds_any=["gold_bar"]), "when.holds_any", "unknown business"),
    (with_rule(when_lacks=["gold_bar"]), "when.lacks", "unknown business"),
    (with_rule(when_category=["spaceflight"]), "when.category", "no business has category"),
    (with_rule(when_smartphone="yes"), "when.smartphone", "true or false"),
    (with_rule(when_min_tenure_months=-1), "when.min_tenure_months", "non-negative"),
    (with_rule(when_min_tenure_months=math.inf), "when.min_tenure_months", "non-negative"),
    (with_rule(when_max_tenure_months=math.nan), "when.max_tenure_months", "non-negative"),
    (with_rule(when_max_tenure_months=10**18), "when.max_tenure_months", "at most 1200"),
    (with_rule(when_min_tenure_months=1201), "when.min_tenure_months", "at most 1200"),
    (with_rule(when_min_tenure_months=12, when_max_tenure_months=6),
     "when.max_tenure_months", "below"),
    (with_rule(when_weather=["rain"]), "when.weather", "unknown condition"),
    (with_rule(when_product=[]), "when.product", "non-empty list"),
])
def test_bad_rules_are_rejected_naming_rule_and_field(catalog: Catalog, data, field,
                                                      fragment) -> None:
    with pytest.raises(RulesError) as info:
        parse_rules(data, catalog, source="rules.toml")
    message = str(info.value)
    assert message.startswith("rules.toml"), message
    assert f"field {field!r}" in message and fragment in message, message


def test_duplicate_ids_and_bad_files_are_rejected(catalog: Catalog, tmp_path: Path) -> None:
    twice = {"rule": [copy.deepcopy(BASE_RULE), copy.deepcopy(BASE_RULE)]}
    with pytest.raises(RulesError, match="duplicate rule id"):
        parse_rules(twice, catalog)
    broken = tmp_path / "rules.toml"
    broken.write_text("[[rule]\nid = 'x'")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_rules(broken, catalog)
    with pytest.raises(ConfigError, match="not found"):
        load_rules(tmp_path / "missing.toml", catalog)


@pytest.mark.parametrize(("line", "field", "fragment"), [
    ("priority = inf", "priority", "got inf"),
    ("priority = nan", "priority", "got nan"),
    ("priority = -inf", "priority", "got -inf"),
    ("when = { product = ['intl_roaming'], max_tenure_months = inf }",
     "when.max_tenure_months", "got inf"),
])
def test_non_finite_numbers_in_the_rules_file_are_refused(catalog: Catalog, tmp_path: Path,
                                                          line, field, fragment) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(f"[[rule]]\nid = 'kit'\nreason = 'r'\nrecommend = ['intl_sms']\n{line}\n",
                    encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(path, catalog)
    message = str(info.value)
    assert message.startswith(f"{path}, rule 'kit', field {field!r}: "), message
    assert fragment in message, message


@pytest.mark.parametrize("rules", [5, "", " ", ["rules.toml"], {"path": "rules.toml"}])
def test_the_rules_setting_must_be_a_path(catalog: Catalog, rules) -> None:
    config = Config.from_dict({"strategies": {"cross_sell": {"rules": rules}}},
                              source="config.toml")
    with pytest.raises(ConfigError) as info:
        register_strategies(config=config, catalog=catalog)
    assert str(info.value).startswith("config.toml, strategies.cross_sell.rules: must be the "
                                      "path of a rules file"), info.value


def context(moment="transaction", product="intl_roaming", holdings=("plan_4g",), channel="app",
            network="4G", smartphone=True, tier="mid", tags=(), failure_reason=None,
            tenure=24) -> RequestContext:
    return RequestContext(
        customer=Customer(id="c1", value_tier=tier, holdings=frozenset(holdings),
                          tags=frozenset(tags), tenure_months=tenure),
        terminal=Terminal(network=network, smartphone=smartphone),
        channel=Channel(id=channel, slots=5), moment=moment, product=product,
        failure_reason=failure_reason)


@pytest.mark.parametrize(("when", "ctx", "matches"), [
    ({"product": ["intl_roaming"]}, {}, True),
    ({"product": ["intl_roaming"]}, {"product": "data_1gb"}, False),
    ({"channel": ["hotline"]}, {}, False),
    ({"channel": ["hotline", "app"]}, {}, True),
    ({"network": ["5G"]}, {}, False),
    ({"network": ["5G"]}, {"network": "5G"}, True),
    ({"smartphone": False}, {}, False),
    ({"value_tier": ["high"]}, {"tier": "high"}, True),
    ({"value_tier": ["high"]}, {}, False),
    ({"tags_any": ["traveller"]}, {"tags": ["traveller"]}, True),
    ({"tags_any": ["traveller"]}, {}, False),
    ({"holds_all": ["plan_4g", "intl_ld"]}, {}, False),
    ({"holds_all": ["plan_4g", "intl_ld"]}, {"holdings": ["plan_4g", "intl_ld"]}, True),
    ({"holds_any": ["intl_ld", "plan_4g"]}, {}, True),
    ({"lacks": ["plan_4g"]}, {}, False),
    ({"lacks": ["intl_ld"]}, {}, True),
    ({"min_tenure_months": 36}, {}, False),
    ({"max_tenure_months": 36}, {}, True),
    ({"failure_reason": ["not_eligible"]},
     {"moment": "failure", "failure_reason": "not_eligible"}, True),
    ({"failure_reason": ["conflict"]},
     {"moment": "failure", "failure_reason": "not_eligible"}, False),
])
def test_conditions(catalog: Catalog, when, ctx, matches) -> None:
    rule = with_rule(moments=["transaction", "failure"])
    rule["rule"][0]["when"] = when
    strategy = CrossSellStrategy(catalog, parse_rules(rule, catalog))
    got = strategy.candidates(context(**ctx), 10)
    assert bool(got) is matches
    if matches:
        assert [c.product for c in got] == ["intl_data_daypass", "intl_sms"]
        assert [c.reason for c in got] == ["出国必备", "International SMS"]


def test_rules_only_fire_at_their_moments(catalog: Catalog) -> None:
    strategy = CrossSellStrategy(catalog, parse_rules(with_rule(), catalog))
    assert strategy.candidates(context(moment="success"), 10)
    assert not strategy.candidates(context(moment="query"), 10)


def test_disabled_rules_are_validated_but_not_served(catalog: Catalog) -> None:
    assert parse_rules(with_rule(enabled=False), catalog) == []
    with pytest.raises(RulesError):
        parse_rules(with_rule(enabled=False, recommend=["gold_bar"]), catalog)


def test_sample_rules_load_and_cover_the_failure_path(engine: Engine) -> None:
    strategy = engine.strategies["cross_sell"]
    assert strategy.describe()["rules"] >= 10
    customer_id = engine.store.db.execute(
        "SELECT t.customer_id FROM terminals t JOIN holdings h ON h.customer_id = t.customer_id "
        "WHERE t.network = '5G' AND h.product_id = 'plan_4g' AND NOT EXISTS (SELECT 1 FROM "
        "holdings u WHERE u.customer_id = t.customer_id AND u.product_id = 'upgrade_5g') "
        "LIMIT 1").fetchone()[0]
    result = engine.recommend(RecommendationRequest(
        customer_id, "app", "failure", product="plan_5g_newsim",
        failure_reason="not_eligible"))
    top = result.suggestions[0]
    assert top.product == "upgrade_5g"
    assert "cross_sell" in top.strategies
