"""Shared base models, field types and pagination."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable
from datetime import date, time
from typing import Annotated, Any, ClassVar
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictInt,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2099, 12, 31)


class RequestModel(BaseModel):
    """A request body: camelCase only, unknown fields refused, strings stripped."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        extra="forbid",
        str_strip_whitespace=True,
    )


class UpdateModel(RequestModel):
    """A partial update: omitted fields stay; `null` only where `nullable` allows it."""

    nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> UpdateModel:
        for name in self.model_fields_set:
            if getattr(self, name) is None and name not in self.nullable:
                alias = type(self).model_fields[name].alias or name
                raise PydanticCustomError("null", f"{alias} cannot be null; omit it to keep it")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, by attribute name."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class ResponseModel(BaseModel):
    """A response body: built by attribute name, serialised camelCase."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=True,
        serialize_by_alias=True,
    )


def require_str(example: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", f"must be a string like {example!r}")
        return value

    return check


def _date_in_range(value: date) -> date:
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise PydanticCustomError(
            "date_range", f"must be between {EARLIEST_DATE} and {LATEST_DATE}"
        )
    return value


def _whole_minutes(value: time) -> time:
    if value.tzinfo is not None or value.second or value.microsecond:
        raise PydanticCustomError(
            "clock_time", "must be a local time of day in hours and minutes, like '15:00'"
        )
    return value


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def check_timezone(name: str) -> str:
    """Return `name` if it is an IANA time zone, else raise with close matches."""
    if name not in _zones():
        close = difflib.get_close_matches(name, sorted(_zones()), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise PydanticCustomError(
            "timezone",
            f"unknown IANA time zone {name!r}{hint} Use a name like 'Europe/Madrid' or "
            "'America/New_York'",
        )
    return name


IsoDate = Annotated[
    date,
    BeforeValidator(require_str("2025-03-28")),
    AfterValidator(_date_in_range),
]
CLOCK_SCHEMA = {"type": "string", "pattern": r"^\d{2}:\d{2}$", "examples": ["15:00"]}
ClockTime = Annotated[
    time,
    BeforeValidator(require_str("15:00")),
    AfterValidator(_whole_minutes),
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema(CLOCK_SCHEMA),
]
ClockTimeOut = Annotated[
    time,
    PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str),
    WithJsonSchema(CLOCK_SCHEMA),
]
TimeZone = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=64), AfterValidator(check_timezone)
]
Name = Annotated[StrictStr, StringConstraints(min_length=1, max_length=120)]
ShortName = Annotated[StrictStr, StringConstraints(min_length=1, max_length=80)]
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    if not EMAIL_RE.fullmatch(value):
        raise PydanticCustomError("email", "must be an email address like ana@example.com")
    return value.lower()


Email = Annotated[StrictStr, StringConstraints(max_length=254), AfterValidator(_email)]
Phone = Annotated[
    StrictStr,
    StringConstraints(max_length=40, pattern=r"^\+?[0-9 ()./-]{3,40}$"),
]
BufferMinutes = Annotated[StrictInt, Field(ge=0, le=720, description="Minutes, 0 to 720")]


class Page(ResponseModel):
    """The pagination fields of a list response (zero-based `page`)."""

    page: int
    size: int
    total: int
