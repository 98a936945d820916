"""The catalog: every malformed entry refused naming file, product and field; exclusions exact."""

from __future__ import annotations

import copy
import graphlib
import itertools
import math
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from recommender import (
    Catalog,
    CatalogError,
    Channel,
    Customer,
    Exclusion,
    Product,
    RequestContext,
    Terminal,
)
from recommender.catalog import MAX_TENURE_MONTHS, Eligibility
from recommender.context import OS, Lifecycle, Network, Persona, ValueTier

BASE = {
    "product": [
        {"id": "plan_4g", "name": "4G套餐", "category": "plan", "conflicts": ["plan_5g"]},
        {
            "id": "plan_5g",
            "name": "5G套餐",
            "category": "plan",
            "eligibility": {"min_network": "5G"},
        },
        {
            "id": "upgrade_5g",
            "name": "5G升级包",
            "category": "plan",
            "requires": ["plan_4g"],
            "eligibility": {"min_network": "5G"},
        },
        {"id": "data_1gb", "name": "1GB", "category": "data"},
        {"id": "data_5gb", "name": "5GB", "category": "data", "upgrades": ["data_1gb"]},
        {
            "id": "video",
            "name": "视频会员",
            "category": "vip",
            "channels": ["app", "web"],
            "eligibility": {"smartphone": True, "os": ["android", "ios"]},
        },
        {
            "id": "vip_gift",
            "name": "VIP礼包",
            "category": "vip",
            "requires_any": ["plan_4g", "plan_5g"],
            "eligibility": {
                "value_tiers": ["high"],
                "personas": ["data"],
                "lifecycles": ["steady"],
                "min_tenure_months": 12,
            },
        },
        {"id": "bill_query", "name": "账单查询", "category": "query", "kind": "query"},
    ],
}


def catalog_with(index: int | None = None, **changes) -> dict:
    data = copy.deepcopy(BASE)
    if index is None:
        data.update(changes)
        return data
    entry = data["product"][index]
    for key, value in changes.items():
        if key.startswith("eligibility_"):
            entry.setdefault("eligibility", {})[key[12:]] = value
        elif value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return data


def three_cycle() -> dict:
    """data_1gb needs data_5gb, which needs video, which needs data_1gb."""
    data = catalog_with(3, requires=["data_5gb"])
    data["product"][4]["requires"] = ["video"]
    data["product"][5]["requires"] = ["data_1gb"]
    return data


def upgrade_cycle() -> dict:
    """data_5gb upgrades data_1gb (as in BASE), and data_1gb upgrades data_5gb."""
    return catalog_with(3, upgrades=["data_5gb"])


def upgrade_three_cycle() -> dict:
    """data_5gb upgrades data_1gb, which upgrades video, which upgrades data_5gb."""
    data = catalog_with(3, upgrades=["video"])
    data["product"][5]["upgrades"] = ["data_5gb"]
    return data


@pytest.mark.parametrize(
    ("data", "entry", "field", "fragment"),
    [
        (catalog_with(3, id="plan_4g"), "plan_4g", "id", "duplicate product id"),
        (catalog_with(2, requires=["gold_bar"]), "upgrade_5g", "requires", "unknown product"),
        (catalog_with(6, requires_any=["gold_bar"]), "vip_gift", "requires_any", "unknown product"),
        (catalog_with(0, conflicts=["gold_bar"]), "plan_4g", "conflicts", "unknown product"),
        (catalog_with(4, upgrades=["gold_bar"]), "data_5gb", "upgrades", "unknown product"),
        (
            catalog_with(3, requires=["data_1gb"]),
            "data_1gb",
            "requires",
            "names the product itself",
        ),
        (three_cycle(), None, "requires", "prerequisite cycle"),
        (catalog_with(0, requires=["upgrade_5g"]), None, "requires", "prerequisite cycle"),
        (
            catalog_with(2, conflicts=["plan_4g"]),
            "upgrade_5g",
            "conflicts",
            "both a prerequisite and a conflict",
        ),
        (catalog_with(3, price=-1), "data_1gb", "price", "non-negative number"),
        (catalog_with(3, price=math.inf), "data_1gb", "price", "finite, non-negative number"),
        (catalog_with(3, price=-math.inf), "data_1gb", "price", "finite, non-negative number"),
        (catalog_with(3, price=math.nan), "data_1gb", "price", "finite, non-negative number"),
        (catalog_with(3, price=10**400), "data_1gb", "price", "finite, non-negative number"),
        (catalog_with(3, price=True), "data_1gb", "price", "finite, non-negative number"),
        (upgrade_cycle(), None, "upgrades", "upgrade cycle"),
        (upgrade_three_cycle(), None, "upgrades", "upgrade cycle"),
        (catalog_with(3, price="cheap"), "data_1gb", "price", "non-negative number"),
        (catalog_with(3, name=""), "data_1gb", "name", "non-empty string"),
        (catalog_with(3, name=None), "data_1gb", "name", "non-empty string"),
        (catalog_with(3, category=7), "data_1gb", "category", "non-empty string"),
        (catalog_with(3, kind="gift"), "data_1gb", "kind", "'business', 'service' or 'query'"),
        (catalog_with(3, channels=["fax"]), "data_1gb", "channels", "unknown channel 'fax'"),
        (catalog_with(3, channels="app"), "data_1gb", "channels", "list of strings"),
        (catalog_with(3, colour="red"), "data_1gb", "colour", "unknown field"),
        (catalog_with(3, id="data 1gb"), "data 1gb", "id", "spaces or commas"),
        (catalog_with(3, id=""), "#4", "id", "non-empty string"),
        (
            catalog_with(3, eligibility_min_network="6G"),
            "data_1gb",
            "eligibility.min_network",
            "2G, 3G, 4G, 5G",
        ),
        (
            catalog_with(3, eligibility_smartphone="yes"),
            "data_1gb",
            "eligibility.smartphone",
            "true or false",
        ),
        (
            catalog_with(3, eligibility_os=["symbian"]),
            "data_1gb",
            "eligibility.os",
            "values must be among",
        ),
        (
            catalog_with(3, eligibility_value_tiers=["gold"]),
            "data_1gb",
            "eligibility.value_tiers",
            "values must be among",
        ),
        (
            catalog_with(3, eligibility_personas=["gamer"]),
            "data_1gb",
            "eligibility.personas",
            "values must be among",
        ),
        (
            catalog_with(3, eligibility_lifecycles=["dormant"]),
            "data_1gb",
            "eligibility.lifecycles",
            "values must be among",
        ),
        (
            catalog_with(3, eligibility_min_tenure_months=-3),
            "data_1gb",
            "eligibility.min_tenure_months",
            "non-negative integer",
        ),
        (
            catalog_with(3, eligibility_min_tenure_months=MAX_TENURE_MONTHS + 1),
            "data_1gb",
            "eligibility.min_tenure_months",
            "at most 1200",
        ),
        (
            catalog_with(3, eligibility_min_tenure_months=10**12),
            "data_1gb",
            "eligibility.min_tenure_months",
            "at most 1200",
        ),
        (
            catalog_with(3, eligibility_min_tenure_months=math.inf),
            "data_1gb",
            "eligibility.min_tenure_months",
            "non-negative integer",
        ),
        (
            catalog_with(3, eligibility_min_tenure_months=12.0),
            "data_1gb",
            "eligibility.min_tenure_months",
            "non-negative integer",
        ),
        (
            catalog_with(3, eligibility_shoe_size=42),
            "data_1gb",
            "eligibility.shoe_size",
            "unknown field",
        ),
        (catalog_with(product=[]), None, "product", "at least one"),
        (catalog_with(products=[]), None, "products", "unknown top-level key"),
    ],
)
def test_malformed_catalogs_name_entry_and_field(data, entry, field, fragment) -> None:
    with pytest.raises(CatalogError) as info:
        Catalog.from_dict(data, source="catalog.toml")
    error = info.value
    assert error.source == "catalog.toml"
    assert error.field == field, str(error)
    if entry is not None:
        assert error.entry == entry, str(error)
    assert fragment in str(error), str(error)


@pytest.mark.parametrize(
    ("line", "field", "fragment"),
    [
        ("price = inf", "price", "got inf"),
        ("price = +inf", "price", "got inf"),
        ("price = -inf", "price", "got -inf"),
        ("price = nan", "price", "got nan"),
        ("price = -nan", "price", "got nan"),
        ("price = 1e309", "price", "got inf"),  # overflows to inf when parsed
        ("eligibility = { min_tenure_months = inf }", "eligibility.min_tenure_months", "got inf"),
        (
            "eligibility = { min_tenure_months = 1201 }",
            "eligibility.min_tenure_months",
            "at most 1200",
        ),
    ],
)
def test_non_finite_numbers_in_the_toml_file_are_refused(
    tmp_path: Path, line, field, fragment
) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(
        f'[[product]]\nid = "data_1gb"\nname = "1GB"\ncategory = "data"\n{line}\n', encoding="utf-8"
    )
    with pytest.raises(CatalogError) as info:
        Catalog.from_toml(path)
    error = info.value
    assert (error.source, error.entry, error.field) == (str(path), "data_1gb", field), str(error)
    assert str(error).startswith(f"{path}, product 'data_1gb', field {field!r}: "), str(error)
    assert fragment in str(error), str(error)


def test_an_upgrade_cycle_names_every_product_in_it() -> None:
    with pytest.raises(CatalogError) as info:
        Catalog.from_dict(upgrade_three_cycle(), source="catalog.toml")
    message = str(info.value)
    assert info.value.field == "upgrades"
    cycle = message.split("upgrade cycle ")[1].split(" -> ")
    assert cycle[0] == cycle[-1] and sorted(cycle[:-1]) == ["data_1gb", "data_5gb", "video"]
    # a chain of upgrades is fine: 20GB replaces 5GB replaces 1GB
    chain = catalog_with(5, upgrades=["data_5gb"])
    assert Catalog.from_dict(chain).upgrade_paths("data_1gb") == ("data_5gb",)


@pytest.mark.parametrize(
    ("product", "field", "message"),
    [
        (
            Product("p", "P", "c", price=math.inf),
            "price",
            "must be a finite, non-negative number, got inf",
        ),
        (
            Product("p", "P", "c", price=-1.0),
            "price",
            "must be a finite, non-negative number, got -1.0",
        ),
        (
            Product("p", "P", "c", eligibility=Eligibility(min_tenure_months=5000)),
            "eligibility.min_tenure_months",
            "must be a non-negative integer, at most 1200, got 5000",
        ),
        (
            Product("p", "P", "c", value=-2.0),
            "value",
            "must be a finite, non-negative number, got -2.0",
        ),
        (
            Product("p", "P", "c", priority=0.0),
            "priority",
            "must be a number above 0, at most 1000, got 0.0",
        ),
        (
            Product("p", "P", "c", priority=1000.5),
            "priority",
            "must be a number above 0, at most 1000, got 1000.5",
        ),
        (
            Product("p", "P", "c", priority=2.0, priority_start="2026-12-01"),  # type: ignore[arg-type]
            "priority_start",
            "must be a date or date-time, got '2026-12-01'",
        ),
        (
            Product(
                "p",
                "P",
                "c",
                priority=2.0,
                priority_start=date(2026, 12, 2),
                priority_end=date(2026, 12, 1),
            ),
            "priority_end",
            "is before priority_start (2026-12-02)",
        ),
        (Product("p", "P", "c", requires=frozenset({"p"})), "requires", "names the product itself"),
    ],
)
def test_products_built_in_code_get_the_same_checks(
    product: Product, field: str, message: str
) -> None:
    with pytest.raises(CatalogError) as info:
        Catalog([product], source="code")
    assert (info.value.source, info.value.entry, info.value.field) == ("code", "p", field)
    assert str(info.value) == f"code, product 'p', field {field!r}: {message}"
    with pytest.raises(CatalogError) as info:
        Catalog([product])
    assert str(info.value).startswith("<catalog>, product 'p', ")


def test_the_highest_priority_is_allowed() -> None:
    assert Catalog([Product("p", "P", "c", priority=1000.0)])["p"].priority == 1000.0


def test_the_sample_catalog_still_loads() -> None:
    import recommender

    catalog = Catalog.from_toml(Path(recommender.__file__).parent / "sample" / "catalog.toml")
    assert len(catalog) > 10 and all(math.isfinite(p.price) for p in catalog)


def test_bad_files(tmp_path: Path) -> None:
    broken = tmp_path / "catalog.toml"
    broken.write_text('[[product]]\nid = "x\n')
    with pytest.raises(CatalogError, match="not valid TOML"):
        Catalog.from_toml(broken)
    with pytest.raises(CatalogError, match="file not found"):
        Catalog.from_toml(tmp_path / "missing.toml")
    broken.write_bytes('[[product]]\nid = "x"\nname = "\u5f20"\n'.encode("gbk"))
    with pytest.raises(CatalogError):
        Catalog.from_toml(broken)


def test_round_trip_keeps_chinese_names_and_relations(tmp_path: Path) -> None:
    catalog = Catalog.from_dict(BASE)
    again = Catalog.from_dict(catalog.to_dict())
    assert again.products == catalog.products
    assert again["video"].name == "视频会员"
    assert catalog.conflicts_of("plan_5g") == {"plan_4g"}  # symmetric
    assert "needs a 5G terminal" in catalog["upgrade_5g"].eligibility.describe()


def ctx(
    holdings=("plan_4g",),
    network="5G",
    smartphone=True,
    os="android",
    channel="app",
    tier="high",
    persona="data",
    lifecycle="steady",
    tenure=24,
    moment="query",
    product=None,
) -> RequestContext:
    return RequestContext(
        customer=Customer(
            id="c",
            value_tier=tier,
            persona=persona,
            lifecycle=lifecycle,
            tenure_months=tenure,
            holdings=frozenset(holdings),
        ),
        terminal=Terminal(network=network, smartphone=smartphone, os=os),
        channel=Channel(id=channel, slots=5),
        moment=moment,
        product=product,
    )


@pytest.mark.parametrize(
    ("product", "context", "reason"),
    [
        ("upgrade_5g", {}, Exclusion.OK),
        ("plan_4g", {}, Exclusion.HELD),
        ("plan_5g", {}, Exclusion.CONFLICT),
        ("upgrade_5g", {"holdings": ()}, Exclusion.MISSING_PREREQUISITE),
        ("vip_gift", {"holdings": ()}, Exclusion.MISSING_PREREQUISITE),
        ("data_1gb", {"holdings": ("plan_4g", "data_5gb")}, Exclusion.SUPERSEDED),
        ("upgrade_5g", {"network": "4G"}, Exclusion.TERMINAL_NETWORK),
        ("video", {"smartphone": False, "os": None}, Exclusion.TERMINAL_SMARTPHONE),
        ("video", {"os": "harmonyos"}, Exclusion.TERMINAL_OS),
        ("video", {"channel": "sms"}, Exclusion.CHANNEL),
        ("vip_gift", {"tier": "mid"}, Exclusion.CUSTOMER_TIER),
        ("vip_gift", {"persona": "voice"}, Exclusion.CUSTOMER_PERSONA),
        ("vip_gift", {"lifecycle": "new"}, Exclusion.CUSTOMER_LIFECYCLE),
        ("vip_gift", {"tenure": 3}, Exclusion.CUSTOMER_TENURE),
        ("data_1gb", {"moment": "transaction", "product": "data_1gb"}, Exclusion.CURRENT_PRODUCT),
        ("bill_query", {}, Exclusion.NOT_ORDERABLE),
    ],
)
def test_each_exclusion_reason(product, context, reason) -> None:
    catalog = Catalog.from_dict(BASE)
    codes = catalog.exclusions(ctx(**context))
    assert Exclusion(int(codes[catalog.index[product]])) is reason
    if reason is not Exclusion.OK:
        assert catalog.explain(product, reason, ctx(**context))


def test_vectorised_exclusions_agree_with_a_per_product_check() -> None:
    """Random catalogs and contexts: the array answer is the plain per-product answer."""
    rng = np.random.default_rng(5)
    networks, oses = ["2G", "3G", "4G", "5G"], ["android", "ios", "harmonyos"]
    for _ in range(30):
        n = 40
        products = []
        for i in range(n):
            entry = {
                "id": f"p{i}",
                "name": f"业务{i}",
                "category": "c",
                "channels": sorted(
                    set(rng.choice(["app", "web", "sms", "hotline"], size=2).tolist())
                ),
                "eligibility": {},
            }
            if rng.random() < 0.3:
                entry["eligibility"]["min_network"] = str(rng.choice(networks))
            if rng.random() < 0.2:
                entry["eligibility"]["smartphone"] = True
            if rng.random() < 0.2:
                entry["eligibility"]["os"] = [str(rng.choice(oses))]
            if rng.random() < 0.2:
                entry["eligibility"]["value_tiers"] = [str(rng.choice(["high", "mid", "low"]))]
            if rng.random() < 0.2:
                entry["eligibility"]["min_tenure_months"] = int(rng.integers(0, 24))
            if i > 0 and rng.random() < 0.2:
                entry["requires"] = [f"p{int(rng.integers(0, i))}"]
            if i > 0 and rng.random() < 0.2:
                other = f"p{int(rng.integers(0, i))}"
                if other not in entry.get("requires", []):
                    entry["conflicts"] = [other]
            products.append(entry)
        catalog = Catalog.from_dict({"product": products})
        for _ in range(10):
            context = ctx(
                holdings=[f"p{j}" for j in rng.choice(n, 4, replace=False)],
                network=str(rng.choice(networks)),
                smartphone=bool(rng.random() < 0.7),
                os=str(rng.choice(oses)),
                channel=str(rng.choice(["app", "sms"])),
                tier=str(rng.choice(["high", "mid", "low"])),
                tenure=int(rng.integers(0, 30)),
            )
            codes = catalog.exclusions(context)
            for p in catalog:
                assert (codes[catalog.index[p.id]] == 0) == slow_ok(catalog, p, context), p.id


def slow_ok(catalog: Catalog, p, context: RequestContext) -> bool:
    held = context.customer.holdings
    e = p.eligibility
    return (
        p.id not in held
        and not ((catalog.conflicts_of(p.id) & held) - p.upgrades)
        and p.requires <= held
        and (not p.requires_any or bool(p.requires_any & held))
        and not any(p.id in catalog[h].upgrades for h in held)
        and (e.min_network is None or e.min_network.rank <= context.terminal.network.rank)
        and (not e.smartphone or context.terminal.smartphone)
        and (not e.os or context.terminal.os in e.os)
        and context.channel.id in p.channels
        and (not e.value_tiers or context.customer.value_tier in e.value_tiers)
        and context.customer.tenure_months >= e.min_tenure_months
    )


def test_an_upgrade_of_a_held_business_is_not_a_conflict() -> None:
    data = catalog_with(1, upgrades=["plan_4g"])  # the 5G plan replaces the 4G plan
    catalog = Catalog.from_dict(data)
    codes = catalog.exclusions(ctx(holdings=("plan_4g",)))
    assert Exclusion(int(codes[catalog.index["plan_5g"]])) is Exclusion.OK
    # ...but once on the 5G plan, the 4G plan is both a conflict and superseded.
    codes = catalog.exclusions(ctx(holdings=("plan_5g",)))
    assert Exclusion(int(codes[catalog.index["plan_4g"]])) is Exclusion.CONFLICT


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            catalog_with(product=[BASE["product"][0], 7]),
            "product '#2': each [[product]] must be a table",
        ),
        (
            catalog_with(3, id="data,1gb"),
            "product 'data,1gb', field 'id': must not contain spaces or commas",
        ),
        (catalog_with(3, colour="red"), "product 'data_1gb', field 'colour': unknown field"),
        (catalog_with(3, id="plan_4g"), "product 'plan_4g', field 'id': duplicate product id"),
        (
            three_cycle(),
            "product 'data_1gb', field 'requires': prerequisite cycle data_1gb -> data_5gb "
            "-> video -> data_1gb",
        ),
        (
            upgrade_cycle(),
            "product 'data_1gb', field 'upgrades': upgrade cycle data_1gb -> data_5gb -> data_1gb",
        ),
        (
            catalog_with(3, requires=["data_1gb"]),
            "product 'data_1gb', field 'requires': names the product itself",
        ),
        (
            catalog_with(3, category=None),
            "product 'data_1gb', field 'category': must be a non-empty string, got None",
        ),
        (catalog_with(products=[]), "field 'products': unknown top-level key"),
        (catalog_with(product={}), "field 'product': needs at least one [[product]] table"),
        (
            catalog_with(3, kind="gift"),
            "product 'data_1gb', field 'kind': must be 'business', "
            "'service' or 'query', got 'gift'",
        ),
        (
            catalog_with(3, value=-1),
            "product 'data_1gb', field 'value': must be a finite, non-negative number, got -1",
        ),
        (
            catalog_with(3, priority=0),
            "product 'data_1gb', field 'priority': must be a number above 0, at most 1000, got 0",
        ),
        (
            catalog_with(3, priority_end="2026-12-31"),
            "product 'data_1gb', field 'priority_end': a priority window needs a priority",
        ),
        (
            catalog_with(3, priority_start="2026-12-01", priority_end="2026-12-31"),
            "product 'data_1gb', field 'priority_start': a priority window needs a priority",
        ),
        (
            catalog_with(3, priority=2, priority_start="2026-13-01"),
            "product 'data_1gb', field 'priority_start': must be a date (2026-12-01) or date-time, "
            "got '2026-13-01'",
        ),
        (
            catalog_with(3, priority=2, priority_end=20261201),
            "product 'data_1gb', field 'priority_end': must be a date (2026-12-01) or date-time, "
            "got 20261201",
        ),
        (
            catalog_with(3, channels=["fax"]),
            "product 'data_1gb', field 'channels': unknown channel "
            "'fax'; known: app, web, hotline, sms, wechat, store",
        ),
        (
            catalog_with(3, eligibility=["5G"]),
            "product 'data_1gb', field 'eligibility': must be a table",
        ),
        (
            catalog_with(3, eligibility_shoe_size=42),
            "product 'data_1gb', field 'eligibility.shoe_size': unknown field",
        ),
        (
            catalog_with(3, eligibility_os="android"),
            "product 'data_1gb', field 'eligibility.os': must be a list of strings, got 'android'",
        ),
        (
            catalog_with(3, eligibility_os=["symbian"]),
            "product 'data_1gb', field 'eligibility.os': values must be among android, ios, "
            "harmonyos, other, got ['symbian']",
        ),
    ],
)
def test_each_refusal_says_exactly_what_and_where(data, message) -> None:
    """The whole message: the entry, the field, what is wrong and what would be right."""
    with pytest.raises(CatalogError) as info:
        Catalog.from_dict(data, source="catalog.toml")
    assert str(info.value) == f"catalog.toml, {message}"
    assert info.value.source == "catalog.toml"
    with pytest.raises(CatalogError) as info:  # a catalog built in code
        Catalog.from_dict(data)
    assert str(info.value) == f"<catalog>, {message}"


def test_defaults_and_priority_windows_as_written() -> None:
    """No price means free; a window bound is a date, or a date-time when it has a time."""
    data = catalog_with(
        3, priority=2, priority_start="2026-12-01", priority_end="2026-12-24T18:30:00"
    )
    data["product"][4].update(
        priority=3, priority_start=date(2026, 11, 1), priority_end=datetime(2026, 11, 2, 9, 0)
    )
    catalog = Catalog.from_dict(data)
    product = catalog["data_1gb"]
    assert product.price == 0.0 and product.value is None
    assert type(product.priority_start) is date and product.priority_start == date(2026, 12, 1)
    assert product.priority_end == datetime(2026, 12, 24, 18, 30)
    upgrade = catalog["data_5gb"]
    assert (upgrade.priority_start, upgrade.priority_end) == (
        date(2026, 11, 1),
        datetime(2026, 11, 2, 9, 0),
    )


def test_unreadable_files_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(CatalogError) as info:
        Catalog.from_toml(missing)
    assert str(info.value) == f"{missing}: file not found"
    assert (info.value.source, info.value.entry, info.value.field) == (str(missing), None, None)
    broken = tmp_path / "catalog.toml"
    for content, start in [
        (b'[[product]]\nid = "x\n', "not valid TOML: "),
        ('[[product]]\nid = "\u5f20"\n'.encode("gbk"), "not UTF-8: "),
    ]:
        broken.write_bytes(content)
        with pytest.raises(CatalogError) as info:
            Catalog.from_toml(broken)
        assert str(info.value).startswith(f"{broken}: {start}"), str(info.value)
        assert info.value.source == str(broken) and info.value.entry is None


def test_conditions_in_words() -> None:
    """What a front-end shows next to a business: every condition, in a fixed order."""
    assert Eligibility().describe() == []
    every = Eligibility(
        min_network=Network.G5,
        smartphone=True,
        os=frozenset(OS),
        value_tiers=frozenset(ValueTier),
        personas=frozenset(Persona),
        lifecycles=frozenset(Lifecycle),
        min_tenure_months=12,
    )
    assert every.describe() == [
        "needs a 5G terminal",
        "needs a smartphone",
        "needs android or harmonyos or ios or other",
        "for high/low/mid value",
        "for data/network/price/product/service/voice personas",
        "in lifecycle new/open_request/resolved/steady",
        "needs 12 months of tenure",
    ]
    assert Eligibility(os=frozenset({OS.IOS}), min_tenure_months=1).describe() == [
        "needs ios",
        "needs 1 months of tenure",
    ]


@pytest.mark.parametrize(
    ("start", "end", "accepted"),
    [
        ("2026-12-01T10:30:15", "2026-12-01T10:30:20", True),  # seconds count up
        ("2026-12-01T10:10:00", "2026-12-01T10:20:00", True),  # minutes count up
        ("2026-12-01T09:59:00", "2026-12-01T10:00:00", True),  # an hour is 3,600 s
        ("2026-12-01T23:59:59", "2026-12-01", True),  # an end date counts whole
        ("2026-12-01", "2026-12-01T00:00:00", True),  # a start date from its first instant
        ("2026-12-01T10:01:00", "2026-12-01T10:00:30", False),
        ("2026-12-02", "2026-12-01T23:59:59", False),
    ],
)
def test_a_priority_window_ends_after_it_starts_to_the_second(start, end, accepted) -> None:
    data = catalog_with(3, priority=2, priority_start=start, priority_end=end)
    if accepted:
        assert Catalog.from_dict(data)["data_1gb"].priority == 2
        return
    with pytest.raises(CatalogError) as info:
        Catalog.from_dict(data, source="catalog.toml")
    assert str(info.value) == (
        f"catalog.toml, product 'data_1gb', field 'priority_end': is before priority_start "
        f"({start})"
    )


def test_the_per_product_arrays_plugins_read() -> None:
    """Prices as float64 even when a catalog built in code gives whole numbers."""
    catalog = Catalog([Product("a", "A", "c", price=5), Product("b", "B", "c", price=3)])
    assert catalog.price.dtype == np.float64
    assert catalog.price.tolist() == [5.0, 3.0]


def relation_graphs(seed: int, count: int) -> list[dict[str, list[str]]]:
    """Small random graphs (product -> products it names), with and without cycles."""
    rng = np.random.default_rng(seed)
    graphs = []
    for _ in range(count):
        n = int(rng.integers(2, 8))
        ids = [f"p{i}" for i in rng.permutation(n)]  # listed in any order
        edges = rng.random((n, n)) < rng.choice([0.1, 0.2, 0.35])
        graphs.append(
            {a: [b for j, b in enumerate(ids) if edges[i, j] and i != j] for i, a in enumerate(ids)}
        )
    return graphs


@pytest.mark.parametrize("relation", ["requires", "upgrades"])
def test_every_cycle_is_found_and_named(relation: str) -> None:
    """Against graphlib: a catalog loads exactly when its prerequisites (or upgrades) have no
    cycle, and the cycle named is one, product by product, from the product it closes on."""
    found = 0
    for graph in relation_graphs(seed=19, count=300):
        products = [
            Product(a, a.upper(), "c", **{relation: frozenset(bs)}) for a, bs in graph.items()
        ]
        try:
            tuple(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError:
            with pytest.raises(CatalogError) as info:
                Catalog(products, source="catalog.toml")
            error = info.value
            what = "prerequisite cycle" if relation == "requires" else "upgrade cycle"
            assert error.field == relation and str(error).startswith(
                f"catalog.toml, product {error.entry!r}, field {relation!r}: {what} "
            ), str(error)
            cycle = str(error).split(f"{what} ")[1].split(" -> ")
            assert cycle[0] == cycle[-1] == error.entry and len(set(cycle[:-1])) == len(cycle) - 1
            assert all(b in graph[a] for a, b in itertools.pairwise(cycle)), cycle
            found += 1
        else:
            assert len(Catalog(products)) == len(graph)
    assert 50 < found < 250  # both kinds of catalog were drawn


def test_a_cycle_after_a_shared_prerequisite_is_found() -> None:
    """The search goes on past a product already reached from an earlier one."""
    products = [
        Product("x", "X", "c", requires=frozenset({"y"})),
        Product("y", "Y", "c"),
        Product("c1", "C1", "c", requires=frozenset({"c2"})),
        Product("c2", "C2", "c", requires_any=frozenset({"c1"})),
    ]
    with pytest.raises(CatalogError) as info:
        Catalog(products, source="catalog.toml")
    assert str(info.value) == (
        "catalog.toml, product 'c1', field 'requires': prerequisite cycle c1 -> c2 -> c1"
    )


def test_a_deep_web_of_shared_prerequisites_loads() -> None:
    """40 levels of two businesses, each needing both of the level below: 2**40 paths, so the
    search must visit each business once, not once per path."""
    products = [Product("l0a", "A", "c"), Product("l0b", "B", "c")]
    for level in range(1, 40):
        below = frozenset({f"l{level - 1}a", f"l{level - 1}b"})
        products += [Product(f"l{level}{side}", side, "c", requires=below) for side in "ab"]
    catalog = Catalog(reversed(products))
    assert len(catalog) == 80
