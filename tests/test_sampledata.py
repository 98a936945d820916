"""The sample operator's feedback log is one the engine could have served: every impression is
of a business the stored customer can take, with their terminal, on that channel."""

from __future__ import annotations

from pathlib import Path

from recommender import Channel, Exclusion, RequestContext, sampledata
from recommender.catalog import ProductKind
from recommender.workspace import Workspace


def ineligible_impressions(ws: Workspace) -> tuple[int, list[tuple[str, str, str, str]]]:
    """(impressions, [(customer, product, channel, exclusion code)] of those not eligible),
    by ``Catalog.exclusions`` over the stored customer, holdings and terminal."""
    catalog, config = ws.catalog(), ws.config()
    bad, n = [], 0
    with ws.store() as store:
        for event in store.feedback():
            if event.action != "impression":
                continue
            n += 1
            customer, terminal = store.customer(event.customer_id), \
                store.terminal(event.customer_id)
            assert customer is not None and terminal is not None, event
            context = RequestContext(
                customer=customer, terminal=terminal, moment=event.moment,
                channel=Channel(event.channel, config.slots[event.channel]))
            code = Exclusion(int(catalog.exclusions(context)[catalog.index[event.product]]))
            if code is not Exclusion.OK or catalog[event.product].kind is not \
                    ProductKind.BUSINESS:
                bad.append((event.customer_id, event.product, event.channel, code.code))
    return n, bad


def test_every_sample_impression_passes_the_catalogs_eligibility(sample_workspace):
    n, bad = ineligible_impressions(sample_workspace)
    assert n > 700  # two requests for a fifth of 2,000 customers, nearly all served
    assert bad == []


def test_responses_follow_an_impression_of_the_same_suggestion(sample_workspace):
    with sample_workspace.store() as store:
        events = store.feedback()
    shown = {(e.request_id, e.product, e.customer_id): e for e in events
             if e.action == "impression"}
    responses = [e for e in events if e.action != "impression"]
    assert {e.action for e in responses} == {"click", "accept", "dismiss"}
    for e in responses:
        impression = shown[(e.request_id, e.product, e.customer_id)]
        assert (e.channel, e.moment) == (impression.channel, impression.moment)
        assert e.ts > impression.ts


def test_channels_fit_the_terminal(sample_workspace):
    """Smartphone users are shown suggestions in the halls they use, feature phones on SMS,
    the hotline or in the store (never in the app)."""
    with sample_workspace.store() as store:
        smart = {cid: bool(s) for cid, s in store.db.execute(
            "SELECT customer_id, smartphone FROM terminals")}
        rows = store.db.execute(
            "SELECT DISTINCT customer_id, channel FROM feedback").fetchall()
    assert {c for cid, c in rows if smart[cid]} <= {"app", "web", "hotline", "wechat", "store"}
    assert {c for cid, c in rows if not smart[cid]} <= {"sms", "hotline", "store"}
    assert any(not smart[cid] for cid, _ in rows)


def generated(root: Path, customers: int, seed: int) -> Workspace:
    ws = Workspace(root)
    sampledata.write_workspace_files(root)
    with ws.store() as store:
        sampledata.generate(store, ws.catalog(), customers=customers, seed=seed)
    return ws


def test_eligible_across_chunks_and_the_same_for_a_seed(tmp_path, monkeypatch):
    monkeypatch.setattr(sampledata, "CHUNK", 70)  # 250 customers: four chunks
    first = generated(tmp_path / "a", 250, 3)
    n, bad = ineligible_impressions(first)
    assert n > 80 and bad == []
    again = generated(tmp_path / "b", 250, 3)
    with first.store() as a, again.store() as b:
        assert a.feedback() == b.feedback()
        ids = [e.event_id for e in a.feedback()]
        assert len(ids) == len(set(ids))
        shown = {int(e.customer_id[1:]) for e in a.feedback()}
        assert max(shown) >= 3 * 70  # the last chunk's customers are shown too
