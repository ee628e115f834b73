"""Routing rules an admin sets per branch and / or channel, checked on construction.

The most specific rule wins: (branch, channel), then (branch, any channel), then (any branch, channel),
then (any, any), then `RouterSettings.default_rule`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from switchboard.errors import N_, Invalid

STICKY_MODES = ("owner", "last")
_CHANNEL_RE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


def _seconds(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(
            N_("Enter a whole number of seconds from %(low)s to %(high)s."), field=name, low=low, high=high
        )
    return value


@dataclass(frozen=True)
class RoutingRule:
    branch_id: int | None = None  # None: every branch
    channel: str | None = None  # None: every channel
    sticky_mode: str = "owner"  # "owner": the responsible expert; "last": the last agent, else the owner
    sticky_wait_seconds: int = 0  # wait this long for a busy sticky agent before anyone else gets it
    accept_timeout_seconds: int = 60  # an offered item not taken within this passes on
    overflow_branch_after_seconds: int | None = 300  # queued this long: any branch (None: never)
    overflow_any_after_seconds: int | None = 900  # queued this long: any agent at all (None: never)
    timeouts_before_away: int = 3  # this many accept timeouts in a row set the agent away (0: never)

    def __post_init__(self) -> None:
        if self.channel is not None and not _CHANNEL_RE.match(self.channel):
            raise Invalid(N_("Unknown channel."), field="channel")
        if self.sticky_mode not in STICKY_MODES:
            raise Invalid(N_("Choose who a returning customer goes to first."), field="sticky_mode")
        _seconds("sticky_wait_seconds", self.sticky_wait_seconds, 0, 600)
        _seconds("accept_timeout_seconds", self.accept_timeout_seconds, 5, 3600)
        for name in ("overflow_branch_after_seconds", "overflow_any_after_seconds"):
            value = getattr(self, name)
            if value is not None:
                _seconds(name, value, 0, 86400)
        branch, anyone = self.overflow_branch_after_seconds, self.overflow_any_after_seconds
        if branch is not None and anyone is not None and anyone < branch:
            raise Invalid(
                N_("Overflow to any agent cannot start before overflow to any branch."),
                field="overflow_any_after_seconds",
            )
        timeouts = self.timeouts_before_away
        if isinstance(timeouts, bool) or not isinstance(timeouts, int) or not 0 <= timeouts <= 20:
            raise Invalid(
                N_("Enter a number from %(low)s to %(high)s."), field="timeouts_before_away", low=0, high=20
            )

    @property
    def scope(self) -> str:
        """The unique key of the rule's row (NULLs are never equal in a unique constraint)."""
        return f"{self.branch_id if self.branch_id is not None else '*'}:{self.channel or '*'}"

    @classmethod
    def from_form(cls, data: Mapping[str, Any]) -> RoutingRule:
        """A rule from text fields (a form or JSON body): blanks mean "any" / "never"."""

        def whole(name: str, default: int | None) -> int | None:
            raw = data.get(name)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                return default
            try:
                return int(str(raw).strip())
            except ValueError:
                raise Invalid(N_("Enter a whole number."), field=name) from None

        channel = str(data.get("channel") or "").strip().lower() or None
        return cls(
            branch_id=whole("branch_id", None),
            channel=channel,
            sticky_mode=str(data.get("sticky_mode") or "owner"),
            sticky_wait_seconds=whole("sticky_wait_seconds", 0) or 0,
            accept_timeout_seconds=whole("accept_timeout_seconds", 60) or 0,
            overflow_branch_after_seconds=whole("overflow_branch_after_seconds", None),
            overflow_any_after_seconds=whole("overflow_any_after_seconds", None),
            timeouts_before_away=whole("timeouts_before_away", 3) or 0,
        )

    def with_scope(self, branch_id: int | None, channel: str | None) -> RoutingRule:
        return replace(self, branch_id=branch_id, channel=channel)


def resolve(
    rules: Iterable[RoutingRule], branch_id: int | None, channel: str | None, default: RoutingRule
) -> RoutingRule:
    """The rule that applies to an item of `branch_id` on `channel`."""
    by_scope = {rule.scope: rule for rule in rules}
    b = branch_id if branch_id is not None else "*"
    c = channel or "*"
    for key in (f"{b}:{c}", f"{b}:*", f"*:{c}", "*:*"):
        if key in by_scope:
            return by_scope[key]
    return default
