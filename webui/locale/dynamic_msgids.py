"""Msgids that reach `gettext` as data, so Babel cannot find them where they are used.

Marking them here keeps them in `messages.pot`, so `pybabel update` neither drops nor forgets them. This
module is never imported: it exists only for `pybabel extract` (see `babel.cfg` and `make i18n`).
"""

from __future__ import annotations

from switchboard.errors import N_

DYNAMIC_MSGIDS: tuple[str, ...] = (
    # Roles, shown as `_(role.value|capitalize)` (switchboard.permissions.Role).
    N_("Admin"),
    N_("Supervisor"),
    N_("Agent"),
    N_("Marketer"),
    # Audit categories, shown as `_(entry.category)` (switchboard.audit.Category).
    N_("auth"),
    N_("record"),
    N_("report"),
    N_("admin"),
    # Audit actions, shown as `_(entry.action)` (switchboard.audit.AuditAction).
    N_("login"),
    N_("logout"),
    N_("login_failed"),
    N_("session_expired"),
    N_("create"),
    N_("update"),
    N_("delete"),
    N_("read"),
    N_("retry"),
    # Error page titles, passed to `i18n.gettext` from `webui.errors._FRIENDLY`.
    N_("Error"),
    N_("The request could not be understood."),
    N_("Please log in."),
    N_("You do not have permission to open this page."),
    N_("This page does not exist."),
    N_("This action is not allowed here."),
    N_("The upload is too large."),
    N_("Some fields need attention."),
    N_("Too many attempts. Please wait and try again."),
    N_("Something went wrong on our side. The error has been logged."),
    N_("The service is temporarily unavailable."),
)
