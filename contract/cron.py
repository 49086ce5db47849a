"""Cron-like time windows: the minutes in which a scheduled warm floor applies.

Five crontab fields, ``minute hour day-of-month month day-of-week``, each ``*``, a number, a
range ``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of those; months and weekdays
also by name (``jan``..``dec``, ``sun``..``sat``; 0 and 7 are Sunday). As in cron, when both
day fields are restricted a day matches if either does. ``* 8-18 * * mon-fri`` is every
minute from 08:00 to 18:59 on weekdays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day of month", 1, 31, {}),
    _Field("month", 1, 12, {n: i for i, n in enumerate(_MONTHS, start=1)}),
    _Field("day of week", 0, 7, {n: i for i, n in enumerate(_DAYS)}),
)


class CronError(ValueError):
    """An expression that is not a valid five-field cron window."""


def _value(text: str, field: _Field) -> int:
    lowered = text.lower()
    if lowered in field.names:
        return field.names[lowered]
    if not text.isdigit():
        raise CronError(f"{field.name} {text!r} is not a number" + _named(field))
    number = int(text)
    if not field.low <= number <= field.high:
        raise CronError(f"{field.name} {number} is out of range {field.low}-{field.high}")
    return number


def _named(field: _Field) -> str:
    return f" or a name ({', '.join(field.names)})" if field.names else ""


def _part(part: str, field: _Field) -> set[int]:
    body, _, step_text = part.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"{field.name} step {step_text!r} must be a positive number")
        step = int(step_text)
    if body == "*":
        low, high = field.low, field.high
    elif "-" in body:
        first, _, last = body.partition("-")
        low, high = _value(first, field), _value(last, field)
        if low > high:
            raise CronError(f"{field.name} range {body!r} runs backwards")
    else:
        low = _value(body, field)
        high = field.high if step_text else low  # "5/15": from 5 to the end, every 15
    return set(range(low, high + 1, step))


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{field.name} {text!r} has an empty list item")
        values |= _part(part, field)
    return frozenset(values)


@dataclass(frozen=True)
class CronWindow:
    """A parsed expression; :meth:`matches` tells whether a local time falls in it."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is "*"
    any_weekday: bool  # day of week is "*"

    @classmethod
    def parse(cls, expression: str) -> CronWindow:
        """Parse ``expression``; raises :class:`CronError` naming the field at fault."""
        fields = expression.split()
        if len(fields) != len(_FIELDS):
            raise CronError(
                f"{expression!r} has {len(fields)} fields; a cron window has 5: "
                "minute hour day-of-month month day-of-week (e.g. '* 8-18 * * mon-fri')"
            )
        parsed = [_parse_field(text, spec) for text, spec in zip(fields, _FIELDS, strict=True)]
        minutes, hours, days, months, weekdays = parsed
        return cls(
            expression,
            minutes,
            hours,
            days,
            months,
            frozenset(d % 7 for d in weekdays),
            any_day=fields[2] == "*",
            any_weekday=fields[4] == "*",
        )

    def matches(self, local: datetime) -> bool:
        """Whether the minute of ``local`` (a time in the schedule's zone) is in the window."""
        if (
            local.minute not in self.minutes
            or local.hour not in self.hours
            or local.month not in self.months
        ):
            return False
        day = local.day in self.days
        weekday = (local.weekday() + 1) % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday
