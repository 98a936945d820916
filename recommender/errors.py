"""Exceptions raised by the recommender, each naming what was wrong and where."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"did you mean 'x'? "`` for the known name closest to a misspelt ``name`` (the same
    name in another case first), or ``""`` when none is close."""
    known = list(known)
    close = [k for k in known if k.lower() == name.lower()] or \
        difflib.get_close_matches(name, known, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


class RecommenderError(Exception):
    """Base class of every error this package raises on purpose."""


class ContextError(RecommenderError, ValueError):
    """A request context field is missing or holds a value outside its contract."""

    def __init__(self, field: str, value: object, message: str):
        self.field = field
        self.value = value
        super().__init__(f"{field}: {message} (got {value!r})")


class CatalogError(RecommenderError, ValueError):
    """The product catalog file is malformed; names the file, entry and field."""

    def __init__(self, source: str, entry: str | None, field: str | None, message: str):
        self.source = source
        self.entry = entry
        self.field = field
        where = source
        if entry is not None:
            where += f", product {entry!r}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class ConfigError(RecommenderError, ValueError):
    """The workspace configuration is malformed; names the file and key."""

    def __init__(self, source: str, key: str, message: str):
        self.source = source
        self.key = key
        self.message = message
        super().__init__(f"{source}, {key}: {message}")


class UnknownCustomerError(RecommenderError, LookupError):
    """No context provider knows the customer and the request carries no attributes."""

    def __init__(self, customer_id: str):
        self.customer_id = customer_id
        super().__init__(f"customer: unknown customer {customer_id!r}")


class UnknownProductError(RecommenderError, LookupError):
    """A product id is not in the catalog."""

    def __init__(self, product_id: str, field: str = "product"):
        self.product_id = product_id
        self.field = field
        super().__init__(f"{field}: unknown product {product_id!r}")


class ImportRowError(RecommenderError, ValueError):
    """A CSV row could not be imported; names the file, line and column."""

    def __init__(self, path: str, line: int, column: str | None, message: str):
        self.path = path
        self.line = line
        self.column = column
        where = f"{path}, line {line}"
        if column:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")


class PluginError(RecommenderError):
    """A plugin broke the contract in a way found at start-up (bad hook, duplicate name)."""


class ModelError(RecommenderError):
    """A model directory is missing, incomplete, corrupt or from an incompatible version."""
