"""Eligibility as a property: random catalogs and contexts against a plain reference.

``reference_reasons`` below restates the rules the README promises ("never an offer the
customer cannot take") product by product, in plain Python, without calling the code under
test. Hypothesis draws catalogs with every kind of relation and condition (several
prerequisites, requires-any, conflicts both ways, upgrades, network/smartphone/OS conditions,
tier/persona/lifecycle lists, tenure) and contexts with every optional field unknown at times
(no OS, no persona, no product, no k). The answer is checked twice:

- ``Catalog.exclusions``: the exact first reason per product, not only yes or no;
- ``Engine.recommend``: an engine over the random catalog whose only strategy proposes every
  product, registered as a third-party plugin, must return exactly the eligible businesses,
  report every other one with the same reason, and say the same through a channel's request.
  At a transaction the engine first checks the order itself; an order that will fail is
  served as after a failure (the business is not held, so its add-ons are not offered), and
  the reference does the same (``served_as``).

The runs are derandomized and bounded (see ``PROPERTY``), so CI sees the same examples each time.
The second half pins, as plain examples, the bugs that once passed every test (issue 19).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from recommender import (
    CHANNEL_IDS,
    OS,
    Candidate,
    Catalog,
    Channel,
    Config,
    Customer,
    Eligibility,
    Engine,
    Exclusion,
    FailureReason,
    Lifecycle,
    Moment,
    Network,
    Persona,
    Product,
    ProductKind,
    RecommendationRequest,
    RequestContext,
    Strategy,
    Terminal,
    UnknownProductError,
    ValueTier,
    hookimpl,
)
from recommender.catalog import MAX_TENURE_MONTHS
from recommender.plugin_manager import make_plugin_manager

NO_SHRINK = [Phase.explicit, Phase.reuse, Phase.generate]
# Under mutation testing (mutmut sets MUTANT_UNDER_TEST) the tests run once per mutant and only
# "it fails" counts: a third of the examples, and no minutes spent shrinking a failure.
MUTATING = bool(os.environ.get("MUTANT_UNDER_TEST"))
PROPERTY = settings(
    derandomize=True,  # the same examples on every run and machine
    database=None,
    max_examples=50 if MUTATING else 150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=NO_SHRINK if MUTATING else list(Phase),
)
# The engine test builds an engine per example, so shrinking its failures takes minutes; the
# catalog test fails on the same bugs and shrinks them to a minimal catalog and context.
ENGINE_PROPERTY = settings(PROPERTY, phases=NO_SHRINK)

# Network generations from oldest to newest, as the README orders them ("2G to 5G").
GENERATIONS = ["2G", "3G", "4G", "5G"]
UNKNOWN = "ghost"  # an id no catalog has: holdings and products may name it; it never counts


# --------------------------------------------------------------------------------------------
# The reference: the documented rules, one product at a time
# --------------------------------------------------------------------------------------------


def shown(p: Product, context: RequestContext) -> str:
    """The name a sentence gives ``p``: the English one in an English answer, when the catalog
    has one; else the catalog's name (contexts without a locale are answered in it)."""
    return p.name_en if p.name_en and getattr(context, "locale", None) == "en" else p.name


def held_after(context: RequestContext) -> set[str]:
    """Holdings, plus the business being ordered while ordering and after a success."""
    held = set(context.customer.holdings)
    if context.product is not None and context.moment in (Moment.TRANSACTION, Moment.SUCCESS):
        held.add(context.product)
    return held


# The reason shown is the first rule broken in this order, the most useful to the customer
# first (``Catalog.exclusions``): "you already hold its upgrade" beats "it needs X".
PRECEDENCE = [
    Exclusion.NOT_ORDERABLE,
    Exclusion.CURRENT_PRODUCT,
    Exclusion.HELD,
    Exclusion.CONFLICT,
    Exclusion.SUPERSEDED,
    Exclusion.MISSING_PREREQUISITE,
    Exclusion.TERMINAL_NETWORK,
    Exclusion.TERMINAL_SMARTPHONE,
    Exclusion.TERMINAL_OS,
    Exclusion.CHANNEL,
    Exclusion.CUSTOMER_TIER,
    Exclusion.CUSTOMER_PERSONA,
    Exclusion.CUSTOMER_LIFECYCLE,
    Exclusion.CUSTOMER_TENURE,
]


def reference_reasons(
    products: Mapping[str, Product], p: Product, context: RequestContext
) -> list[Exclusion]:
    """Every rule ``p`` breaks for this context, first the one shown to the customer."""
    customer, terminal = context.customer, context.terminal
    held = {h for h in held_after(context) if h in products}
    e = p.eligibility
    broken = []
    if p.kind is ProductKind.QUERY:  # a query service (bill, balance) is never offered
        broken.append(Exclusion.NOT_ORDERABLE)
    if p.id == context.product:
        broken.append(Exclusion.CURRENT_PRODUCT)
    if p.id in held:
        broken.append(Exclusion.HELD)
    # A conflict counts whichever side names it, unless p upgrades (replaces) the holding.
    if any(
        (h in p.conflicts or p.id in products[h].conflicts) and h not in p.upgrades for h in held
    ):
        broken.append(Exclusion.CONFLICT)
    if any(p.id in products[h].upgrades for h in held):
        broken.append(Exclusion.SUPERSEDED)
    if not all(r in held for r in p.requires) or (
        p.requires_any and not any(r in held for r in p.requires_any)
    ):
        broken.append(Exclusion.MISSING_PREREQUISITE)
    if e.min_network is not None and GENERATIONS.index(terminal.network.value) < GENERATIONS.index(
        e.min_network.value
    ):
        broken.append(Exclusion.TERMINAL_NETWORK)
    if e.smartphone and not terminal.smartphone:
        broken.append(Exclusion.TERMINAL_SMARTPHONE)
    if e.os and terminal.os not in e.os:  # an unknown OS meets no OS condition
        broken.append(Exclusion.TERMINAL_OS)
    if context.channel.id not in p.channels:
        broken.append(Exclusion.CHANNEL)
    if e.value_tiers and customer.value_tier not in e.value_tiers:
        broken.append(Exclusion.CUSTOMER_TIER)
    if e.personas and customer.persona not in e.personas:  # nor does an unknown persona
        broken.append(Exclusion.CUSTOMER_PERSONA)
    if e.lifecycles and customer.lifecycle not in e.lifecycles:
        broken.append(Exclusion.CUSTOMER_LIFECYCLE)
    if customer.tenure_months < e.min_tenure_months:
        broken.append(Exclusion.CUSTOMER_TENURE)
    return sorted(broken, key=PRECEDENCE.index)


def first_reason(products: Mapping[str, Product], p: Product, context: RequestContext) -> Exclusion:
    broken = reference_reasons(products, p, context)
    return broken[0] if broken else Exclusion.OK


# --------------------------------------------------------------------------------------------
# Random catalogs and contexts
# --------------------------------------------------------------------------------------------

WORDS = st.text(min_size=1, max_size=8).filter(str.strip)
TENURES = st.sampled_from([0, 1, 6, 11, 12, 13, 24, MAX_TENURE_MONTHS]) | st.integers(
    0, MAX_TENURE_MONTHS
)


def subset(draw, pool: list[str], max_size: int) -> frozenset[str]:
    """Often none, else one to ``max_size`` of ``pool``."""
    if not pool or not draw(st.booleans()):
        return frozenset()
    size = draw(st.integers(1, min(max_size, len(pool))))
    return frozenset(
        draw(st.lists(st.sampled_from(pool), min_size=size, max_size=size, unique=True))
    )


CONDITIONS = (
    "min_network",
    "smartphone",
    "os",
    "value_tiers",
    "personas",
    "lifecycles",
    "min_tenure_months",
)


@st.composite
def eligibility(draw) -> Eligibility:
    """A few conditions at most per business, so that some customers can take it."""
    chosen = draw(st.sets(st.sampled_from(CONDITIONS), max_size=3))
    some = {"os": OS, "value_tiers": ValueTier, "personas": Persona, "lifecycles": Lifecycle}
    conditions: dict = {
        key: draw(st.frozensets(st.sampled_from(enum), min_size=1))
        for key, enum in some.items()
        if key in chosen
    }
    if "min_network" in chosen:
        conditions["min_network"] = draw(st.sampled_from(Network))
    if "smartphone" in chosen:
        conditions["smartphone"] = True
    if "min_tenure_months" in chosen:
        conditions["min_tenure_months"] = draw(TENURES)
    return Eligibility(**conditions)


@st.composite
def priorities(draw) -> dict:
    """Arbitration fields, carried through the catalog's data like any other."""
    out: dict = {"value": draw(st.none() | st.floats(0, 1e6))}
    if draw(st.booleans()):
        out["priority"] = draw(st.sampled_from([1.0, 2.0]) | st.floats(0.5, 1000))
        start = draw(st.none() | st.dates())
        end = draw(st.none() | st.dates(min_value=start or date.min))
        out.update(priority_start=start, priority_end=end)
    return out


@st.composite
def catalogs(draw, max_products: int = 9) -> list[Product]:
    """Valid catalogs: prerequisites and upgrades point to products created earlier (so there is
    no cycle), conflicts anywhere but never on a prerequisite; then the list is shuffled."""
    n = draw(st.integers(1, max_products))
    ids = [f"b{i}" for i in range(n)]
    products = []
    for i, pid in enumerate(ids):
        earlier = ids[:i]
        related = draw(
            st.sets(
                st.sampled_from(["requires", "requires_any", "conflicts", "upgrades"]), max_size=2
            )
        )
        requires = subset(draw, earlier, 3) if "requires" in related else frozenset()
        requires_any = subset(draw, earlier, 3) if "requires_any" in related else frozenset()
        others = [o for o in ids if o != pid and o not in requires | requires_any]
        products.append(
            Product(
                id=pid,
                name=f"业务{i}",
                category=draw(st.sampled_from(["data", "vip", "数据"])),
                name_en=draw(st.none() | WORDS),
                description=draw(st.none() | WORDS),
                price=draw(st.sampled_from([0.0, 5.0, 29.9]) | st.floats(0, 1e6)),
                kind=draw(st.sampled_from([ProductKind.BUSINESS] * 3 + list(ProductKind))),
                channels=draw(
                    st.sampled_from([frozenset(CHANNEL_IDS)] * 2 + [frozenset()])
                    | st.frozensets(st.sampled_from(CHANNEL_IDS), min_size=1)
                ),
                eligibility=draw(eligibility()),
                requires=requires,
                requires_any=requires_any,
                conflicts=subset(draw, others, 2) if "conflicts" in related else frozenset(),
                upgrades=subset(draw, earlier, 2) if "upgrades" in related else frozenset(),
                **draw(priorities()),
            )
        )
    return draw(st.permutations(products))


@st.composite
def contexts(draw, products: list[Product], *, unknown_ids: bool = True) -> RequestContext:
    """Any context over a catalog's ``products``; ``unknown_ids`` lets holdings and product
    name no product. Holdings often meet some business's prerequisites, so that the rules
    checked after them are reached too."""
    ids = sorted(p.id for p in products)
    pool = ids + [UNKNOWN] if unknown_ids else ids
    holdings = set(subset(draw, pool, 3))
    for target in draw(st.lists(st.sampled_from(products), max_size=2)):
        holdings |= target.requires
        if target.requires_any:
            holdings.add(draw(st.sampled_from(sorted(target.requires_any))))
    moment = draw(st.sampled_from(Moment))
    product = draw(st.none() | st.sampled_from(pool))
    if product is None and moment in (Moment.TRANSACTION, Moment.FAILURE):
        product = draw(st.sampled_from(pool))
    return RequestContext(
        customer=Customer(
            id="c",
            value_tier=draw(st.sampled_from(ValueTier)),
            persona=draw(st.none() | st.sampled_from(Persona)),
            lifecycle=draw(st.sampled_from(Lifecycle)),
            tenure_months=draw(TENURES),
            holdings=frozenset(holdings),
        ),
        terminal=draw(
            st.just(Terminal())
            | st.builds(
                Terminal,
                network=st.sampled_from(Network),
                smartphone=st.booleans(),
                os=st.none() | st.sampled_from(OS),
            )
        ),
        channel=Channel(draw(st.sampled_from(CHANNEL_IDS)), slots=100),
        moment=moment,
        product=product,
        failure_reason=draw(st.none() | st.sampled_from(FailureReason))
        if moment is Moment.FAILURE
        else None,
        k=draw(st.none() | st.integers(1, 12)),
    )


# --------------------------------------------------------------------------------------------
# Through the catalog
# --------------------------------------------------------------------------------------------


def mentions(
    products: Mapping[str, Product], p: Product, reason: Exclusion, context: RequestContext
) -> list[str]:
    """What the sentence explaining ``reason`` must name, besides the business itself."""
    customer, terminal, e = context.customer, context.terminal, p.eligibility
    held = sorted(h for h in held_after(context) if h in products)
    match reason:
        case Exclusion.NOT_ORDERABLE:
            return ["query service"]
        case Exclusion.CURRENT_PRODUCT:
            return ["being acted on"]
        case Exclusion.HELD:
            return ["already has"]
        case Exclusion.CONFLICT:  # every holding it clashes with, listed last
            return [
                ", ".join(
                    shown(products[h], context)
                    for h in held
                    if h not in p.upgrades and (h in p.conflicts or p.id in products[h].conflicts)
                )
            ]
        case Exclusion.SUPERSEDED:  # every held upgrade
            return [
                "upgrade",
                ", ".join(
                    shown(products[h], context) for h in held if p.id in products[h].upgrades
                ),
            ]
        case Exclusion.MISSING_PREREQUISITE:  # what is missing, else the choice it needs
            missing = sorted(p.requires - set(held)) or sorted(p.requires_any)
            return [", ".join(shown(products[r], context) for r in missing)]
        case Exclusion.TERMINAL_NETWORK:
            return [e.min_network.value, terminal.network.value]
        case Exclusion.TERMINAL_SMARTPHONE:
            return ["smartphone"]
        case Exclusion.TERMINAL_OS:
            return [terminal.os.value if terminal.os else "this OS"]
        case Exclusion.CHANNEL:
            return [context.channel.id]
        case Exclusion.CUSTOMER_TIER:
            return [customer.value_tier.value]
        case Exclusion.CUSTOMER_PERSONA:
            return ["persona"]
        case Exclusion.CUSTOMER_LIFECYCLE:
            return [customer.lifecycle.value]
        case Exclusion.CUSTOMER_TENURE:
            return [f"{e.min_tenure_months} months", f"has {customer.tenure_months}"]
    raise AssertionError(reason)


def assert_exclusions_match(
    catalog: Catalog, products: Mapping[str, Product], context: RequestContext
) -> None:
    codes = catalog.exclusions(context)
    assert codes.shape == (len(products),) and codes.dtype.kind == "i"  # Exclusion values
    for pid, p in products.items():
        got = Exclusion(int(codes[catalog.index[pid]]))
        assert got is first_reason(products, p, context), (pid, context)
        if got is not Exclusion.OK:
            # Every exclusion is explained in words, naming what stands in the way.
            sentence = catalog.explain(pid, got, context)
            assert f"({got.code})" not in sentence, sentence  # not the generic fallback
            if got is not Exclusion.SUPERSEDED:  # "the customer already holds its upgrade X"
                assert shown(p, context) in sentence, sentence
            for word in mentions(products, p, got, context):
                assert word in sentence, (word, sentence)


@PROPERTY
@given(products=catalogs(), data=st.data())
def test_exclusions_are_the_documented_rules(products: list[Product], data) -> None:
    catalog = Catalog(products)
    by_id = {p.id: p for p in products}
    for p in products:
        assert catalog[p.id] is p and catalog.get(p.id) is p and p.id in catalog
    assert catalog.get(UNKNOWN) is None and UNKNOWN not in catalog
    with pytest.raises(UnknownProductError) as unknown:
        catalog[UNKNOWN]
    assert unknown.value.product_id == UNKNOWN
    for _ in range(4):
        assert_exclusions_match(catalog, by_id, data.draw(contexts(products)))


@PROPERTY
@given(products=catalogs(max_products=6), data=st.data())
def test_a_catalog_read_back_from_its_data_excludes_the_same(products: list[Product], data) -> None:
    catalog = Catalog(products)
    again = Catalog.from_dict(catalog.to_dict())
    assert again.products == catalog.products
    context = data.draw(contexts(products))
    assert catalog.exclusions(context).tolist() == again.exclusions(context).tolist()


# --------------------------------------------------------------------------------------------
# Through the engine, with a third-party strategy that proposes every product
# --------------------------------------------------------------------------------------------


class EveryProduct(Strategy):
    """Proposes every product of the catalog, query services included, all with score 1.

    The engine has no store, so it has no contact history and the contact policy holds
    nothing back: what it removes is eligibility's doing alone.
    """

    name = "every_product"

    def __init__(self, catalog: Catalog):
        self.catalog = catalog

    def candidates(self, context: RequestContext, n: int) -> list[Candidate]:
        return [Candidate(p.id, 1.0, "proposed to everyone") for p in self.catalog]


class EveryProductPlugin:
    @hookimpl
    def register_strategies(self, catalog: Catalog) -> list[Strategy]:
        return [EveryProduct(catalog)]


# Budgets no CI machine overruns, room for every product, and only the proposer at each moment.
# A channel allowed to hand off shows on purpose what only another channel transacts: that is
# the hand-off's rule (tests/test_handoff.py), so here no channel hands off.
ENGINE_CONFIG = Config.from_dict(
    {
        "engine": {"strategy_timeout_ms": 600_000, "context_timeout_ms": 600_000, "workers": 2},
        "channels": dict.fromkeys(CHANNEL_IDS, 100),
        "blend": {m.value: {"every_product": 1.0} for m in Moment},
        **({"handoff": {"channels": []}} if "handoff" in Config.__dataclass_fields__ else {}),
    }
)
#: The engine checks the order first at a transaction (``Engine.check``).
CHECKS_THE_ORDER = hasattr(Engine, "check")


def order_check(products: Mapping[str, Product], context: RequestContext) -> Exclusion:
    """Why ordering ``context.product`` would fail: the rules as the customer looking at it
    would meet them, the calling channel included (OK: the order goes through)."""
    look = context.evolve(moment=Moment.QUERY, product=None, failure_reason=None)
    return first_reason(products, products[context.product], look)


def served_as(products: Mapping[str, Product], context: RequestContext) -> RequestContext:
    """The context whose eligible businesses the engine serves: at a transaction whose order
    will fail, the failure that follows (the business is not held, so what needs it is not
    offered and what conflicts with it is); otherwise the request's own."""
    if (
        CHECKS_THE_ORDER
        and context.moment is Moment.TRANSACTION
        and order_check(products, context) is not Exclusion.OK
    ):
        return context.evolve(moment=Moment.FAILURE)
    return context


def engine_over(catalog: Catalog) -> Engine:
    pm = make_plugin_manager(
        extra_plugins=[("every-product", EveryProductPlugin())],
        load_entry_points=False,
        allow=["eligibility", "channels", "every-product"],
    )
    return Engine(catalog, ENGINE_CONFIG, plugin_manager=pm)


def as_request(context: RequestContext) -> RecommendationRequest:
    """What a channel would send for this context: inline attributes, defaults left out."""
    customer, terminal = context.customer, context.terminal
    inline: dict = {"holdings": sorted(customer.holdings)}
    for key, value in (
        ("value_tier", customer.value_tier),
        ("persona", customer.persona),
        ("lifecycle", customer.lifecycle),
        ("tenure_months", customer.tenure_months),
    ):
        if value != getattr(Customer("x"), key):
            inline[key] = value if isinstance(value, int) else str(value)
    device = {
        key: getattr(terminal, key)
        for key in ("network", "smartphone", "os")
        if getattr(terminal, key) != getattr(Terminal(), key)
    }
    return RecommendationRequest(
        customer_id=customer.id,
        channel=context.channel.id,
        moment=context.moment.value,
        product=context.product,
        k=context.k,
        customer=inline,
        terminal=device,
        failure_reason=None if context.failure_reason is None else str(context.failure_reason),
    )


@ENGINE_PROPERTY
@given(products=catalogs(), data=st.data())
def test_the_engine_serves_exactly_the_eligible_businesses(products: list[Product], data) -> None:
    catalog = Catalog(products)
    by_id = {p.id: p for p in products}
    with engine_over(catalog) as engine:
        for _ in range(3):
            context = data.draw(contexts(products, unknown_ids=False))
            serving = served_as(by_id, context)
            reasons = {pid: first_reason(by_id, p, serving) for pid, p in by_id.items()}
            eligible = {pid for pid, r in reasons.items() if r is Exclusion.OK}

            result = engine.recommend(context, debug=True)
            assert not result.errors, result.errors
            served = [s.product for s in result.suggestions]
            # Only eligible businesses, none twice, as many as the slots allow (which of them
            # win the slots is arbitration's business, not eligibility's).
            assert len(set(served)) == len(served) and set(served) <= eligible
            assert len(served) == min(context.limit, len(eligible))
            assert {e.product: e.code for e in result.excluded} == {
                pid: r.code for pid, r in reasons.items() if r is not Exclusion.OK
            }
            assert all(e.detail for e in result.excluded)
            if CHECKS_THE_ORDER and context.moment is Moment.TRANSACTION:
                why = order_check(by_id, context)
                assert result.check.will_succeed is (why is Exclusion.OK)
                assert result.check.reason == (None if why is Exclusion.OK else why.code)
                assert [s.product for s in result.check.alternatives] == (
                    [] if why is Exclusion.OK else served
                )
            if context.moment is Moment.FAILURE:
                # Why the order failed: the rules as they stand without the failed business.
                before = context.evolve(moment=Moment.QUERY, product=None, failure_reason=None)
                why = first_reason(by_id, by_id[context.product], before)
                if why is Exclusion.OK:
                    assert result.explanation is None
                else:
                    assert result.explanation is not None
                    assert result.explanation.code == why.code

            # The same customer and terminal sent inline, the way a channel calls.
            again = engine.recommend(as_request(context))
            assert [s.product for s in again.suggestions] == served


#: The same engine with the default hand-offs: the hotline and the SMS hall may show what
#: only another channel transacts, preferring the app, then the store.
HANDOFF_CONFIG = Config.from_dict(
    {key: value for key, value in ENGINE_CONFIG.raw.items() if key != "handoff"}
)
SMARTPHONE_ONLY = frozenset({"app", "wechat"})
PREFER = ("app", "store", "hotline", "web", "wechat", "sms")


@ENGINE_PROPERTY
@given(products=catalogs(), data=st.data())
def test_hand_offs_only_carry_businesses_the_customer_can_take_elsewhere(
        products: list[Product], data) -> None:
    """A suggestion shown where it cannot be ordered is one the customer can take on the
    channel its hand-off names: on a channel allowed to hand off, the only rule relaxed is
    the calling channel's own."""
    catalog = Catalog(products)
    by_id = {p.id: p for p in products}
    pm = make_plugin_manager(extra_plugins=[("every-product", EveryProductPlugin())],
                             load_entry_points=False,
                             allow=["eligibility", "channels", "every-product"])
    with Engine(catalog, HANDOFF_CONFIG, plugin_manager=pm) as engine:
        for _ in range(3):
            context = data.draw(contexts(products, unknown_ids=False))
            serving = served_as(by_id, context)
            result = engine.recommend(context)
            assert not result.errors, result.errors
            calling = context.channel.id
            for s in result.suggestions:
                p = by_id[s.product]
                sells = [c for c in CHANNEL_IDS if c in p.channels]
                assert list(s.order_channels) == sells, s
                if calling in p.channels:
                    assert s.handoff is None, s
                    assert first_reason(by_id, p, serving) is Exclusion.OK, s
                    continue
                # Shown here, ordered there: only where hand-offs are allowed, never to a
                # channel a feature phone cannot reach, and eligible on that channel.
                assert calling in ("hotline", "sms") and s.handoff is not None, s
                reachable = [c for c in PREFER if c in p.channels and (
                    context.terminal.smartphone or c not in SMARTPHONE_ONLY)]
                assert s.handoff.channel == reachable[0], (s, reachable)
                there = serving.evolve(channel=Channel(s.handoff.channel, slots=100))
                assert first_reason(by_id, p, there) is Exclusion.OK, s


# --------------------------------------------------------------------------------------------
# Pinned: each of these bugs once passed every test (issue 19)
# --------------------------------------------------------------------------------------------


def catalog_of(*products: Product) -> Catalog:
    return Catalog(products)


def context_for(
    holdings=(),
    *,
    os: OS | None = None,
    persona: Persona | None = None,
    moment: Moment = Moment.QUERY,
    product: str | None = None,
) -> RequestContext:
    return RequestContext(
        customer=Customer("c", persona=persona, holdings=frozenset(holdings)),
        terminal=Terminal(os=os),
        channel=Channel("app", slots=9),
        moment=moment,
        product=product,
    )


@pytest.mark.parametrize("allowed", [{OS.ANDROID}, {OS.IOS}, {OS.ANDROID, OS.IOS}, set(OS)])
def test_a_terminal_with_an_unknown_os_meets_no_os_condition(allowed: set[OS]) -> None:
    """``os_bit = 0 if terminal.os is None``: an unknown OS (the default) matches no OS list."""
    catalog = catalog_of(
        Product("app_only", "App", "vip", eligibility=Eligibility(os=frozenset(allowed)))
    )
    assert Terminal().os is None  # the terminal a channel gets when it sends none
    assert catalog.exclusions(context_for()).tolist() == [Exclusion.TERMINAL_OS]
    for system in allowed:
        assert catalog.exclusions(context_for(os=system)).tolist() == [Exclusion.OK]


@pytest.mark.parametrize("allowed", [{Persona.DATA}, {Persona.VOICE, Persona.DATA}, set(Persona)])
def test_a_customer_without_a_persona_meets_no_persona_condition(allowed: set[Persona]) -> None:
    """``bit = 0 if value is None`` in the customer checks: no persona matches no list."""
    catalog = catalog_of(
        Product("data_gift", "Gift", "vip", eligibility=Eligibility(personas=frozenset(allowed)))
    )
    assert catalog.exclusions(context_for()).tolist() == [Exclusion.CUSTOMER_PERSONA]
    for persona in allowed:
        assert catalog.exclusions(context_for(persona=persona)).tolist() == [Exclusion.OK]


@pytest.mark.parametrize("n_required", [2, 3, 4])
def test_every_prerequisite_is_needed_not_just_one(n_required: int) -> None:
    """``matrix.data[:] = 1.0``: a business that requires A and B needs both, not either."""
    bases = [Product(f"base{i}", f"Base {i}", "plan") for i in range(n_required)]
    needy = Product("addon", "Add-on", "data", requires=frozenset(b.id for b in bases))
    catalog = catalog_of(*bases, needy)
    at = catalog.index["addon"]
    for held in range(n_required):
        codes = catalog.exclusions(context_for([b.id for b in bases[:held]]))
        assert codes[at] == Exclusion.MISSING_PREREQUISITE, held
        codes = catalog.exclusions(context_for([b.id for b in bases[1 : held + 1]]))
        assert codes[at] == Exclusion.MISSING_PREREQUISITE, held
    assert catalog.exclusions(context_for([b.id for b in bases]))[at] == Exclusion.OK
    # The business being ordered counts as held while ordering, not after a failure.
    ordering = context_for([b.id for b in bases[1:]], moment=Moment.TRANSACTION, product="base0")
    assert catalog.exclusions(ordering)[at] == Exclusion.OK
    failed = context_for([b.id for b in bases[1:]], moment=Moment.FAILURE, product="base0")
    assert catalog.exclusions(failed)[at] == Exclusion.MISSING_PREREQUISITE


def test_explanations_list_every_holding_and_prerequisite_by_name() -> None:
    base = Product("base", "Base", "plan")
    catalog = catalog_of(
        base,
        Product("up1", "Up 1", "plan", upgrades=frozenset({"base"})),
        Product("up2", "Up 2", "plan", upgrades=frozenset({"base"})),
        Product("rival", "Rival", "plan", conflicts=frozenset({"up1", "up2"})),
        Product("combo", "Combo", "data", requires=frozenset({"base", "up1", "up2"})),
        Product("app_only", "App", "vip", eligibility=Eligibility(os=frozenset({OS.IOS}))),
    )
    holding = context_for(["up1", "up2"])
    assert (
        catalog.explain("base", Exclusion.SUPERSEDED, holding)
        == "the customer already holds its upgrade Up 1, Up 2"
    )
    assert (
        catalog.explain("rival", Exclusion.CONFLICT, holding)
        == "Rival conflicts with held Up 1, Up 2"
    )
    assert (
        catalog.explain("combo", Exclusion.MISSING_PREREQUISITE, context_for())
        == "Combo needs Base, Up 1, Up 2"
    )
    assert (
        catalog.explain("app_only", Exclusion.TERMINAL_OS, context_for())
        == "App is not available on this OS"
    )


def test_the_engine_offers_nothing_os_or_persona_bound_to_an_unknown_customer() -> None:
    catalog = catalog_of(
        Product("android_pack", "Android", "vip", eligibility=Eligibility(os=frozenset(OS))),
        Product("data_gift", "Gift", "vip", eligibility=Eligibility(personas=frozenset(Persona))),
        Product("base_a", "A", "plan"),
        Product("base_b", "B", "plan"),
        Product("combo", "A+B", "data", requires=frozenset({"base_a", "base_b"})),
        Product("plain", "Plain", "data"),
    )
    with engine_over(catalog) as engine:
        result = engine.recommend(
            RecommendationRequest(
                "walk-in", "app", "query", customer={"holdings": ["base_a"]}, debug=True
            )
        )
        assert sorted(s.product for s in result.suggestions) == ["base_b", "plain"]
        assert {e.product: e.code for e in result.excluded} == {
            "android_pack": "terminal_os",
            "data_gift": "customer_persona",
            "base_a": "held",
            "combo": "missing_prerequisite",
        }


def test_codes_a_caller_changes_do_not_reach_the_next_call() -> None:
    """The last requests' codes are kept (a request asks up to three times): each call gets
    its own array, and the business being acted on is marked per call."""
    plan = Product("plan", "Plan", "plan")
    addon = Product("addon", "Addon", "addon", requires=frozenset({"plan"}))
    catalog = catalog_of(plan, addon)
    context = context_for(["plan"])
    first = catalog.exclusions(context)
    first[:] = Exclusion.CHANNEL
    assert catalog.exclusions(context).tolist() == [Exclusion.HELD, Exclusion.OK]
    acting = context_for(["plan"], moment=Moment.FAILURE, product="addon")
    assert catalog.exclusions(acting).tolist() == [Exclusion.HELD, Exclusion.CURRENT_PRODUCT]
    assert catalog.exclusions(context).tolist() == [Exclusion.HELD, Exclusion.OK]
    assert catalog.exclusions(context_for()).tolist() == [
        Exclusion.OK, Exclusion.MISSING_PREREQUISITE]


def test_the_codes_kept_stay_bounded() -> None:
    """A million customers, each a new holdings set, do not grow what is kept."""
    from recommender.catalog import RECENT_EXCLUSIONS

    products = [Product(f"p{i}", f"P{i}", "c") for i in range(12)]
    catalog = catalog_of(*products)
    for i in range(3 * RECENT_EXCLUSIONS):
        held = [p.id for j, p in enumerate(products) if i >> j & 1]
        codes = catalog.exclusions(context_for(held))
        assert [int(codes[catalog.index[h]]) for h in held] == [Exclusion.HELD] * len(held)
        assert len(catalog._recent) <= RECENT_EXCLUSIONS
