"""``GET /docs``: the API reference as one self-contained HTML page, rendered from the OpenAPI
document so that it always says what the schemas enforce (no script, no CDN, works offline)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, render_template_string

from .state import service

blp = Blueprint("docs", __name__)

PAGE = """{% macro fields(entry) %}<table><tr><th>Field</th><th>Type</th><th>Notes</th></tr>
{% for fname, f in (entry.schema.properties or {}).items() %}<tr>
<td><code>{{ fname }}</code>{% if fname in (entry.schema.required or []) %}
<span class="req">*</span>{% endif %}</td><td>{{ kind(f) }}</td>
<td>{{ f.description or "" }}{% if choices(f) %} One of: {{ choices(f)|join(", ") }}.{% endif %}
{% if f.minimum is defined %} Min {{ f.minimum }}.{% endif %}
{% if f.maximum is defined %} Max {{ f.maximum }}.{% endif %}
{% if f.maxItems is defined %} At most {{ f.maxItems }} items.{% endif %}</td></tr>
{% endfor %}</table>{% endmacro %}
<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ spec.info.title }} {{ spec.info.version }}</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:0} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
.op{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
.m{font-weight:700;display:inline-block;min-width:4em;color:#fff;border-radius:4px;
   text-align:center;margin-right:.6em}.GET{background:#2b7a3d}.POST{background:#1f5fa8}
code,pre{background:#f5f5f5;border-radius:4px;padding:.1em .3em}pre{padding:.6em;overflow:auto}
table{border-collapse:collapse;width:100%;margin:.4em 0}td,th{border-bottom:1px solid #eee;
 text-align:left;padding:.25em .5em;vertical-align:top} th{font-weight:600}
.req{color:#b00}
</style></head><body>
<h1>{{ spec.info.title }}</h1><p>Version {{ spec.info.version }} &middot;
<a href="{{ openapi_url }}">OpenAPI document</a></p>
<p>Every error is <code>application/problem+json</code> with <code>type</code>,
<code>title</code>, <code>status</code>, <code>detail</code> and, for invalid fields,
<code>errors</code> keyed by the field's dotted path.</p>
{% for tag in tags %}<h2>{{ tag.name }}</h2><p>{{ tag.description }}</p>
{% for op in tag.operations %}<div class="op" id="{{ op.id }}">
<p><span class="m {{ op.method }}">{{ op.method }}</span><code>{{ op.path }}</code>
&mdash; {{ op.summary }}</p>
{% if op.description %}<p>{{ op.description }}</p>{% endif %}
{% if op.parameters %}<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Notes</th></tr>
{% for p in op.parameters %}<tr><td><code>{{ p.name }}</code></td><td>{{ p["in"] }}</td>
<td>{{ kind(p.schema) }}</td><td>{{ choices(p.schema)|join(", ") }}</td></tr>
{% endfor %}</table>{% endif %}
{% if op.body %}<p><b>Request body</b> <code>{{ op.body.name }}</code></p>{{ fields(op.body) }}
{% if op.example %}<pre>{{ op.example }}</pre>{% endif %}{% endif %}
<p><b>Responses</b>: {% for code, r in op.responses %}<code>{{ code }}</code>
{{ r }}{{ "; " if not loop.last }}{% endfor %}</p></div>
{% endfor %}{% endfor %}
<h2 id="problems">Problems</h2><table><tr><th>Status</th><th>When</th></tr>
{% for slug, code, when in problems %}<tr id="problem-{{ slug }}"><td><code>{{ code }}</code>
</td><td>{{ when }}</td></tr>{% endfor %}</table>
<h2>Schemas</h2>{% for name, schema in schemas %}<h3 id="schema-{{ name }}">{{ name }}</h3>
{% if schema.enum %}<p>{{ schema.description }} One of:
{% for value in schema.enum %}<code>{{ value }}</code>{{ ", " if not loop.last }}{% endfor %}.
</p>{% else %}{{ fields({"name": name, "schema": schema}) }}{% endif %}
{% endfor %}
</body></html>
"""


def _kind(field: dict[str, Any]) -> str:
    if "$ref" in field:
        return field["$ref"].rsplit("/", 1)[-1]
    if "allOf" in field:
        return " ".join(_kind(f) for f in field["allOf"])
    if "anyOf" in field:
        return " or ".join(_kind(f) for f in field["anyOf"])
    kind = field.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        return f"array of {_kind(field.get('items', {}))}"
    return kind


def _choices(field: dict[str, Any], schemas: dict[str, Any]) -> list[str]:
    """The values a field may take, its named enum's included (null shown as ``null``)."""
    if "enum" in field:
        return ["null" if v is None else str(v) for v in field["enum"]]
    if "$ref" in field:
        return _choices(schemas.get(field["$ref"].rsplit("/", 1)[-1], {}), schemas)
    out: list[str] = []
    for option in field.get("anyOf", ()):
        out += _choices(option, schemas) or (["any other string"] if option.get("type") ==
                                             "string" else [])
    if field.get("type") == "array":
        return _choices(field.get("items", {}), schemas)
    return out


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    schemas = spec.get("components", {}).get("schemas", {})
    tags: dict[str, dict[str, Any]] = {t["name"]: {**t, "operations": []}
                                       for t in spec.get("tags", [])}
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            body = None
            example = None
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if content:
                name = content["schema"]["$ref"].rsplit("/", 1)[-1]
                body = {"name": name, "schema": schemas.get(name, {})}
                if "example" in content:
                    example = json.dumps(content["example"], indent=2, ensure_ascii=False)
            lines = (op.get("description") or "").strip().replace("``", "")
            tag = tags.setdefault(op.get("tags", ["other"])[0],
                                  {"name": op.get("tags", ["other"])[0], "operations": []})
            tag["operations"].append({
                "id": f"{method}-{path}", "method": method.upper(), "path": path,
                "summary": op.get("summary", "").replace("``", ""), "description": lines,
                "parameters": op.get("parameters", []), "body": body, "example": example,
                "responses": [(code, _response_text(r))
                              for code, r in op.get("responses", {}).items()]})
    return list(tags.values())


PROBLEMS = [
    (400, "The body is not valid JSON (syntax, encoding, NaN or Infinity, nesting)."),
    (401, "An admin endpoint was called without the right bearer token."),
    (403, "An admin endpoint was called but no admin token is configured."),
    (404, "No such path, or no such product."),
    (405, "The path exists but not with this method; see the Allow header."),
    (409, "Refused as it stands: a reload's file or model version (what was served keeps "
          "serving), a feedback event_id already stored for another event, an audience "
          "without a trained propensity model."),
    (413, "The body is larger than the configured limit (64 KiB by default)."),
    (415, "The body is not sent as application/json."),
    (429, "The client sent more requests than the configured rate limit allows: retry "
          "after Retry-After seconds (never for preflights, probes and metrics)."),
    (422, "A field is missing, unknown, or out of its contract; errors names each one."),
    (500, "The server failed; the error is logged, nothing internal is returned."),
    (503, "Not ready (checks says whether the store, the served model or the models are the "
          "problem), or the store is busy or cannot be written: retry after Retry-After."),
]


def _problems() -> list[tuple[str, int, str]]:
    from http import HTTPStatus

    return [(HTTPStatus(code).phrase.lower().replace(" ", "-").replace("'", ""), code, when)
            for code, when in PROBLEMS]


def _response_text(response: dict[str, Any]) -> str:
    if "description" in response:
        return response["description"].replace("``", "")
    name = response.get("$ref", "").rsplit("/", 1)[-1]
    return "any other error, as problem details" if name == "DEFAULT_ERROR" else name


@blp.route("/docs")
def docs() -> Response:
    """The API reference page."""
    spec = service().api.spec.to_dict()
    schemas = spec.get("components", {}).get("schemas", {})
    html = render_template_string(
        PAGE, spec=spec, tags=_operations(spec), openapi_url="/openapi.json", kind=_kind,
        choices=lambda field: _choices(field, schemas),
        schemas=sorted(spec.get("components", {}).get("schemas", {}).items()),
        problems=_problems())
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
