"""The embedded store as the default context provider; runs last so other providers win."""

from __future__ import annotations

from recommender import Customer, Store, Terminal, hookimpl


@hookimpl(trylast=True)
def load_customer(customer_id: str, store: Store | None) -> Customer | None:
    return None if store is None else store.customer(customer_id)


@hookimpl(trylast=True)
def load_terminal(customer_id: str, store: Store | None) -> Terminal | None:
    return None if store is None else store.terminal(customer_id)
