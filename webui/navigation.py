"""The side navigation: one entry per room, shown only to roles the permission matrix lets in."""

from __future__ import annotations

from dataclasses import dataclass

from switchboard.errors import N_
from switchboard.permissions import Action, Role, can


@dataclass(frozen=True)
class NavItem:
    label: str  # msgid, translated in the template
    href: str
    icon: str  # Tabler icon name
    action: Action
    group: str = "work"


NAVIGATION: tuple[NavItem, ...] = (
    NavItem(N_("Home"), "/", "home", Action.HOME_VIEW),
    NavItem(N_("Inbox"), "/inbox", "messages", Action.INBOX_VIEW),
    NavItem(N_("My tasks"), "/tasks", "checklist", Action.TASKS_VIEW),
    NavItem(N_("Calls"), "/calls", "phone", Action.CALLS_VIEW),
    NavItem(N_("Canned replies"), "/inbox/canned", "message-bolt", Action.CANNED_MANAGE),
    NavItem(N_("Contacts"), "/contacts", "address-book", Action.CONTACTS_VIEW),
    NavItem(N_("Leads"), "/leads", "user-search", Action.DEALS_VIEW),
    NavItem(N_("Deals"), "/deals", "layout-kanban", Action.DEALS_VIEW),
    NavItem(N_("Sales scripts"), "/scripts", "list-details", Action.SCRIPTS_VIEW),
    NavItem(N_("Routing"), "/routing", "arrows-split", Action.ROUTING_MANAGE),
    NavItem(N_("Campaigns"), "/campaigns", "speakerphone", Action.CAMPAIGNS_MANAGE),
    NavItem(N_("Reports"), "/reports", "chart-bar", Action.REPORTS_VIEW),
    NavItem(N_("Channels"), "/admin/channels", "plug-connected", Action.CHANNELS_MANAGE, "admin"),
    NavItem(N_("Users"), "/admin/users", "users", Action.USERS_MANAGE, "admin"),
    NavItem(N_("Classifiers"), "/admin/classifiers", "list-tree", Action.CLASSIFIERS_MANAGE, "admin"),
    NavItem(N_("Lead scoring"), "/admin/scoring", "target-arrow", Action.SCORING_MANAGE, "admin"),
    NavItem(N_("Custom fields"), "/admin/custom-fields", "forms", Action.FIELDS_MANAGE, "admin"),
    NavItem(N_("Field visibility"), "/admin/field-visibility", "eye-off", Action.FIELDS_MANAGE, "admin"),
    NavItem(N_("Jobs"), "/admin/jobs", "clock-play", Action.JOBS_MANAGE, "admin"),
    NavItem(N_("Audit log"), "/admin/audit", "shield-search", Action.AUDIT_VIEW, "admin"),
)


def navigation_for(role: Role) -> list[NavItem]:
    return [item for item in NAVIGATION if can(role, item.action)]
