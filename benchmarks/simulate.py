"""Closed loop: simulated customers answer the engine's suggestions, round after round.

Four configurations run on identical copies of the sample operator (generated and trained
once, cached in --work) with the same random numbers: the static blend (today's default), the
adaptive strategy added to the blend, and the same two with the contact policy's caps set
(where the caps, not the ranking, bound how many suggestions are shown). Each
round is a simulated day of requests over random customers, channels (each customer's habit)
and moments, served by the real engine (``Workspace.engine``, its ``clock`` set to the
simulated time, so the policy's windows apply); every suggestion shown is reported as an
impression and answered by the customer, accepted with a hidden probability, otherwise
sometimes dismissed, through ``Engine.record_feedback``. An accepted business (and a business
ordered at the transaction moment) becomes a holding. The models are not retrained during the
run; the adaptive strategy learns from the feedback as it arrives.

    python benchmarks/simulate.py                     # the published figures (BENCHMARKS.md 6)
    python benchmarks/simulate.py --quick             # CI smoke test
    python benchmarks/simulate.py --seed 3 --only "static blend" --only adaptive
    python benchmarks/simulate.py --adaptive-weight 0.5 --adaptive segment=none   # investigate
    python benchmarks/simulate.py --trend messaging_app=0.25     # a taste the models never saw

Hidden from the engine, each customer has an acceptance probability per business: the planted
patterns of ``recommender/sampledata.py`` (travellers and the international packs, 5G phones on
the 4G plan and the upgrade pack, data personas and data packs, families, students...) at the
generator's own rates, 1% for any other business (0 for services), times a hidden per customer
x business factor (log-normal, mean 1). It depends on the customer and the business, not on
the channel or the moment.

Per request, the oracle shows the customer's best eligible businesses (``Catalog.exclusions``
of the request) by that probability, as many as the channel has slots; the policy oracle does
the same within what the run's contact policy allows at that moment, given what was shown
and refused before (the best any ranking could get through the policy). Regret is an oracle's
expected accepts minus those of what was shown. Policy violations are counted here, from the
simulated log, never from the engine's decisions, with the capped runs' settings for every
run: a business shown while the customer's refusals suppress it, and each marketing
suggestion beyond a cap (the failure moment is exempt, as in the policy).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
import tomllib
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DAY = 86400
WEEK = 7 * DAY
#: Any business a customer can take and fits no planted pattern of, when offered.
BACKGROUND = 0.01
#: Spread of the hidden per customer x business factor (sigma of its logarithm).
NOISE_SIGMA = 0.5
#: Highest acceptance probability of any offer.
MAX_P = 0.9
#: Chance a customer who does not accept a suggestion dismisses it ("not interested").
DISMISS = 0.25
#: Seconds after the request a dismissal / an accept is reported.
DISMISS_DELAY, ACCEPT_DELAY = 5, 30
MOMENT_MIX = (("query", 0.4), ("transaction", 0.2), ("success", 0.3), ("failure", 0.1))
QUERIES = ("balance_query", "bill_query", "points_query")
#: The contact policy's caps in the third configuration (and for counting violations).
CAPS = {"max_per_channel_day": 3, "max_per_business_week": 2}
CONFIG_NAMES = ("static blend", "adaptive", "static blend + caps", "adaptive + caps")


# -- the hidden truth ---------------------------------------------------------------------------

def planted(catalog: Any, customer: Any, terminal: Any, holdings: frozenset[str],
            trend: Mapping[str, float] | None = None) -> np.ndarray:
    """Acceptance probability per business (before the hidden factor), from the planted
    patterns of ``recommender/sampledata.py`` at the generator's own rates; 0 for a service
    (a SIM replacement or a suspension is not an offer anyone takes up).

    ``trend`` (off by default) raises businesses to a rate for everyone: a change of taste the
    trained models cannot know, for the ``--trend`` scenario.
    """
    from recommender.catalog import ProductKind

    p = np.array([0.0 if b.kind is ProductKind.SERVICE else BACKGROUND for b in catalog])
    index = catalog.index

    def fits(name: str, rate: float) -> None:
        if name in index:
            p[index[name]] = max(p[index[name]], rate)

    tags, persona = customer.tags, customer.persona
    persona = persona.value if persona is not None else None
    if "traveller" in tags:
        fits("intl_roaming", 0.4)
    if "intl_roaming" in holdings:
        for name, rate in (("intl_data_daypass", 0.55), ("intl_sms", 0.4), ("intl_ld", 0.3)):
            fits(name, rate)
    if "intl_ld" in holdings:
        fits("intl_ld_pack", 0.5)
    if terminal.network.value == "5G" and "plan_4g" in holdings:
        fits("upgrade_5g", 0.55)
    if persona == "data":
        fits("data_20gb", 0.25)
        fits("data_5gb", 0.3)
    if persona == "price":
        fits("data_daypass", 0.4)
    if "broadband" in holdings:
        fits("broadband_speedup", 0.4)
    if "family" in tags:
        fits("family_share", 0.35)
        fits("two_cities_family", 0.25)
    if "student" in tags:
        fits("video_membership", 0.35)
        fits("music_membership", 0.25)
    if persona == "product":
        fits("cloud_storage", 0.3)
    for name, rate in (("top_up", 0.3), ("points_redemption", 0.08), ("caller_id", 0.05),
                       ("ringback_tone", 0.04), ("music_membership", 0.03),
                       ("data_1gb", 0.03)):
        fits(name, rate)
    for name, rate in (trend or {}).items():
        fits(name, rate)
    return p


@dataclass
class Person:
    """A simulated customer: what the store says, plus what only the simulator knows."""

    id: str
    customer: Any
    terminal: Any
    habit: np.ndarray     # channel preference (sampledata's, by terminal kind)
    factor: np.ndarray    # hidden per-business multiplier of the acceptance probability


def people(store: Any, catalog: Any, active: int, seed: int) -> list[Person]:
    """``active`` customers drawn from the store, with their hidden factors (seeded)."""
    from recommender.sampledata import FEATURE_PREFERENCE, SMART_PREFERENCE

    rng = np.random.default_rng([seed, 1])
    ids = store.customer_ids()
    chosen = sorted(rng.choice(len(ids), size=min(active, len(ids)), replace=False).tolist())
    factors = np.exp(rng.normal(-NOISE_SIGMA ** 2 / 2, NOISE_SIGMA, (len(chosen), len(catalog))))
    out = []
    for i, position in enumerate(chosen):
        cid = ids[position]
        terminal = store.terminal(cid)
        habit = SMART_PREFERENCE if terminal.smartphone else FEATURE_PREFERENCE
        out.append(Person(cid, store.customer(cid), terminal, habit / habit.sum(), factors[i]))
    return out


# -- the policy, checked independently ----------------------------------------------------------

@dataclass
class PolicyAudit:
    """Counts what the contact policy forbids, from the simulated log alone (the engine's
    own decisions are not consulted): shown while suppressed by refusals, and marketing
    suggestions beyond a cap. Windows are rolling, as the policy's are."""

    dismissals: int
    window: float
    cool_off: float
    max_per_channel_day: int
    max_per_channel_week: int
    max_per_business_week: int
    exempt_moments: frozenset[str]
    dnd_tags: frozenset[str]
    refused: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    contacts: dict[str, list[tuple[int, str, str]]] = field(
        default_factory=lambda: defaultdict(list))
    violations: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("suppressed", "channel_day_cap", "channel_week_cap", "business_week_cap",
         "do_not_disturb"), 0))

    @classmethod
    def from_config(cls, raw: Mapping[str, Any]) -> PolicyAudit:
        table = raw.get("contact_policy", {})
        return cls(dismissals=table.get("dismissals", 2),
                   window=table.get("dismissal_window_days", 30) * DAY,
                   cool_off=table.get("cool_off_days", 30) * DAY,
                   max_per_channel_day=table.get("max_per_channel_day", 0),
                   max_per_channel_week=table.get("max_per_channel_week", 0),
                   max_per_business_week=table.get("max_per_business_week", 0),
                   exempt_moments=frozenset(table.get("exempt_moments", ["failure"])),
                   dnd_tags=frozenset(table.get("do_not_disturb_tags", ["dnd"])))

    def refusal(self, customer: str, product: str, ts: int) -> None:
        self.refused[(customer, product)].append(ts)

    def suppressed(self, customer: str, product: str, now: int) -> bool:
        n = self.dismissals
        times = sorted(t for t in self.refused.get((customer, product), ()) if t <= now)
        return n > 0 and any(times[i] - times[i - n + 1] <= self.window
                             and now - times[i] < self.cool_off
                             for i in range(n - 1, len(times)))

    def allowed(self, person: Person, channel: str, moment: str, now: int,
                ranked: list[str], service: Mapping[str, bool], limit: int) -> list[str]:
        """The first of ``ranked`` that these settings allow together now, at most ``limit``:
        nothing suppressed by refusals, no marketing to a do-not-disturb customer, no business
        over its weekly cap, no more marketing suggestions than the channel caps leave. With
        ``ranked`` best first, the best answer any ranking could get through the policy."""
        if moment in self.exempt_moments:
            return ranked[:limit]
        quiet = bool(self.dnd_tags & person.customer.tags)
        recent = [(ts, p, c) for ts, p, c in self.contacts.get(person.id, ()) if now - ts < WEEK]
        budget = limit
        for cap, seen in ((self.max_per_channel_day,
                           sum(1 for ts, _, c in recent if c == channel and now - ts < DAY)),
                          (self.max_per_channel_week,
                           sum(1 for _, _, c in recent if c == channel))):
            if cap:
                budget = min(budget, max(0, cap - seen))
        kept, marketing = [], 0
        for product in ranked:
            if len(kept) >= limit:
                break
            if self.suppressed(person.id, product, now):
                continue
            if not service[product]:
                same = sum(1 for _, p, _ in recent if p == product)
                if quiet or marketing >= budget or (
                        self.max_per_business_week and same >= self.max_per_business_week):
                    continue
                marketing += 1
            kept.append(product)
        return kept

    def shown(self, person: Person, channel: str, moment: str, now: int,
              products: list[str], service: Mapping[str, bool]) -> None:
        """Check and log one request's suggestions, in the order shown."""
        if moment in self.exempt_moments:
            return
        log = self.contacts[person.id]
        for product in products:
            if self.suppressed(person.id, product, now):
                self.violations["suppressed"] += 1
            if service[product]:
                continue
            if self.dnd_tags & person.customer.tags:
                self.violations["do_not_disturb"] += 1
            recent = [(ts, p, c) for ts, p, c in log if now - ts < WEEK]
            day = sum(1 for ts, _, c in recent if c == channel and now - ts < DAY)
            week = sum(1 for _, _, c in recent if c == channel)
            same = sum(1 for _, p, _ in recent if p == product)
            for cap, seen, rule in ((self.max_per_channel_day, day, "channel_day_cap"),
                                    (self.max_per_channel_week, week, "channel_week_cap"),
                                    (self.max_per_business_week, same, "business_week_cap")):
                if cap and seen >= cap:
                    self.violations[rule] += 1
            log.append((now, product, channel))
        self.contacts[person.id] = [c for c in log if now - c[0] < WEEK]


# -- the workspaces -----------------------------------------------------------------------------

def build_base(root: Path, customers: int, seed: int, log: Callable[[str], None]) -> Path:
    """The sample operator, generated and trained once (cached: reused when complete)."""
    from recommender import sampledata
    from recommender.workspace import Workspace

    done = root / ".complete"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    sampledata.write_workspace_files(root)
    ws = Workspace(root)
    with ws.store() as store:
        counts = sampledata.generate(store, ws.catalog(), customers=customers, seed=seed)
    log(f"generated {counts}")
    ws.train()
    done.write_text("ok\n")
    return root


def configs(base: Mapping[str, Any], weight: float, mode: str,
            adaptive_settings: Mapping[str, Any], moments: frozenset[str] | None = None
            ) -> dict[str, dict[str, Any]]:
    """The four configurations, as config.toml data built from the sample's: adaptive is
    added at ``weight`` to every blend table (of ``moments``, default all) or, in "replace"
    mode, takes popularity's place and weight."""
    import copy

    static = copy.deepcopy(dict(base))
    # The same generous time budget in every run, so a busy machine never drops a strategy
    # from one run and not another: the comparison is of rankings, not of latency.
    static.setdefault("engine", {}).update(strategy_timeout_ms=5000, context_timeout_ms=5000)
    # Suggestions only where they can be ordered: the simulated customer answers on the
    # channel that asked (hand-offs are measured in bench_journeys.py, not here).
    static.setdefault("handoff", {})["channels"] = []
    adaptive = copy.deepcopy(static)
    for weights in _weight_tables(adaptive["blend"], moments):
        if mode == "replace":
            if "popularity" in weights:
                weights["adaptive"] = weights.pop("popularity")
        else:
            weights["adaptive"] = weight
    if adaptive_settings:
        adaptive.setdefault("strategies", {}).setdefault("adaptive", {}).update(
            adaptive_settings)
    capped_static, capped = copy.deepcopy(static), copy.deepcopy(adaptive)
    for data in (capped_static, capped):
        data.setdefault("contact_policy", {}).update(CAPS)
    return dict(zip(CONFIG_NAMES, (static, adaptive, capped_static, capped), strict=True))


def _weight_tables(blend: dict[str, Any], moments: frozenset[str] | None = None
                   ) -> list[dict[str, Any]]:
    """Every table of strategy weights in a [blend] (of ``moments``, default all): per moment
    and per channel override."""
    tables = []
    for moment, weights in blend.items():
        if moments is not None and moment not in moments:
            continue
        tables.append(weights)
        tables.extend(v for v in weights.values() if isinstance(v, dict))
    return tables


def to_toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """Enough TOML for a config.toml: tables of strings, numbers, booleans and lists."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {v!r} as TOML")

    scalars = {k: v for k, v in data.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in data.items() if isinstance(v, Mapping)}
    lines = []
    if prefix and (scalars or not tables):
        lines.append(f"\n[{prefix}]")
    lines += [f"{k} = {value(v)}" for k, v in scalars.items()]
    for k, v in tables.items():
        lines.append(to_toml(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(lines).lstrip("\n") + ("\n" if not prefix else "")


# -- one run ------------------------------------------------------------------------------------

@dataclass
class Plan:
    rounds: int
    requests: int
    active: int
    seed: int
    start: int
    trend: dict[str, float] = field(default_factory=dict)


def run(root: Path, plan: Plan, audit: PolicyAudit, log: Callable[[str], None]) -> dict:
    """Serve ``plan`` through the engine of the workspace ``root`` (changed as it goes:
    feedback, contacts and the holdings customers take)."""
    from recommender import CHANNEL_IDS, Channel, FeedbackEvent, RecommendationRequest
    from recommender import RequestContext as Context
    from recommender.catalog import ProductKind
    from recommender.sampledata import ONE_OFF
    from recommender.workspace import Workspace

    ws = Workspace(root)
    engine = ws.engine(require_models=True)
    store, catalog, config = engine.store, engine.catalog, engine.config
    # A scratch copy: no fsync per feedback event (durability is not what is measured).
    store.db.execute("PRAGMA synchronous=OFF")
    now = [plan.start]
    engine.clock = lambda: now[0]
    n_products = len(catalog)
    service = {p.id: p.kind is ProductKind.SERVICE for p in catalog}
    marketing = np.array([p.kind is ProductKind.BUSINESS for p in catalog])
    # The run's own policy, to know the best it allows (the audit counts by the capped one's).
    own = PolicyAudit.from_config(config.raw)
    for ts, product, customer in store.db.execute(
            "SELECT ts, product_id, customer_id FROM feedback WHERE action = 'dismiss'"):
        audit.refusal(customer, product, ts)
        own.refusal(customer, product, ts)
    crowd = people(store, catalog, plan.active, plan.seed)
    moments = np.array([m for m, _ in MOMENT_MIX])
    moment_cdf = np.cumsum([w for _, w in MOMENT_MIX])

    def take(person: Person, product: str, ts: int) -> None:
        """The customer now holds ``product`` (what it upgrades or conflicts with goes)."""
        if product in ONE_OFF or service[product]:
            return
        gone = set(catalog[product].upgrades) | set(catalog.conflicts_of(product))
        with store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO holdings VALUES (?, ?, ?)",
                       (person.id, product, ts))
            db.executemany("DELETE FROM holdings WHERE customer_id = ? AND product_id = ?",
                           [(person.id, g) for g in sorted(gone)])

    totals = dict.fromkeys(("requests", "impressions", "accepts", "dismissals", "expected",
                            "oracle", "policy_oracle", "ineligible_shown", "empty",
                            "strategy_errors"), 0.0)
    series = []
    served_ms = []
    # Where the regret is: expected accepts the oracle would get / got from what was shown,
    # per business and per moment.
    by_business = np.zeros((2, n_products))
    by_moment: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for r in range(plan.rounds):
        rng = np.random.default_rng([plan.seed, 2, r])
        who = rng.integers(0, len(crowd), plan.requests)
        offsets = (np.arange(plan.requests) + 0.5 * rng.random(plan.requests)) \
            * (DAY / plan.requests)
        u_channel, u_moment, u_product = rng.random((3, plan.requests))
        answers = np.random.default_rng([plan.seed, 3, r]).random(
            (plan.requests, 2, n_products))
        for j in range(plan.requests):
            person = crowd[int(who[j])]
            t = int(plan.start + r * DAY + offsets[j])
            now[0] = t
            channel_no = min(int(np.searchsorted(np.cumsum(person.habit), u_channel[j],
                                                 side="right")), len(person.habit) - 1)
            channel = Channel(CHANNEL_IDS[channel_no], config.slots[CHANNEL_IDS[channel_no]])
            moment = str(moments[min(int(np.searchsorted(moment_cdf, u_moment[j],
                                                         side="right")), len(moments) - 1)])
            customer = store.customer(person.id)
            base = Context(customer=customer, terminal=person.terminal, channel=channel,
                           moment="query", request_id="plan")
            codes = catalog.exclusions(base)
            product, reason = _subject(moment, codes, customer.holdings, catalog, marketing,
                                       u_product[j], person, plan.trend)
            if product is None:  # nothing to order, held or failed: the customer queries
                moment, product = "query", QUERIES[int(u_product[j] * len(QUERIES))]
            context = Context(customer=customer, terminal=person.terminal, channel=channel,
                              moment=moment, product=product, failure_reason=reason,
                              request_id=f"sim-{r}-{j}")
            # The truth for this request: what the customer may take, and how likely.
            codes = catalog.exclusions(context)
            any_channel = catalog.exclusions(context, channels=False)
            p = np.minimum(MAX_P, planted(catalog, customer, person.terminal,
                                          context.holdings_after, plan.trend) * person.factor)
            p_eligible = np.where(codes == 0, p, 0.0)
            best = np.argsort(-p_eligible, kind="stable")[:context.limit]
            oracle = float(p_eligible[best].sum())
            by_business[0, best] += p_eligible[best]
            # The best this run's contact policy allows now, given what was shown and refused
            # so far.
            ranked = [catalog.ids[b] for b in np.argsort(-p_eligible, kind="stable")
                      if p_eligible[b] > 0]
            allowed = own.allowed(person, channel.id, moment, t, ranked, service,
                                  context.limit)
            totals["policy_oracle"] += float(p_eligible[catalog.indices(allowed)].sum())

            t0 = time.perf_counter()
            result = engine.recommend(RecommendationRequest(
                customer_id=person.id, channel=channel.id, moment=moment, product=product,
                failure_reason=reason, request_id=context.request_id))
            served_ms.append((time.perf_counter() - t0) * 1000)
            totals["strategy_errors"] += len(result.errors)
            shown = [s.product for s in result.suggestions]
            shown_at = catalog.indices(shown)
            by_business[1, shown_at] += p_eligible[shown_at]
            cell = by_moment[moment]
            cell[0] += oracle
            cell[1] += float(p_eligible[shown_at].sum())
            cell[2] += 1
            audit.shown(person, channel.id, moment, t, shown, service)
            own.shown(person, channel.id, moment, t, shown, service)
            totals["requests"] += 1
            totals["oracle"] += oracle
            totals["empty"] += not shown
            took = []
            for s in result.suggestions:
                b = catalog.index[s.product]
                # Not takeable at all, or not here and shown without a way to where it is.
                totals["ineligible_shown"] += int(
                    codes[b] != 0 and (s.handoff is None or any_channel[b] != 0))
                totals["impressions"] += 1
                totals["expected"] += p_eligible[b]
                events = [("impression", t)]
                if answers[j, 0, b] < p_eligible[b]:
                    events.append(("accept", t + ACCEPT_DELAY))
                    totals["accepts"] += 1
                    took.append(s.product)
                elif answers[j, 1, b] < DISMISS:
                    events.append(("dismiss", t + DISMISS_DELAY))
                    totals["dismissals"] += 1
                    audit.refusal(person.id, s.product, t + DISMISS_DELAY)
                    own.refusal(person.id, s.product, t + DISMISS_DELAY)
                for action, ts in events:
                    engine.record_feedback(FeedbackEvent(
                        event_id=f"{context.request_id}-{s.product}-{action}",
                        request_id=context.request_id, product=s.product, action=action,
                        ts=ts, customer_id=person.id, channel=channel.id, moment=moment,
                        strategies=s.strategies))
            if moment == "transaction":  # the order being placed goes through
                take(person, product, t)
            for b in took:
                take(person, b, t + ACCEPT_DELAY)
        series.append({"round": r + 1, "accepts": int(totals["accepts"]),
                       "impressions": int(totals["impressions"]),
                       "expected": round(totals["expected"], 3),
                       "oracle": round(totals["oracle"], 3),
                       "regret": round(totals["oracle"] - totals["expected"], 3),
                       "policy_regret": round(totals["policy_oracle"] - totals["expected"], 3)})
        log(f"  round {r + 1}/{plan.rounds}: {int(totals['accepts'])} accepts, regret "
            f"{totals['oracle'] - totals['expected']:.1f}")
    adaptive = engine.strategies.get("adaptive")
    engine.close()
    store.close()
    served_ms.sort()
    out = {k: (int(v) if k not in ("expected", "oracle", "policy_oracle") else round(v, 3))
           for k, v in totals.items()}
    out.update(
        acceptance_rate=round(out["accepts"] / max(1, out["impressions"]), 5),
        regret=round(totals["oracle"] - totals["expected"], 3),
        policy_regret=round(totals["policy_oracle"] - totals["expected"], 3),
        violations=dict(audit.violations),
        violations_total=sum(audit.violations.values()),
        p50_ms=round(served_ms[len(served_ms) // 2], 3) if served_ms else 0.0,
        by_moment={m: {"requests": c[2], "oracle": round(c[0], 1), "expected": round(c[1], 1),
                       "regret": round(c[0] - c[1], 1)} for m, c in sorted(by_moment.items())},
        by_business=sorted(
            ({"product": catalog.ids[b], "oracle": round(float(by_business[0, b]), 1),
              "expected": round(float(by_business[1, b]), 1),
              "regret": round(float(by_business[0, b] - by_business[1, b]), 1)}
             for b in range(n_products) if by_business[:, b].any()),
            key=lambda row: -row["regret"]),
        rounds=series)
    if adaptive is not None:
        out["adaptive_state"] = {k: v for k, v in adaptive.describe().items()
                                 if k in ("feedback_read", "trials", "accepts",
                                          "unattributed")}
    return out


def _subject(moment: str, codes: np.ndarray, holdings: frozenset[str], catalog: Any,
             marketing: np.ndarray, u: float, person: Person,
             trend: Mapping[str, float]) -> tuple[str | None, str | None]:
    """The business a request is about, and the failure reason: a query service at a query;
    at a transaction, one the customer can take here (likelier the more they want it); after a
    success, one they hold; after a failure, one they cannot take here for a reason of their
    own (not the channel). None when there is none."""
    from recommender import Exclusion as exclusion

    ids = catalog.ids
    if moment == "query":
        return QUERIES[int(u * len(QUERIES))], None
    if moment == "transaction":
        can = np.flatnonzero((codes == 0) & marketing)
        if not len(can):
            return None, None
        want = planted(catalog, person.customer, person.terminal, holdings, trend)[can] \
            * person.factor[can]
        return ids[int(can[min(int(np.searchsorted(np.cumsum(want) / want.sum(), u,
                                                       side="right")), len(can) - 1)])], None
    if moment == "success":
        held = sorted(h for h in holdings if catalog[h].orderable)
        return (held[int(u * len(held))], None) if held else (None, None)
    reasons = {int(exclusion.CONFLICT): "conflict",
               int(exclusion.MISSING_PREREQUISITE): "missing_prerequisite"}
    personal = [int(e) for e in exclusion
                if e.name.startswith(("TERMINAL_", "CUSTOMER_"))] + list(reasons)
    cannot = np.flatnonzero(np.isin(codes, personal) & marketing)
    if not len(cannot):
        return None, None
    b = int(cannot[int(u * len(cannot))])
    return ids[b], reasons.get(int(codes[b]), "not_eligible")


# -- the report ---------------------------------------------------------------------------------

def table(results: list[dict]) -> str:
    head = (f"{'configuration':<19} {'requests':>8} {'impressions':>11} {'accepts':>7} "
            f"{'rate':>6} {'expected':>8} {'oracle':>8} {'regret':>7} {'policy oracle':>13} "
            f"{'its regret':>10} {'violations':>10}  (suppressed / channel-day / "
            f"business-week)")
    lines = [head, "-" * len(head)]
    for r in results:
        v = r["violations"]
        lines.append(
            f"{r['name']:<19} {r['requests']:>8,} {r['impressions']:>11,} {r['accepts']:>7,} "
            f"{r['acceptance_rate']:>6.2%} {r['expected']:>8.1f} {r['oracle']:>8.1f} "
            f"{r['regret']:>7.1f} {r['policy_oracle']:>13.1f} {r['policy_regret']:>10.1f} "
            f"{r['violations_total']:>10,}  ({v['suppressed']} / {v['channel_day_cap']} / "
            f"{v['business_week_cap']})")
    lines.append("expected: accepts expected from what was shown (sum of the hidden "
                 "probabilities); oracle: the best eligible businesses by hidden probability; "
                 "policy oracle: the best of those the run's contact policy allows")
    return "\n".join(lines)


def plot(results: list[dict], path: Path, title: str) -> None:
    """Cumulative accepts, adaptive's difference from the static blend's (with and without
    caps), and cumulative regret (against the oracle, solid; against the policy oracle, dashed), per
    round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4.4))
    by_name = {r["name"]: r for r in results}
    baseline = {"adaptive": "static blend", "adaptive + caps": "static blend + caps"}
    for r in results:
        rounds = [s["round"] for s in r["rounds"]]
        accepts = [s["accepts"] for s in r["rounds"]]
        line, = left.plot(rounds, accepts, label=r["name"])
        static = by_name.get(baseline.get(r["name"], ""))
        if static is not None:
            middle.plot(rounds, [a - s["accepts"] for a, s in
                                 zip(accepts, static["rounds"], strict=True)],
                        color=line.get_color(), label=f"{r['name']} - {static['name']}")
        right.plot(rounds, [s["regret"] for s in r["rounds"]], color=line.get_color(),
                   label=f"{r['name']}: vs the oracle")
        right.plot(rounds, [s["policy_regret"] for s in r["rounds"]], color=line.get_color(),
                   linestyle="--", label=f"{r['name']}: vs the policy oracle")
    left.set(xlabel="round (simulated day)", ylabel="cumulative accepts", title="Acceptances")
    middle.set(xlabel="round (simulated day)", ylabel="cumulative accepts minus the static "
               "blend's", title="Adaptive against the static blend")
    right.set(xlabel="round (simulated day)", ylabel="cumulative expected regret",
              title="Regret")
    for ax in (left, middle, right):
        ax.grid(alpha=0.3)
    left.legend()
    middle.legend()
    right.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000, help="sample operator size")
    parser.add_argument("--active", type=int, default=500,
                        help="customers the simulated requests come from")
    parser.add_argument("--rounds", type=int, default=60, help="simulated days")
    parser.add_argument("--requests", type=int, default=400, help="requests per round")
    parser.add_argument("--seed", type=int, default=7,
                        help="seed of the simulation: customers, requests and answers")
    parser.add_argument("--operator-seed", type=int, default=7,
                        help="seed of the sample operator (7: the quickstart's)")
    parser.add_argument("--adaptive-weight", type=float, default=1.0,
                        help="the adaptive strategy's blend weight at every moment (add mode)")
    parser.add_argument("--adaptive-mode", choices=("add", "replace"), default="add",
                        help="add adaptive to every blend table, or give it popularity's place")
    parser.add_argument("--adaptive", action="append", default=[], metavar="KEY=VALUE",
                        help="a [strategies.adaptive] setting, e.g. prior_trials=5")
    parser.add_argument("--adaptive-moments", default="query,transaction,success,failure",
                        help="moments whose blend tables get adaptive (add mode)")
    parser.add_argument("--trend", action="append", default=[], metavar="BUSINESS=RATE",
                        help="scenario: everyone who can take BUSINESS accepts it at RATE "
                             "at least (a change the trained models have not seen)")
    parser.add_argument("--only", choices=CONFIG_NAMES, action="append",
                        help="run only these configurations")
    parser.add_argument("--work", type=Path, default=Path("/tmp/recommender-bench"))
    parser.add_argument("--plot", type=Path, help="where to draw the figure (default: "
                        "benchmarks/simulation.png; with --quick, in --work)")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.customers, args.active, args.rounds, args.requests = 300, 60, 4, 40
    if args.plot is None:
        args.plot = args.work / "simulation-quick.png" if args.quick else \
            Path(__file__).resolve().parent / "simulation.png"
    if not 1 <= args.requests <= 1000:
        parser.error("--requests must be from 1 to 1000 (requests of a round are spread "
                     "over its day, at least 86 s apart)")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    from recommender.sampledata import DEFAULT_END

    settings = {}
    for item in args.adaptive:
        key, _, raw = item.partition("=")
        if key == "pooling" and raw not in ("true", "false"):
            parser.error(f"--adaptive pooling=true or pooling=false, got {raw!r}")
        settings[key] = raw if key == "segment" else raw == "true" if key == "pooling" \
            else float(raw)
        if key in ("seed", "max_rows_per_refresh"):
            settings[key] = int(settings[key])
    trend = {}
    for item in args.trend:
        name, _, rate = item.partition("=")
        trend[name] = float(rate)
    started = time.perf_counter()
    base = build_base(args.work / f"sim-{args.customers}-{args.operator_seed}", args.customers,
                      args.operator_seed, log)
    with (base / "config.toml").open("rb") as f:
        sample = tomllib.load(f)
    from recommender.workspace import Workspace

    known = set(Workspace(base).catalog().ids)
    for name in trend:
        if name not in known:
            parser.error(f"--trend: unknown business {name!r}")
    moments = frozenset(args.adaptive_moments.split(","))
    if not moments <= set(sample.get("blend", {})):
        parser.error(f"--adaptive-moments: known moments are {', '.join(sample['blend'])}")
    plan = Plan(args.rounds, args.requests, args.active, args.seed, DEFAULT_END, trend)
    results = []
    runs_dir = args.work / f"sim-run-{os.getpid()}"  # scratch copies, one per run
    chosen = configs(sample, args.adaptive_weight, args.adaptive_mode, settings, moments)
    audit_settings = chosen["adaptive + caps"]
    for name, data in chosen.items():
        if args.only and name not in args.only:
            continue
        root = runs_dir / name.replace(" ", "").replace("+", "-")
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(base, root)
        (root / "config.toml").write_text(to_toml(data))
        log(f"{name}: {args.rounds} rounds x {args.requests} requests")
        t0 = time.perf_counter()
        result = run(root, plan, PolicyAudit.from_config(audit_settings), log)
        result.update(name=name, seconds=round(time.perf_counter() - t0, 1),
                      blend={m: w for m, w in data["blend"].items()},
                      contact_policy=data.get("contact_policy", {}))
        results.append(result)
        shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(runs_dir, ignore_errors=True)
    print(f"{args.rounds} rounds x {args.requests} requests over {args.active} of "
          f"{args.customers:,} sample customers (operator seed {args.operator_seed}, "
          f"simulation seed {args.seed}); adaptive "
          f"{args.adaptive_mode} {args.adaptive_weight:g} at {args.adaptive_moments}"
          + (f", {settings}" if settings else "") + f"; caps {CAPS}"
          + (f"; trend {trend}" if trend else ""))
    print(table(results))
    if not args.no_plot and results:
        plot(results, args.plot, f"{args.rounds} simulated days x {args.requests} requests, "
                                 f"seed {args.seed}")
        print(f"plot: {args.plot}")
    if args.json:
        args.json.write_text(json.dumps({
            "settings": {"customers": args.customers, "active": args.active,
                         "rounds": args.rounds, "requests": args.requests, "seed": args.seed,
                         "operator_seed": args.operator_seed,
                         "adaptive_mode": args.adaptive_mode,
                         "adaptive_weight": args.adaptive_weight, "adaptive": settings,
                         "adaptive_moments": args.adaptive_moments, "trend": trend,
                         "caps": CAPS, "background": BACKGROUND, "noise_sigma": NOISE_SIGMA,
                         "dismiss": DISMISS,
                         "seconds": round(time.perf_counter() - started, 1)},
            "results": results}, indent=2, default=_plain))
    return 0


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


if __name__ == "__main__":
    sys.exit(main())
