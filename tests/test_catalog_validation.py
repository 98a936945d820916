"""The catalog: every malformed entry refused naming file, product and field; exclusions exact."""

from __future__ import annotations

import copy
import math
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

BASE = {
    "product": [
        {"id": "plan_4g", "name": "4G套餐", "category": "plan", "conflicts": ["plan_5g"]},
        {"id": "plan_5g", "name": "5G套餐", "category": "plan",
         "eligibility": {"min_network": "5G"}},
        {"id": "upgrade_5g", "name": "5G升级包", "category": "plan", "requires": ["plan_4g"],
         "eligibility": {"min_network": "5G"}},
        {"id": "data_1gb", "name": "1GB", "category": "data"},
        {"id": "data_5gb", "name": "5GB", "category": "data", "upgrades": ["data_1gb"]},
        {"id": "video", "name": "视频会员", "category": "vip", "channels": ["app", "web"],
         "eligibility": {"smartphone": True, "os": ["android", "ios"]}},
        {"id": "vip_gift", "name": "VIP礼包", "category": "vip", "requires_any":
         ["plan_4g", "plan_5g"], "eligibility": {"value_tiers": ["high"], "personas": ["data"],
                                                 "lifecycles": ["steady"],
                                                 "min_tenure_months": 12}},
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


@pytest.mark.parametrize(("data", "entry", "field", "fragment"), [
    (catalog_with(3, id="plan_4g"), "plan_4g", "id", "duplicate product id"),
    (catalog_with(2, requires=["gold_bar"]), "upgrade_5g", "requires", "unknown product"),
    (catalog_with(6, requires_any=["gold_bar"]), "vip_gift", "requires_any", "unknown product"),
    (catalog_with(0, conflicts=["gold_bar"]), "plan_4g", "conflicts", "unknown product"),
    (catalog_with(4, upgrades=["gold_bar"]), "data_5gb", "upgrades", "unknown product"),
    (catalog_with(3, requires=["data_1gb"]), "data_1gb", "requires", "names the product itself"),
    (three_cycle(), None, "requires", "prerequisite cycle"),
    (catalog_with(0, requires=["upgrade_5g"]), None, "requires", "prerequisite cycle"),
    (catalog_with(2, conflicts=["plan_4g"]), "upgrade_5g", "conflicts",
     "both a prerequisite and a conflict"),
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
    (catalog_with(3, eligibility_min_network="6G"), "data_1gb", "eligibility.min_network",
     "2G, 3G, 4G, 5G"),
    (catalog_with(3, eligibility_smartphone="yes"), "data_1gb", "eligibility.smartphone",
     "true or false"),
    (catalog_with(3, eligibility_os=["symbian"]), "data_1gb", "eligibility.os",
     "values must be among"),
    (catalog_with(3, eligibility_value_tiers=["gold"]), "data_1gb",
     "eligibility.value_tiers", "values must be among"),
    (catalog_with(3, eligibility_personas=["gamer"]), "data_1gb", "eligibility.personas",
     "values must be among"),
    (catalog_with(3, eligibility_lifecycles=["dormant"]), "data_1gb",
     "eligibility.lifecycles", "values must be among"),
    (catalog_with(3, eligibility_min_tenure_months=-3), "data_1gb",
     "eligibility.min_tenure_months", "non-negative integer"),
    (catalog_with(3, eligibility_min_tenure_months=MAX_TENURE_MONTHS + 1), "data_1gb",
     "eligibility.min_tenure_months", "at most 1200"),
    (catalog_with(3, eligibility_min_tenure_months=10**12), "data_1gb",
     "eligibility.min_tenure_months", "at most 1200"),
    (catalog_with(3, eligibility_min_tenure_months=math.inf), "data_1gb",
     "eligibility.min_tenure_months", "non-negative integer"),
    (catalog_with(3, eligibility_min_tenure_months=12.0), "data_1gb",
     "eligibility.min_tenure_months", "non-negative integer"),
    (catalog_with(3, eligibility_shoe_size=42), "data_1gb", "eligibility.shoe_size",
     "unknown field"),
    (catalog_with(product=[]), None, "product", "at least one"),
    (catalog_with(products=[]), None, "products", "unknown top-level key"),
])
def test_malformed_catalogs_name_entry_and_field(data, entry, field, fragment) -> None:
    with pytest.raises(CatalogError) as info:
        Catalog.from_dict(data, source="catalog.toml")
    error = info.value
    assert error.source == "catalog.toml"
    assert error.field == field, str(error)
    if entry is not None:
        assert error.entry == entry, str(error)
    assert fragment in str(error), str(error)


@pytest.mark.parametrize(("line", "field", "fragment"), [
    ("price = inf", "price", "got inf"),
    ("price = +inf", "price", "got inf"),
    ("price = -inf", "price", "got -inf"),
    ("price = nan", "price", "got nan"),
    ("price = -nan", "price", "got nan"),
    ("price = 1e309", "price", "got inf"),  # overflows to inf when parsed
    ("eligibility = { min_tenure_months = inf }", "eligibility.min_tenure_months", "got inf"),
    ("eligibility = { min_tenure_months = 1201 }", "eligibility.min_tenure_months",
     "at most 1200"),
])
def test_non_finite_numbers_in_the_toml_file_are_refused(tmp_path: Path, line, field,
                                                         fragment) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(f'[[product]]\nid = "data_1gb"\nname = "1GB"\ncategory = "data"\n{line}\n',
                    encoding="utf-8")
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


@pytest.mark.parametrize(("product", "field"), [
    (Product("p", "P", "c", price=math.inf), "price"),
    (Product("p", "P", "c", price=-1.0), "price"),
    (Product("p", "P", "c", eligibility=Eligibility(min_tenure_months=5000)),
     "eligibility.min_tenure_months"),
])
def test_products_built_in_code_get_the_same_checks(product: Product, field: str) -> None:
    with pytest.raises(CatalogError) as info:
        Catalog([product], source="code")
    assert (info.value.source, info.value.entry, info.value.field) == ("code", "p", field)


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


def ctx(holdings=("plan_4g",), network="5G", smartphone=True, os="android", channel="app",
        tier="high", persona="data", lifecycle="steady", tenure=24, moment="query",
        product=None) -> RequestContext:
    return RequestContext(
        customer=Customer(id="c", value_tier=tier, persona=persona, lifecycle=lifecycle,
                          tenure_months=tenure, holdings=frozenset(holdings)),
        terminal=Terminal(network=network, smartphone=smartphone, os=os),
        channel=Channel(id=channel, slots=5), moment=moment, product=product)


@pytest.mark.parametrize(("product", "context", "reason"), [
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
])
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
            entry = {"id": f"p{i}", "name": f"业务{i}", "category": "c",
                     "channels": sorted(set(rng.choice(["app", "web", "sms", "hotline"],
                                                       size=2).tolist())),
                     "eligibility": {}}
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
            context = ctx(holdings=[f"p{j}" for j in rng.choice(n, 4, replace=False)],
                          network=str(rng.choice(networks)), smartphone=bool(rng.random() < .7),
                          os=str(rng.choice(oses)), channel=str(rng.choice(["app", "sms"])),
                          tier=str(rng.choice(["high", "mid", "low"])),
                          tenure=int(rng.integers(0, 30)))
            codes = catalog.exclusions(context)
            for p in catalog:
                assert (codes[catalog.index[p.id]] == 0) == slow_ok(catalog, p, context), p.id


def slow_ok(catalog: Catalog, p, context: RequestContext) -> bool:
    held = context.customer.holdings
    e = p.eligibility
    return (p.id not in held
            and not ((catalog.conflicts_of(p.id) & held) - p.upgrades)
            and p.requires <= held and (not p.requires_any or bool(p.requires_any & held))
            and not any(p.id in catalog[h].upgrades for h in held)
            and (e.min_network is None or e.min_network.rank <= context.terminal.network.rank)
            and (not e.smartphone or context.terminal.smartphone)
            and (not e.os or context.terminal.os in e.os)
            and context.channel.id in p.channels
            and (not e.value_tiers or context.customer.value_tier in e.value_tiers)
            and context.customer.tenure_months >= e.min_tenure_months)


def test_an_upgrade_of_a_held_business_is_not_a_conflict() -> None:
    data = catalog_with(1, upgrades=["plan_4g"])  # the 5G plan replaces the 4G plan
    catalog = Catalog.from_dict(data)
    codes = catalog.exclusions(ctx(holdings=("plan_4g",)))
    assert Exclusion(int(codes[catalog.index["plan_5g"]])) is Exclusion.OK
    # ...but once on the 5G plan, the 4G plan is both a conflict and superseded.
    codes = catalog.exclusions(ctx(holdings=("plan_5g",)))
    assert Exclusion(int(codes[catalog.index["plan_4g"]])) is Exclusion.CONFLICT
