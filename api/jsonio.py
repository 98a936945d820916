"""Responses already in the contract's shape, written with orjson.

The engine's ``to_dict`` is the JSON contract (``RecommendationSchema`` documents it, and
``tests/test_api_recommendations.py`` proves dumping through the schema would change nothing), so
the hot endpoints skip a second, field-by-field marshmallow pass and write the dict directly:
orjson keeps key order and UTF-8 text as the app's JSON provider does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from flask import Response


def json_response(data: Mapping[str, Any], status: int = 200) -> Response:
    """``data`` as an ``application/json`` response."""
    return Response(orjson.dumps(data), status=status, mimetype="application/json")
