"""The home page and each room's front page."""

from __future__ import annotations

from aiohttp import web

from switchboard import jobs
from switchboard.errors import N_
from switchboard.permissions import Action, can
from webui import keys
from webui.navigation import NAVIGATION
from webui.security import current_user
from webui.templating import render


async def home(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    job_counts = None
    if can(user.role, Action.JOBS_MANAGE):
        async with request.app[keys.SESSIONS]() as db:
            job_counts = await jobs.job_counts(db)
    rooms = [item for item in NAVIGATION if item.href != "/" and can(user.role, item.action)]
    return await render("home.html", request, {"rooms": rooms, "job_counts": job_counts})


# What each room will hold, shown on its front page until the room's own pages replace it.
ROOM_PAGES: dict[str, tuple[str, str]] = {
    "/contacts": (N_("Contacts"), N_("Customers and companies, their leads and history.")),
    "/deals": (N_("Deals"), N_("The sales funnel: deals by stage.")),
    "/scripts": (N_("Sales scripts"), N_("Step-by-step scripts that guide experts through a dialogue.")),
    "/campaigns": (N_("Campaigns"), N_("Templated bulk messages to customer segments.")),
    "/reports": (N_("Reports"), N_("Load, conversion and channel performance.")),
}


async def room(request: web.Request) -> web.StreamResponse:
    title, description = ROOM_PAGES[request.path]
    return await render("room.html", request, {"title": title, "description": description})
