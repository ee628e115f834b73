"""The shape of one route declaration: path, handler and the permission it needs, in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from switchboard.permissions import Action

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Public = Literal["public"]
PUBLIC: Public = "public"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class RouteSpec:
    """`access` is an `Action` from the permission matrix, or PUBLIC for pages anyone may open (login,
    health, provider webhooks). `csrf=False` only for callers that authenticate otherwise (webhooks with
    signatures). `uses_session=False` for machine endpoints (health, metrics, static files) that should
    neither read nor set the session cookie. `sample` fills path parameters for the generated permission
    tests."""

    method: str
    path: str
    handler: Handler
    name: str
    access: Action | Public
    csrf: bool = True
    uses_session: bool = True
    sample: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")
