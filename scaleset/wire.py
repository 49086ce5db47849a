"""Base for wire models: case-insensitive decoding, BOM tolerance, exact casing when encoding."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Annotated, Any, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from gha_scalesets.scaleset.errors import ProtocolError

_BOM = b"\xef\xbb\xbf"
_GO_ZERO_YEAR = 1


def decode_json(raw: bytes, what: str) -> Any:
    """Decode a body (UTF-8 BOM tolerated); empty or malformed bodies are protocol errors."""
    raw = raw.removeprefix(_BOM)
    if not raw.strip():
        raise ProtocolError(f"{what}: the service returned an empty body")
    try:
        return json.loads(raw)
    except UnicodeDecodeError:
        raise ProtocolError(f"{what}: the service returned a body that is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"{what}: the service returned malformed JSON ({exc.msg})") from None


def _zero_time_to_none(value: Any) -> Any:
    """Go marshals unset times as 0001-01-01T00:00:00Z; expose those as ``None``."""
    if isinstance(value, str) and (not value or value.startswith("0001-01-01")):
        return None
    if isinstance(value, datetime) and value.year == _GO_ZERO_YEAR:
        return None
    return value


WireTime = Annotated[datetime | None, BeforeValidator(_zero_time_to_none)]
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


class WireModel(BaseModel):
    """A JSON object of the scale-set API.

    Attributes are snake_case; aliases are the exact wire names (camelCase unless a field
    overrides it). Decoding matches keys case-insensitively, like Go's ``encoding/json``.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )

    @classmethod
    @cache
    def _wire_keys(cls) -> dict[str, str]:
        keys: dict[str, str] = {}
        for name, info in cls.model_fields.items():
            alias = info.alias or name
            keys[alias.lower()] = alias
            keys.setdefault(name.lower(), alias)
        return keys

    @model_validator(mode="before")
    @classmethod
    def _case_insensitive_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        keys = cls._wire_keys()
        return {keys.get(k.lower(), k) if isinstance(k, str) else k: v for k, v in data.items()}

    @classmethod
    def from_wire(cls, data: Any, what: str | None = None) -> Self:
        """Validate decoded JSON (any key casing); invalid shapes become :class:`ProtocolError`."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            raise ProtocolError(
                f"{what or cls.__name__}: unexpected response shape at {where}: {first['msg']}"
            ) from None

    @classmethod
    def from_bytes(cls, raw: bytes, what: str | None = None) -> Self:
        """Decode and validate a raw response body."""
        return cls.from_wire(decode_json(raw, what or cls.__name__), what)

    def to_wire(self, **kwargs: Any) -> dict[str, Any]:
        """The JSON-ready dict with exact wire casing."""
        return self.model_dump(mode="json", by_alias=True, **kwargs)
