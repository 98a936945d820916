"""Editing ``rules.toml`` and the ``[blend]`` tables of ``config.toml`` in place.

A save changes only what the form changed: one ``[[rule]]`` block is replaced, removed or
appended, or the weight lines of the blend tables are rewritten, and every other byte of the
file (comments, order, the other sections) is kept. Every edit is checked by parsing the result
and comparing it with what was meant; a file laid out in a way these edits cannot follow
(a blend written as inline tables, say) is refused with :class:`EditError` rather than
rewritten.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from typing import Any


class EditError(ValueError):
    """The file cannot be edited in place as asked; the message says why."""


# -- writing TOML values ----------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def string(text: str) -> str:
    """A TOML basic string."""
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else string(name)


def value(item: Any) -> str:
    """A TOML value: string, boolean, integer, finite float, list or inline table."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if not math.isfinite(item):
            raise EditError(f"{item!r} is not a finite number")
        text = repr(item)
        return text if any(c in text for c in ".eE") else text + ".0"
    if isinstance(item, str):
        return string(item)
    if isinstance(item, Mapping):
        return "{ " + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + " }"
    if isinstance(item, list | tuple):
        return "[" + ", ".join(value(v) for v in item) + "]"
    raise EditError(f"cannot write {type(item).__name__} values")


# -- rules.toml -------------------------------------------------------------------------------

_RULE_HEADER = re.compile(r"^[ \t]*\[\[[ \t]*rule[ \t]*\]\][ \t]*(?:#.*)?$", re.M)
_TRIVIA = re.compile(r"^[ \t]*(?:#.*)?$")

#: The order fields are written in (others after them, as given).
RULE_ORDER = ("id", "description", "enabled", "moments", "priority", "reason", "reason_en",
              "recommend")


def rule_block(rule: Mapping[str, Any]) -> str:
    """One ``[[rule]]`` block (with its ``[rule.when]`` table), ending in a newline."""
    fields = [k for k in RULE_ORDER if k in rule] + \
        [k for k in rule if k not in RULE_ORDER and k != "when"]
    lines = ["[[rule]]"]
    for name in fields:
        item = rule[name]
        if name == "recommend" and isinstance(item, list) and len(item) > 1:
            lines.append("recommend = [")
            lines += [f"    {value(entry)}," for entry in item]
            lines.append("]")
        else:
            lines.append(f"{key(name)} = {value(item)}")
    when = rule.get("when")
    if when:
        lines.append("[rule.when]")
        lines += [f"{key(k)} = {value(v)}" for k, v in when.items()]
    return "\n".join(lines) + "\n"


def _blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of each ``[[rule]]`` block: from its header to the comments and blank
    lines that lead into the next one (kept with the next), or the end of the file."""
    starts = [m.start() for m in _RULE_HEADER.finditer(text)]
    out = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        lines = text[start:end].splitlines(keepends=True)
        while len(lines) > 1 and _TRIVIA.fullmatch(lines[-1].rstrip("\r\n")):
            lines.pop()
        out.append((start, start + sum(len(line) for line in lines)))
    return out


def _parse(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise EditError(f"{name} is not valid TOML: {e}") from None


def edit_rule(text: str, position: int | None, rule: Mapping[str, Any] | None,
              name: str = "rules.toml") -> str:
    """``text`` with the rule at ``position`` (0-based order of ``[[rule]]``) replaced by
    ``rule``, removed (``rule`` None), or ``rule`` appended (``position`` None)."""
    current = _parse(text, name).get("rule", [])
    if not isinstance(current, list):
        raise EditError(f"{name}: 'rule' is not an array of [[rule]] tables")
    blocks = _blocks(text)
    if len(blocks) != len(current):
        raise EditError(f"{name}: its rules are not all written as [[rule]] blocks; edit the "
                        f"file itself")
    expected = list(current)
    if position is None:
        if rule is None:
            raise EditError("nothing to add")
        joint = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n")
                                                               else "\n\n")
        result = text + joint + rule_block(rule)
        expected.append(dict(rule))
    else:
        if not 0 <= position < len(blocks):
            raise EditError(f"{name} has no rule #{position + 1}")
        start, end = blocks[position]
        rest = text[end:]
        if rule is None:
            result = text[:start] + rest.lstrip("\n")
            del expected[position]
        else:
            result = text[:start] + rule_block(rule) + \
                ("\n" + rest.lstrip("\n") if rest.strip() else "")
            expected[position] = dict(rule)
    parsed = _parse(result, name)
    if parsed.get("rule", []) != _normalised(expected) or \
            {k: v for k, v in parsed.items() if k != "rule"} != \
            {k: v for k, v in _parse(text, name).items() if k != "rule"}:
        raise EditError(f"{name}: the edit would change more than the rule; edit the file "
                        f"itself")
    return result


def _normalised(rules: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Rules as TOML would read them back (tuples as lists)."""
    return tomllib.loads("".join(rule_block(r) for r in rules)).get("rule", []) \
        if rules else []


# -- [blend] of config.toml -------------------------------------------------------------------

_HEADER = re.compile(r"^[ \t]*\[(?!\[)[ \t]*([^\]\n]+?)[ \t]*\][ \t]*(?:#.*)?$", re.M)
_ANY_HEADER = re.compile(r"^[ \t]*\[.*$", re.M)
_KEY_LINE = re.compile(r"^([ \t]*)([A-Za-z0-9_-]+)([ \t]*=[ \t]*)([^#\n]*?)([ \t]*(?:#.*)?)$")

Weights = dict[str, float]


def _table_name(header: str) -> tuple[str, ...] | None:
    parts = [p.strip() for p in header.split(".")]
    if not all(_BARE_KEY.fullmatch(p) for p in parts):
        return None
    return tuple(parts)


def edit_blend(text: str, blend: Mapping[str, Weights], channel_blend: Mapping[
        tuple[str, str], Weights], removed: Sequence[tuple[str, str]] = (),
        name: str = "config.toml") -> str:
    """``text`` with the weights of ``[blend.<moment>]`` tables set to ``blend`` and those of
    ``[blend.<moment>.<channel>]`` to ``channel_blend``, and the channel tables in
    ``removed`` deleted. A weight not listed for a table is removed from it; a table the file
    lacks is added after the last blend table. Tables not named are left as they are."""
    original = _parse(text, name)
    wanted: dict[tuple[str, ...], Weights] = {(m,): dict(w) for m, w in blend.items()}
    wanted.update({(m, c): dict(w) for (m, c), w in channel_blend.items()})
    gone = {(m, c) for m, c in removed}
    headers = list(_ANY_HEADER.finditer(text))
    pieces: list[str] = []
    cursor = 0
    seen: set[tuple[str, ...]] = set()
    explicit: set[tuple[str, ...]] = set()
    insert_at = None
    for i, match in enumerate(headers):
        header = _HEADER.fullmatch(match.group(0))
        table = _table_name(header.group(1)) if header else None
        if not table or table[0] != "blend" or len(table) == 1:
            continue
        table = table[1:]
        explicit.add(table)
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        core, trailing = _split_trailing(text[match.start():end])
        pieces.append(text[cursor:match.start()])
        if table not in gone:
            if table in wanted:
                core = _rewrite_table(core, wanted[table], name, ".".join(("blend", *table)))
                seen.add(table)
            pieces.append(core)
        insert_at = len("".join(pieces))
        pieces.append(trailing if table not in gone else trailing.lstrip("\n"))
        cursor = end
    pieces.append(text[cursor:])
    result = "".join(pieces)
    missing = [t for t in wanted if t not in seen]
    if missing:
        at = len(result) if insert_at is None else insert_at
        head, tail = result[:at], result[at:]
        if head and not head.endswith("\n"):
            head += "\n"
        added = "".join(f"\n[{'.'.join(('blend', *t))}]\n" + "".join(
            f"{key(s)} = {value(float(w))}\n" for s, w in wanted[t].items()) for t in missing)
        result = head + (added if head else added.lstrip("\n")) + tail
    try:
        parsed = tomllib.loads(result)
    except tomllib.TOMLDecodeError:
        parsed = None
    expected = _expected_blend(original.get("blend", {}), wanted, gone,
                               {t[0] for t in explicit if len(t) == 1})
    if parsed is None or parsed.get("blend", {}) != expected or \
            {k: v for k, v in parsed.items() if k != "blend"} != \
            {k: v for k, v in original.items() if k != "blend"}:
        raise EditError(f"{name}: [blend] is not written as one table per moment and channel "
                        f"([blend.query], [blend.success.hotline]); edit the file itself")
    return result


def _split_trailing(body: str) -> tuple[str, str]:
    """A table's text and the comments and blank lines after it (which lead into the next)."""
    lines = body.splitlines(keepends=True)
    keep = len(lines)
    while keep > 1 and _TRIVIA.fullmatch(lines[keep - 1].rstrip("\r\n")):
        keep -= 1
    core = "".join(lines[:keep])
    return core, body[len(core):]


def _rewrite_table(body: str, weights: Weights, name: str, table: str) -> str:
    """A blend table's text with its weight lines set to ``weights`` (comments kept)."""
    lines = body.splitlines(keepends=True)
    out = [lines[0]]
    todo = dict(weights)
    last_key = 0
    for line in lines[1:]:
        match = _KEY_LINE.fullmatch(line.rstrip("\r\n"))
        if match is None:
            if not _TRIVIA.fullmatch(line.rstrip("\r\n")):
                raise EditError(f"{name}: [{table}] has a line the console cannot edit: "
                                f"{line.strip()[:60]!r}; edit the file itself")
            out.append(line)
            continue
        indent, strategy, equals, _, comment = match.groups()
        if strategy in todo:
            newline = line[len(line.rstrip("\r\n")):] or "\n"
            out.append(f"{indent}{strategy}{equals}{value(float(todo.pop(strategy)))}"
                       f"{comment}{newline}")
            last_key = len(out)
        # a weight no longer wanted: its line is dropped
    if todo:
        insert = last_key or 1
        if insert == len(out) and out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        out[insert:insert] = [f"{key(s)} = {value(float(w))}\n" for s, w in todo.items()]
    return "".join(out)


def _expected_blend(current: Mapping[str, Any], wanted: Mapping[tuple[str, ...], Weights],
                    gone: set[tuple[str, ...]], written: set[str]) -> dict[str, Any]:
    """The blend the edit means; a moment that only had the removed channel tables (no
    ``[blend.<moment>]`` of its own in ``written``) is gone with them."""
    out: dict[str, Any] = {m: dict(v) if isinstance(v, Mapping) else v
                           for m, v in current.items()}
    for (moment, channel) in gone:
        table = out.get(moment)
        if isinstance(table, dict):
            table.pop(channel, None)
            if not table and moment not in written and (moment,) not in wanted:
                del out[moment]
    for path, weights in wanted.items():
        moment = path[0]
        table = out.setdefault(moment, {})
        if len(path) == 1:
            subtables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
            out[moment] = {**{s: float(w) for s, w in weights.items()}, **subtables}
        else:
            table[path[1]] = {s: float(w) for s, w in weights.items()}
    return out
