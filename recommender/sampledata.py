"""A seeded, realistic sample operator with planted, learnable structure.

Customers (value tier, persona, lifecycle, tenure, tags), terminals (5G and 4G smartphones,
feature phones), consistent holdings (one base plan, prerequisites held, nothing the terminal
cannot use) and months of query/transaction/success/failure events. The structure a strategy
should find is planted on purpose:

- holders of international roaming go on to take the international data day-pass, SMS pack
  and long-distance packs;
- 5G-phone owners on the 4G plan take the 5G upgrade pack, often after failing on the new-SIM
  5G plan as not eligible; 4G phones never do;
- data-oriented customers check their data balance and then buy a data pack; price-oriented
  ones buy the day-pass;
- broadband holders add the speed-up; family-tagged customers take family share and two
  cities one family; students take video and music memberships; product-oriented smartphone
  users take cloud storage; customers checking points redeem them.

A month of feedback comes with it (impressions to a fifth of the customers and the clicks,
accepts and dismissals that followed, at planted per-strategy rates), and every impression is
one the engine could have served: a business the customer, as stored, can take with their
terminal on that channel (``Catalog.exclusions``).

Generation is vectorised over customers, in chunks, so a million customers is minutes, not
hours, and a given seed always gives the same store.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .attributes import CATEGORICAL, NUMERIC
from .attributes import encode as encode_attributes
from .catalog import Catalog, ProductKind
from .context import CHANNEL_IDS, Channel, RequestContext, Terminal
from .store import TAG_SEPARATOR, Store
from .training import LIFECYCLES, OSES, PERSONAS, TIERS

DAY = 86400
#: A fixed end of the log so a seed reproduces the same store on any day.
DEFAULT_END = 1_793_491_200  # 2026-11-01T00:00:00Z
CHUNK = 100_000
SAMPLE_FILES = ("catalog.toml", "config.toml", "rules.toml", "events.toml")

#: Businesses taken once (not held afterwards).
ONE_OFF = frozenset({"data_daypass", "intl_data_daypass", "top_up", "phone_purchase",
                     "sim_replacement", "points_redemption"})
DATA_PACKS = ("data_1gb", "data_5gb", "data_20gb")
TAGS = ("traveller", "family", "student", "complaint_prone")
SMART_MODELS = {"android": ("Xiaomi 14", "OPPO Reno11", "vivo X100", "Redmi K70"),
                "ios": ("iPhone 15", "iPhone 14", "iPhone 13"),
                "harmonyos": ("HUAWEI Mate 60", "HUAWEI nova 12")}
FEATURE_MODELS = ("Nokia 105", "Doro 6820", "ZTE F5")

# Channel preferences by terminal kind: smartphone users live in the app; feature-phone users
# use SMS, the hotline and the store, never the app.
SMART_PREFERENCE = np.array([0.55, 0.15, 0.08, 0.0, 0.15, 0.07])
FEATURE_PREFERENCE = np.array([0.0, 0.0, 0.35, 0.5, 0.0, 0.15])


def write_workspace_files(directory: Path) -> None:
    """Copy the packaged sample catalog, config and rules into ``directory``, keeping any the
    folder already has (they may hold an operator's own edits)."""
    directory.mkdir(parents=True, exist_ok=True)
    sample = resources.files("recommender") / "sample"
    for name in SAMPLE_FILES:
        target = directory / name
        if not target.exists():
            with resources.as_file(sample / name) as source:
                shutil.copyfile(source, target)


@dataclass
class _Events:
    """Columns of generated events, appended pattern by pattern."""

    customer: list[np.ndarray]
    product: list[np.ndarray]
    kind: list[np.ndarray]
    ts: list[np.ndarray]
    reason: list[np.ndarray]

    def add(self, customer: np.ndarray, product: int | np.ndarray, kind: str,
            ts: np.ndarray, reason: str = "") -> None:
        n = len(customer)
        self.customer.append(customer)
        self.product.append(np.broadcast_to(np.asarray(product, dtype=np.int64), (n,)).copy())
        self.kind.append(np.full(n, kind, dtype=object))
        self.ts.append(ts.astype(np.int64))
        self.reason.append(np.full(n, reason, dtype=object))

    def arrays(self) -> tuple[np.ndarray, ...]:
        if not self.customer:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0, object), empty, np.empty(0, object)
        return tuple(np.concatenate(c) for c in (self.customer, self.product, self.kind,
                                                 self.ts, self.reason))


def generate(store: Store, catalog: Catalog, *, customers: int = 2000, seed: int = 7,
             months: int = 6, end: int | None = None) -> dict[str, int]:
    """Fill ``store`` with a sample operator; returns the rows written per table."""
    if customers < 1:
        raise ValueError(f"customers must be >= 1, got {customers!r}")
    if months < 1:
        raise ValueError(f"months must be >= 1, got {months!r}")
    needed = {"plan_4g", "plan_5g", "plan_5g_newsim", "upgrade_5g", "balance_query",
              *DATA_PACKS}
    missing = sorted(needed - set(catalog.ids))
    if missing:
        raise ValueError(f"catalog: the sample generator needs business {missing[0]!r}")
    end = DEFAULT_END if end is None else end
    counts = dict.fromkeys(("customers", "terminals", "holdings", "events", "feedback"), 0)
    seeds = np.random.SeedSequence(seed).spawn((customers + CHUNK - 1) // CHUNK)
    # The feedback log draws from its own generator: the other tables do not depend on it.
    feedback_rng = np.random.default_rng(seed + 99)
    store.set_attribute_kinds({**store.attribute_kinds(), **ATTRIBUTE_KINDS})
    with store.transaction() as tx:
        for chunk, chunk_seed in enumerate(seeds):
            first = chunk * CHUNK
            size = min(CHUNK, customers - first)
            rows = _chunk(catalog, np.random.default_rng(chunk_seed), first, size,
                          end - months * 30 * DAY, end)
            for table, table_rows in rows.items():
                counts[table] += store.add_rows(table, table_rows, db=tx)
            # Read back through the store (this transaction's own writes): the impressions
            # are checked against exactly the context the engine will load for the customer.
            counts["feedback"] += store.add_rows(
                "feedback", _feedback(catalog, store, feedback_rng, first, size, end), db=tx)
    return counts


#: Planted online behaviour: (strategy, click rate per impression, accept rate per click).
FEEDBACK_RATES = (("cf", 0.14, 0.35), ("association", 0.18, 0.45),
                  ("cross_sell", 0.12, 0.30), ("popularity", 0.07, 0.25))
#: Moments the sample suggestions were shown at.
FEEDBACK_MOMENTS = ("query", "success")


def _feedback(catalog: Catalog, store: Store, rng: np.random.Generator, first: int, n: int,
              end: int) -> list[tuple]:
    """What the API's feedback log would hold after a month of serving a fifth of the
    customers ``first`` to ``first + n - 1``: impressions, and the clicks, accepts and
    dismissals that followed, with the proposing strategy's rates planted so the online funnel
    has something to show.

    Every impression is one the engine could have served: a marketing business (not a query
    or a service) that ``Catalog.exclusions`` lets this customer take on this channel, given
    the customer, holdings and terminal as stored, on a channel the customer uses (the app,
    web and WeChat halls for a smartphone; SMS, the hotline and the store for a feature
    phone); a customer with no such business anywhere is left out.
    """
    shown = first + rng.choice(n, size=max(1, n // 5), replace=False)
    m = len(shown) * 2
    customer = np.repeat(shown, 2)
    strategy = rng.integers(0, len(FEEDBACK_RATES), m)
    click_rate = np.array([r[1] for r in FEEDBACK_RATES])[strategy]
    accept_rate = np.array([r[2] for r in FEEDBACK_RATES])[strategy]
    clicked = rng.random(m) < click_rate
    accepted = clicked & (rng.random(m) < accept_rate)
    dismissed = ~clicked & (rng.random(m) < 0.2)
    moment = np.array(FEEDBACK_MOMENTS, dtype=object)[rng.integers(0, 2, m)]
    ts = end - rng.integers(0, 30 * DAY, m)
    channel_draw = rng.random(m)
    product_draw = rng.random(m)
    names = np.array([r[0] for r in FEEDBACK_RATES], dtype=object)[strategy]

    marketing = np.array([p.kind is ProductKind.BUSINESS for p in catalog], dtype=bool)
    product = np.empty(m, dtype=object)
    channel = np.empty(m, dtype=object)
    for pair in range(0, m, 2):  # one read of each shown customer, for both requests
        cid = f"C{customer[pair]:07d}"
        person, terminal = store.customer(cid), store.terminal(cid) or Terminal()
        habit = SMART_PREFERENCE if terminal.smartphone else FEATURE_PREFERENCE
        by_preference = [int(c) for c in np.argsort(-habit, kind="stable") if habit[c] > 0]
        cumulative = np.cumsum(habit) / habit.sum()
        # Channel -> the marketing businesses open there (with no business being acted on,
        # the moment does not enter eligibility, so both requests share them).
        takeable: dict[int, np.ndarray] = {}
        for i in (pair, pair + 1):
            primary = min(int(np.searchsorted(cumulative, channel_draw[i], side="right")),
                          len(habit) - 1)
            # The habitual channel first, then the customer's other channels by preference.
            for c in [primary] + [c for c in by_preference if c != primary]:
                if c not in takeable:
                    context = RequestContext(
                        customer=person, terminal=terminal, moment=moment[i],
                        channel=Channel(CHANNEL_IDS[c], 1))
                    takeable[c] = np.flatnonzero((catalog.exclusions(context) == 0)
                                                 & marketing)
                if len(takeable[c]):
                    choice = takeable[c][int(product_draw[i] * len(takeable[c]))]
                    product[i], channel[i] = catalog.ids[int(choice)], CHANNEL_IDS[c]
                    break
    served = np.array([p is not None for p in product], dtype=bool)
    rows = []
    for action, mask, delay in (("impression", served, 0), ("click", clicked, 20),
                                ("accept", accepted, 90), ("dismiss", dismissed, 5)):
        for i in np.flatnonzero(mask & served).tolist():
            key = f"{customer[i]:07d}-{i % 2}"  # each shown customer has two requests
            rows.append((f"sample-{key}-{action}", int(ts[i]) + delay, f"sample-req-{key}",
                         product[i], action, f"C{customer[i]:07d}", channel[i], moment[i],
                         names[i]))
    return rows


def _chunk(catalog: Catalog, rng: np.random.Generator, first: int, n: int, start: int,
           end: int) -> dict[str, list[tuple]]:
    P = catalog.index
    ids = np.array([f"C{i:07d}" for i in range(first, first + n)], dtype=object)

    # -- customers ------------------------------------------------------------------------
    tier = rng.choice(3, n, p=[0.2, 0.5, 0.3])                 # high, mid, low
    persona = rng.choice(len(PERSONAS), n, p=[0.3, 0.2, 0.15, 0.1, 0.15, 0.1])
    lifecycle = rng.choice(len(LIFECYCLES), n, p=[0.1, 0.75, 0.08, 0.07])
    tenure = np.where(lifecycle == 0, rng.integers(0, 4, n), rng.integers(3, 180, n))
    vip = np.where(tier == 0, rng.integers(1, 6, n), np.where(tier == 1, rng.integers(0, 3, n),
                                                                0))
    traveller = rng.random(n) < np.where(tier == 0, 0.2, 0.06)
    family = rng.random(n) < 0.25
    student = (rng.random(n) < 0.12) & (tenure < 60)
    complaint = rng.random(n) < 0.05
    tag_matrix = np.stack([traveller, family, student, complaint], axis=1)

    # -- terminals ------------------------------------------------------------------------
    kind = rng.choice(3, n, p=np.array([0.45, 0.43, 0.12]))   # 5G smart, 4G smart, feature
    kind = np.where((tier == 0) & (kind == 2) & (rng.random(n) < 0.7), 0, kind)
    network = np.where(kind == 0, 5, np.where(kind == 1, 4, rng.choice([2, 3, 4], n,
                                                                       p=[0.2, 0.3, 0.5])))
    smart = kind < 2
    os_code = np.where(smart, rng.choice(3, n, p=[0.6, 0.25, 0.15]), -1)  # android, ios, hos

    # -- eligibility of every business for every customer, from the catalog's arrays ------
    eligible = _eligibility(catalog, network, smart, os_code, tier, persona, lifecycle, tenure)

    # -- holdings at the start of the log ------------------------------------------------
    held = np.zeros((n, len(catalog)), dtype=bool)
    five_g_plan = smart & (network == 5) & (rng.random(n) < 0.5)
    newsim = five_g_plan & eligible[:, P["plan_5g_newsim"]] & (rng.random(n) < 0.3)
    held[:, P["plan_5g_newsim"]] = newsim
    held[:, P["plan_5g"]] = five_g_plan & ~newsim
    held[:, P["plan_4g"]] = ~five_g_plan
    data_persona = persona == PERSONAS.index("data")
    pack = np.where(data_persona, rng.choice(4, n, p=[0.2, 0.1, 0.35, 0.35]),
                    rng.choice(4, n, p=[0.7, 0.15, 0.1, 0.05]))  # none, 1, 5, 20 GB
    for size, name in enumerate(DATA_PACKS, 1):
        held[:, P[name]] = pack == size
    initial = {
        "caller_id": 0.4, "ringback_tone": 0.12, "broadband": 0.3, "one_card_two_numbers": 0.03,
        "address_book": 0.05, "messaging_app": 0.05, "intl_ld": 0.04,
    }
    for name, p in initial.items():
        held[:, P[name]] |= rng.random(n) < p
    held[:, P["intl_roaming"]] |= traveller & (rng.random(n) < 0.5)
    held[:, P["intl_ld"]] |= traveller & (rng.random(n) < 0.2)
    held[:, P["family_share"]] |= family & (rng.random(n) < 0.15)
    held[:, P["video_membership"]] |= student & (rng.random(n) < 0.15)
    held &= eligible

    # -- events ---------------------------------------------------------------------------
    events = _Events([], [], [], [], [])
    span = end - start
    everyone = np.arange(n)

    def at(mask: np.ndarray, lo: float = 0.0, hi: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        who = everyone[mask]
        return who, start + (lo + (hi - lo) * rng.random(len(who))) * span

    def order(who: np.ndarray, name: str, when: np.ndarray) -> None:
        """A transaction a few minutes before a success, both on the same channel."""
        events.add(who, P[name], "transaction", when - rng.integers(60, 900, len(who)))
        events.add(who, P[name], "success", when)
        if name not in ONE_OFF:
            held[who, P[name]] = True

    def later(when: np.ndarray, max_days: float) -> np.ndarray:
        return np.minimum(when + rng.random(len(when)) * max_days * DAY, end - 1)

    def can(name: str) -> np.ndarray:
        return eligible[:, P[name]] & ~held[:, P[name]]

    # International: travellers open roaming, then take the international packs.
    who, when = at(traveller & can("intl_roaming") & (rng.random(n) < 0.4), 0.0, 0.6)
    order(who, "intl_roaming", when)
    roaming = held[:, P["intl_roaming"]]
    roam_time = np.full(n, start, dtype=np.float64)
    roam_time[who] = when
    for name, p in (("intl_data_daypass", 0.55), ("intl_sms", 0.4), ("intl_ld", 0.3)):
        who = everyone[roaming & can(name) & (rng.random(n) < p)]
        order(who, name, later(np.maximum(roam_time[who], start), 30))
    who = everyone[held[:, P["intl_ld"]] & can("intl_ld_pack") & (rng.random(n) < 0.5)]
    order(who, "intl_ld_pack", later(np.full(len(who), start + 0.7 * span), 40))

    # 5G phones on the 4G plan take the upgrade pack, often after failing on the new-SIM plan.
    upgrader = held[:, P["plan_4g"]] & can("upgrade_5g") & (rng.random(n) < 0.55)
    who, when = at(upgrader & ~eligible[:, P["plan_5g_newsim"]] & (rng.random(n) < 0.5))
    events.add(who, P["plan_5g_newsim"], "transaction", when - 600)
    events.add(who, P["plan_5g_newsim"], "failure", when - 300, "not_eligible")
    order(who, "upgrade_5g", when)
    rest = upgrader & ~np.isin(everyone, who)
    who, when = at(rest)
    order(who, "upgrade_5g", when)

    # Data persona: balance queries, then a data pack; price persona: the day-pass.
    price_persona = persona == PERSONAS.index("price")
    for mask, queries in ((data_persona, 6), (price_persona, 3), (~data_persona, 1)):
        reps = rng.poisson(queries, n) * mask
        who = np.repeat(everyone, reps)
        when = start + rng.random(len(who)) * span
        events.add(who, P["balance_query"], "query", when)
    for name, p in (("data_20gb", 0.25), ("data_5gb", 0.3)):
        mask = data_persona & can(name) & (rng.random(n) < p)
        for other in DATA_PACKS:
            mask &= ~held[:, P[other]] | (DATA_PACKS.index(other) < DATA_PACKS.index(name))
        who, when = at(mask, 0.1, 1.0)
        events.add(who, P["balance_query"], "query", when - rng.integers(120, 3600, len(who)))
        order(who, name, when)
        for other in DATA_PACKS[:DATA_PACKS.index(name)]:
            held[who, P[other]] = False
    reps = rng.poisson(1.5, n) * (price_persona & eligible[:, P["data_daypass"]])
    who = np.repeat(everyone, reps)
    when = start + rng.random(len(who)) * span
    events.add(who, P["balance_query"], "query", when - 600)
    order(who, "data_daypass", when)

    # Home and family.
    who, when = at(held[:, P["broadband"]] & can("broadband_speedup") & (rng.random(n) < 0.4))
    order(who, "broadband_speedup", when)
    for name, p in (("family_share", 0.35), ("two_cities_family", 0.25)):
        who, when = at(family & can(name) & (rng.random(n) < p))
        order(who, name, when)
    for name, p in (("video_membership", 0.35), ("music_membership", 0.25)):
        who, when = at(student & can(name) & (rng.random(n) < p))
        order(who, name, when)
    product_persona = persona == PERSONAS.index("product")
    who, when = at(product_persona & can("cloud_storage") & (rng.random(n) < 0.3))
    order(who, "cloud_storage", when)

    # Background: bills, points and small orders anyone may make.
    for name, rate in (("bill_query", 1.5), ("points_query", 0.4)):
        reps = rng.poisson(rate, n)
        who = np.repeat(everyone, reps)
        events.add(who, P[name], "query", start + rng.random(len(who)) * span)
    who, when = at(rng.random(n) < 0.08)
    events.add(who, P["points_query"], "query", when - 300)
    order(who, "points_redemption", when)
    for name, p in (("caller_id", 0.05), ("ringback_tone", 0.04), ("top_up", 0.3),
                    ("music_membership", 0.03), ("data_1gb", 0.03)):
        mask = can(name) & (rng.random(n) < p)
        if name == "data_1gb":
            mask &= ~held[:, [P[d] for d in DATA_PACKS]].any(axis=1)
        who, when = at(mask)
        order(who, name, when)
    # Orders that fail for other reasons and are not retried.
    who, when = at(rng.random(n) < 0.04)
    failed = rng.choice([P[name] for name in ("phone_purchase", "broadband",
                                              "one_card_two_numbers")],
                        len(who))
    events.add(who, failed, "transaction", when - 300)
    events.add(who, failed, "failure", when, "other")

    customer, product, kind_col, ts, reason = events.arrays()
    channel = _channels(catalog, rng, customer, product, smart)

    tier_names = np.array([t.value for t in TIERS], dtype=object)
    persona_names = np.array([p.value for p in PERSONAS], dtype=object)
    life_names = np.array([s.value for s in LIFECYCLES], dtype=object)
    tags = [TAG_SEPARATOR.join(sorted(t for t, on in zip(TAGS, row, strict=True) if on))
            for row in tag_matrix]
    os_names = np.array([o.value for o in OSES] + [None], dtype=object)
    models = _models(rng, os_code, smart)
    net_names = np.array(["", "", "2G", "3G", "4G", "5G"], dtype=object)
    attributes = _attributes(rng, tier, student, traveller, held[:, P["broadband"]])
    hc, hp = np.nonzero(held)
    product_ids = np.array(catalog.ids, dtype=object)
    since = start - rng.integers(0, 365 * DAY, len(hc))
    order_ = np.lexsort((product, ts))
    return {
        "customers": list(zip(ids, tier_names[tier], persona_names[persona],
                              life_names[lifecycle], tenure.tolist(), vip.tolist(), tags,
                              attributes, strict=True)),
        "terminals": list(zip(ids, net_names[network], smart.astype(int).tolist(),
                              os_names[os_code], models, strict=True)),
        "holdings": list(zip(ids[hc], product_ids[hp], since.tolist(), strict=True)),
        "events": list(zip(ts[order_].tolist(), ids[customer[order_]],
                           product_ids[product[order_]], channel[order_],
                           kind_col[order_], [r or None for r in reason[order_]],
                           strict=True)),
    }


#: The sample's customer attributes (``recommender.attributes``) and regions.
REGIONS = ("north", "south", "east", "west", "central")
ATTRIBUTE_KINDS = {"age": NUMERIC, "monthly_spend": NUMERIC, "region": CATEGORICAL}


def _attributes(rng: np.random.Generator, tier: np.ndarray, student: np.ndarray,
                traveller: np.ndarray, broadband: np.ndarray) -> list[str]:
    """Age, monthly spend and region per customer, as stored JSON: they go with what the
    customer does (students are young, travellers older and on the coast, high value spends
    more), so a strategy learning from attributes finds something. Drawn after everything
    else, so the other tables are what they were before customers had attributes."""
    n = len(tier)
    age = np.where(student, rng.integers(18, 26, n), rng.integers(22, 76, n))
    age = np.where(traveller, np.maximum(age, rng.integers(30, 66, n)), age)
    spend = np.array([180.0, 90.0, 40.0])[tier] * rng.lognormal(0.0, 0.3, n) + 30.0 * broadband
    region = rng.choice(len(REGIONS), n, p=[0.2, 0.25, 0.2, 0.15, 0.2])
    region = np.where(traveller & (rng.random(n) < 0.5), REGIONS.index("east"), region)
    return [encode_attributes({"age": float(a), "monthly_spend": round(float(m), 1),
                               "region": REGIONS[r]})
            for a, m, r in zip(age.tolist(), spend.tolist(), region.tolist(), strict=True)]


def _eligibility(catalog: Catalog, network: np.ndarray, smart: np.ndarray,
                 os_code: np.ndarray, tier: np.ndarray, persona: np.ndarray,
                 lifecycle: np.ndarray, tenure: np.ndarray) -> np.ndarray:
    """Customers x products: may this customer hold this business (terminal and segment)?"""
    ok = network[:, None] >= catalog.min_network[None, :]
    ok &= smart[:, None] | ~catalog.needs_smartphone[None, :]
    os_bit = np.where(os_code >= 0, 1 << np.maximum(os_code, 0), 0)
    ok &= (catalog.os_mask[None, :] == 0) | ((catalog.os_mask[None, :] & os_bit[:, None]) != 0)
    for codes, masks in ((tier, catalog.tier_mask), (persona, catalog.persona_mask),
                         (lifecycle, catalog.lifecycle_mask)):
        bit = 1 << codes
        ok &= (masks[None, :] == 0) | ((masks[None, :] & bit[:, None]) != 0)
    ok &= tenure[:, None] >= catalog.min_tenure[None, :]
    ok &= catalog.orderable[None, :]
    return ok


def _channels(catalog: Catalog, rng: np.random.Generator, customer: np.ndarray,
              product: np.ndarray, smart: np.ndarray) -> np.ndarray:
    """A channel per event: the customer's habit, among channels that can transact it."""
    preference = np.where(smart[customer][:, None], SMART_PREFERENCE, FEATURE_PREFERENCE)
    bits = 1 << np.arange(len(CHANNEL_IDS))
    allowed = (catalog.channel_mask[product][:, None] & bits[None, :]) != 0
    # Query services are open on every channel.
    allowed |= ~catalog.orderable[product][:, None]
    weight = preference * allowed
    # Feature phones ordering a store-only business still go to the store.
    weight[weight.sum(axis=1) == 0] = allowed[weight.sum(axis=1) == 0]
    gumbel = -np.log(-np.log(rng.random(weight.shape)))
    choice = np.argmax(np.where(weight > 0, np.log(np.maximum(weight, 1e-12)) + gumbel, -np.inf),
                       axis=1)
    return np.array(CHANNEL_IDS, dtype=object)[choice]


def _models(rng: np.random.Generator, os_code: np.ndarray, smart: np.ndarray) -> list[str]:
    names = list(SMART_MODELS)
    pick = rng.integers(0, 1000, len(os_code))
    out = []
    for code, is_smart, r in zip(os_code.tolist(), smart.tolist(), pick.tolist(), strict=True):
        models = SMART_MODELS[names[code]] if is_smart else FEATURE_MODELS
        out.append(models[r % len(models)])
    return out
