"""Working hours of a branch: weekly opening intervals in the branch's own time zone, and holidays.

Hours are wall-clock times, so the instant being asked about is converted from UTC into the branch's
zone (always unambiguous) before comparing: a branch open 09:00-18:00 is open at 09:00 local time in
summer and in winter, and a holiday is a local date.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from switchboard.errors import N_, Invalid

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
REPLY_LANGUAGES = ("ro", "en", "ru")  # the order a missing language falls back in
MAX_REPLY = 1000
OPENS_PLACEHOLDER = "{opens}"  # replaced by the next opening, local to the branch: "24.11 09:00"
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")

Interval = tuple[int, int]  # minutes since local midnight, [start, end), end may be 1440


def _minutes(text: str, day: str) -> int:
    match = _HHMM.match(text.strip())
    if not match or (match.group(1) == "24" and match.group(2) != "00"):
        raise Invalid(N_("Write times as HH:MM, for example 09:00."), field=day)
    return int(match.group(1)) * 60 + int(match.group(2))


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(N_("Unknown time zone."), field="timezone") from None


@dataclass(frozen=True)
class WorkingHours:
    """A branch's week. No row for a branch means it is always open."""

    branch_id: int
    timezone: str = "Europe/Chisinau"
    week: tuple[tuple[Interval, ...], ...] = ((),) * 7  # Monday first
    holidays: frozenset[dt.date] = frozenset()
    replies: dict[str, str] = field(default_factory=dict, hash=False)  # off-hours reply per language

    def __post_init__(self) -> None:
        zone(self.timezone)
        for language, text in self.replies.items():
            if language not in REPLY_LANGUAGES:
                raise Invalid(N_("Choose a language."), field="replies")
            if not text.strip() or len(text) > MAX_REPLY:
                raise Invalid(
                    N_("An off-hours reply is 1 to %(n)s characters."), field=f"reply_{language}", n=MAX_REPLY
                )
        if len(self.week) != 7:
            raise Invalid(N_("Give opening hours for each of the seven days."), field="week")
        for day, intervals in zip(DAYS, self.week, strict=True):
            previous_end = -1
            for start, end in intervals:
                if not 0 <= start < end <= 1440:
                    raise Invalid(N_("An opening interval must end after it starts."), field=day)
                if start < previous_end:
                    raise Invalid(N_("Opening intervals of one day must not overlap."), field=day)
                previous_end = end

    @classmethod
    def parse(
        cls,
        branch_id: int,
        timezone: str,
        week: Mapping[str, Sequence[Sequence[str]]],
        holidays: Sequence[str | dt.date] = (),
        replies: Mapping[str, Any] | None = None,
    ) -> WorkingHours:
        """From JSON-like values: {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], ...}, ISO dates, and
        {"ro": "Revenim la {opens}", ...} (blank texts dropped: that language falls back to another)."""
        days: list[tuple[Interval, ...]] = []
        for day in DAYS:
            pairs = []
            for pair in week.get(day, ()):
                if len(pair) != 2:
                    raise Invalid(N_("Write times as HH:MM, for example 09:00."), field=day)
                pairs.append((_minutes(pair[0], day), _minutes(pair[1], day)))
            days.append(tuple(sorted(pairs)))
        dates: set[dt.date] = set()
        for value in holidays:
            if isinstance(value, dt.date):
                dates.add(value)
                continue
            try:
                dates.add(dt.date.fromisoformat(str(value).strip()))
            except ValueError:
                raise Invalid(
                    N_("Write holidays as dates, for example 2026-12-25."), field="holidays"
                ) from None
        texts: dict[str, str] = {}
        for language, text in (replies or {}).items():
            if not isinstance(text, str):
                raise Invalid(N_("An off-hours reply is text."), field=f"reply_{language}")
            if text.strip():
                texts[str(language)] = text.strip()
        return cls(branch_id, timezone, tuple(days), frozenset(dates), texts)

    def week_json(self) -> dict[str, list[list[str]]]:
        return {
            day: [[_hhmm(s), _hhmm(e)] for s, e in intervals]
            for day, intervals in zip(DAYS, self.week, strict=True)
        }

    def holidays_json(self) -> list[str]:
        return sorted(d.isoformat() for d in self.holidays)

    def reply(self, language: str | None, at: dt.datetime) -> str | None:
        """The off-hours reply in the customer's language (else ro, en, ru in that order), `{opens}` filled
        with the next opening; None when the admin wrote none."""
        chosen = (
            language
            if language in self.replies
            else next((x for x in REPLY_LANGUAGES if x in self.replies), None)
        )
        if chosen is None:
            return None
        text = self.replies[chosen]
        if OPENS_PLACEHOLDER in text:
            opening = self.opens_at(at)
            when = opening.astimezone(zone(self.timezone)).strftime("%d.%m %H:%M") if opening else ""
            text = text.replace(OPENS_PLACEHOLDER, when)
        return text

    def is_open(self, at: dt.datetime) -> bool:
        local = at.astimezone(zone(self.timezone))
        if local.date() in self.holidays:
            return False
        seconds = local.hour * 3600 + local.minute * 60 + local.second
        return any(s * 60 <= seconds < e * 60 for s, e in self.week[local.weekday()])

    def opens_at(self, at: dt.datetime) -> dt.datetime | None:
        """`at` when open, else the next opening instant (UTC) within two weeks, else None."""
        if self.is_open(at):
            return at
        tz = zone(self.timezone)
        day = at.astimezone(tz).date()
        for offset in range(15):
            date = day + dt.timedelta(days=offset)
            if date in self.holidays:
                continue
            for start, _end in self.week[date.weekday()]:
                local = dt.datetime.combine(date, dt.time(start // 60, start % 60), tz)
                opening = local.astimezone(dt.UTC)
                if opening > at:
                    return opening
        return None
