"""Request bodies: JSON, and sent as JSON (`application/json` or a `+json` type); anything else is a 415."""

from __future__ import annotations

import json
from typing import cast

from django.http import HttpRequest
from ninja.parser import Parser
from ninja.types import DictStrAny


class UnsupportedMediaType(ValueError):
    """A body sent with a content type other than JSON to an operation that reads JSON."""

    def __init__(self, content_type: str):
        super().__init__(f"Send the body as JSON with 'Content-Type: application/json', not {content_type or 'no type'!r}")


class JsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> DictStrAny:
        content_type = (request.content_type or "").lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise UnsupportedMediaType(content_type[:100])
        return cast(DictStrAny, json.loads(request.body))
