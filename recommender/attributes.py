"""Customer attributes: the operator's own columns (age, region, spend...) beyond TCPC's.

Any column of ``customers.csv`` the import does not know becomes an attribute, numeric or
categorical. Its kind is declared in ``config.toml``::

    [attributes]
    region = "categorical"     # codes that look like numbers stay categories
    arpu = "numeric"

or inferred from the file: a column whose every value is a number is numeric, one with no
number is categorical, and one with both is an error naming the two lines (declare it). Once
stored, a kind is kept: a later file must agree with it. Attributes reach strategies in
``Customer.attributes`` and, as arrays, in ``TrainingData.attributes``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from .errors import ConfigError, ContextError

NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)

#: Attribute columns a store (and one file) may hold: far above a CRM extract's, and what
#: keeps a hostile 10,000-column file from becoming a 10,000-feature model.
MAX_ATTRIBUTES = 512
#: Attributes one API request may carry inline (``customer.attributes``).
MAX_INLINE_ATTRIBUTES = 64
#: Longest categorical value, as for ids and tags.
MAX_VALUE_LENGTH = 128
#: An attribute's name: a letter or underscore, then letters, digits, ``_ . -`` (at most 64).
NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

Value = float | str


def name_problem(name: Any) -> str | None:
    """Why ``name`` cannot name an attribute, or None if it can."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        return "is not an attribute name (a letter or _, then up to 63 letters, digits, _ . or -)"
    return None


def parse_number(text: str) -> float | None:
    """``text`` as a finite number (ASCII digits, sign, point, exponent), or None."""
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def value_problem(value: Any) -> str | None:
    """Why ``value`` cannot be an attribute value (a finite number or short text), or None."""
    if isinstance(value, bool):
        return "must be a number or a text, not true/false"
    if isinstance(value, int | float):
        return (None if math.isfinite(value) and abs(value) < 1e300
                else "must be a finite number below 1e300 in magnitude")
    if isinstance(value, str):
        if not value or len(value) > MAX_VALUE_LENGTH:
            return f"must be 1 to {MAX_VALUE_LENGTH} characters"
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
            return "must not contain control characters"
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "is not valid Unicode text (a lone surrogate)"
        return None
    return f"must be a number or a text, got {type(value).__name__}"


#: Attributes one customer may carry: all a store holds, plus those a request adds inline.
MAX_CUSTOMER_ATTRIBUTES = MAX_ATTRIBUTES + MAX_INLINE_ATTRIBUTES


def checked(
    attributes: Any, *, field: str = "customer.attributes", limit: int = MAX_CUSTOMER_ATTRIBUTES
) -> dict[str, Value]:
    """A validated copy of an attribute mapping (numbers as float); raises ContextError.
    The API limits what a request sends inline to ``MAX_INLINE_ATTRIBUTES``."""
    if not isinstance(attributes, Mapping):
        raise ContextError(field, attributes, "must be an object of name: value")
    if len(attributes) > limit:
        raise ContextError(field, f"{len(attributes)} attributes", f"at most {limit}")
    out: dict[str, Value] = {}
    for name, value in attributes.items():
        problem = name_problem(name)
        if problem is not None:
            raise ContextError(f"{field}.{str(name)[:40]}", name, problem)
        if value is None:
            continue
        problem = value_problem(value)
        if problem is not None:
            raise ContextError(f"{field}.{name}", value, problem)
        out[name] = value if isinstance(value, str) else float(value)
    return out


def declared_kinds(raw: Mapping[str, Any], source: str) -> dict[str, str]:
    """The ``[attributes]`` table of a configuration: name -> kind; errors name the key."""
    table = raw.get("attributes", {})
    if not isinstance(table, Mapping):
        raise ConfigError(source, "attributes", "must be a table of name = kind")
    out = {}
    for name, kind in table.items():
        problem = name_problem(name)
        if problem is not None:
            raise ConfigError(source, f"attributes.{name}", problem)
        if kind not in KINDS:
            raise ConfigError(
                source,
                f"attributes.{name}",
                f"must be {' or '.join(repr(k) for k in KINDS)}, got {kind!r}",
            )
        out[name] = kind
    if len(out) > MAX_ATTRIBUTES:
        raise ConfigError(source, "attributes", f"{len(out)} attributes; at most {MAX_ATTRIBUTES}")
    return out


class ColumnError(Exception):
    """A column's values do not fit its kind: ``line`` (1-based, in the file) and why."""

    def __init__(self, line: int, message: str):
        self.line = line
        self.message = message
        super().__init__(message)


def column_kind(
    name: str, values: Sequence[str], lines: Sequence[int], kind: str | None, stored: str | None
) -> str:
    """The kind of one column: declared (``kind``), else the stored one, else inferred.

    :param values: the column's non-empty values; ``lines`` their file lines.
    :raises ColumnError: a value does not fit the declared or stored kind, or the column
        mixes numbers and text with no kind to settle it.
    """
    if kind is not None and stored is not None and kind != stored:
        raise ColumnError(1, f"declared {kind} in [attributes] but stored as {stored}")
    wanted = kind or stored
    numeric = np.fromiter(
        (parse_number(v) is not None for v in values), dtype=bool, count=len(values)
    )
    if wanted == NUMERIC:
        if not numeric.all():
            i = int(np.argmin(numeric))
            where = "declared numeric" if kind else "stored as numeric"
            raise ColumnError(lines[i], f"{values[i][:40]!r} is not a number ({where})")
        return NUMERIC
    if wanted == CATEGORICAL:
        return CATEGORICAL
    if numeric.all():
        return NUMERIC
    if not numeric.any():
        return CATEGORICAL
    first_number = int(np.argmax(numeric))
    first_text = int(np.argmin(numeric))
    raise ColumnError(
        max(lines[first_number], lines[first_text]),
        f"mixes numbers (line {lines[first_number]}: "
        f"{values[first_number][:40]!r}) and text (line {lines[first_text]}: "
        f"{values[first_text][:40]!r}); declare its kind in config.toml, "
        f'[attributes] {name} = "categorical" or "numeric"',
    )


def encode(attributes: Mapping[str, Value]) -> str | None:
    """The stored form of a customer's attributes (compact JSON), None for none."""
    if not attributes:
        return None
    return json.dumps(attributes, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def decode(text: str | None) -> dict[str, Value]:
    """A customer's stored attributes (read on every request: orjson first)."""
    if not text:
        return {}
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN or Infinity, which json.dumps writes and orjson refuses
        return json.loads(text)


@dataclass(frozen=True)
class AttributeTable:
    """Every customer's attributes as arrays, rows in ``TrainingData.customers`` order.

    ``numeric`` is customers x numeric attributes (NaN when missing); ``codes`` is
    customers x categorical attributes, each the position in ``categories[name]`` (-1 when
    missing or unseen).
    """

    numeric_names: tuple[str, ...]
    numeric: np.ndarray
    categorical_names: tuple[str, ...]
    codes: np.ndarray
    categories: Mapping[str, tuple[str, ...]]

    @property
    def n_customers(self) -> int:
        return self.numeric.shape[0]

    @classmethod
    def empty(cls, n: int) -> AttributeTable:
        return cls((), np.zeros((n, 0), np.float32), (), np.zeros((n, 0), np.int32), {})

    @classmethod
    def from_mappings(
        cls,
        rows: Iterable[Mapping[str, Value] | None],
        n: int,
        kinds: Mapping[str, str],
        categories: Mapping[str, Sequence[str]] | None = None,
    ) -> AttributeTable:
        """Arrays from ``n`` attribute mappings (None: no attributes), for the ``kinds`` given.

        :param categories: fixed vocabularies (a trained model's); otherwise each categorical
            attribute's values seen here, in sorted order.
        """
        numeric_names = tuple(k for k, v in kinds.items() if v == NUMERIC)
        cat_names = tuple(k for k, v in kinds.items() if v == CATEGORICAL)
        num_pos = {k: i for i, k in enumerate(numeric_names)}
        cat_pos = {k: i for i, k in enumerate(cat_names)}
        numeric = np.full((n, len(numeric_names)), np.nan, dtype=np.float32)
        texts: list[list[str | None]] = [[None] * n for _ in cat_names]
        for i, row in enumerate(rows):
            if not row:
                continue
            for name, value in row.items():
                j = num_pos.get(name)
                if j is not None:
                    if not isinstance(value, str):
                        numeric[i, j] = value
                    continue
                j = cat_pos.get(name)
                if j is not None:
                    texts[j][i] = str(value) if not isinstance(value, str) else value
        vocab: dict[str, tuple[str, ...]] = {}
        codes = np.full((n, len(cat_names)), -1, dtype=np.int32)
        for j, name in enumerate(cat_names):
            column = np.array(texts[j], dtype=object)
            present = np.array([t is not None for t in texts[j]], dtype=bool)
            if categories is not None and name in categories:
                vocab[name] = tuple(categories[name])
            else:
                vocab[name] = tuple(sorted(set(column[present].tolist())))
            lookup = {v: k for k, v in enumerate(vocab[name])}
            codes[present, j] = [lookup.get(t, -1) for t in column[present].tolist()]
        return cls(numeric_names, numeric, cat_names, codes, vocab)
