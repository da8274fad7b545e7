"""A Bot API call's parameters as Telegram reads them, and its error answers in Telegram's words."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class ApiError(Exception):
    """A Telegram error answer: HTTP status, description, optional parameters."""

    def __init__(
        self, status: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(text: str) -> ApiError:
    return ApiError(400, f"Bad Request: {text}")


class Params:
    """A method's parameters as Telegram reads them: strings from forms, values from JSON."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = dict(data)

    def raw(self, name: str) -> Any:
        return self.data.get(name)

    def str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else str(value)

    def int(self, name: str, *, required: bool = False, what: str | None = None) -> int | None:
        value = self.data.get(name)
        if value is None or value == "":
            if required:
                raise bad_request(f"{what or name} is empty")
            return None
        if isinstance(value, bool):
            raise bad_request(f"wrong parameter {name} in request")
        try:
            return int(value)
        except (TypeError, ValueError):
            if name == "chat_id":
                raise bad_request("chat not found") from None
            raise bad_request(f"wrong parameter {name} in request") from None

    def float(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"wrong parameter {name} in request") from None

    def bool(self, name: str) -> bool:
        value = self.data.get(name)
        if isinstance(value, str):
            return value.lower() in ("true", "1")
        return bool(value)

    def json(self, name: str, error: str | None = None) -> Any:
        value = self.data.get(name)
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(error or f"can't parse {name} JSON object") from None
