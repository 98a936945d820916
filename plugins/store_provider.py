"""The embedded store as the default context provider; runs last so other providers win.

Its reads do not block: SQLite in WAL mode lets readers read while a writer writes (a store
on a server database would be a provider that may wait, and unmarked)."""

from __future__ import annotations

from recommender import Customer, Store, Terminal, does_not_block, hookimpl


@hookimpl(trylast=True)
@does_not_block
def load_customer(customer_id: str, store: Store | None) -> Customer | None:
    return None if store is None else store.customer(customer_id)


@hookimpl(trylast=True)
@does_not_block
def load_terminal(customer_id: str, store: Store | None) -> Terminal | None:
    return None if store is None else store.terminal(customer_id)
