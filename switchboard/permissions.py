"""Roles, actions and the one permission matrix that every page and API call is checked against."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"  # a credit expert
    MARKETER = "marketer"


class Action(StrEnum):
    HOME_VIEW = "home.view"
    PROFILE_EDIT = "profile.edit"
    INBOX_VIEW = "inbox.view"
    CONTACTS_VIEW = "contacts.view"
    CONTACTS_EDIT = "contacts.edit"  # create and edit contacts and companies; which: crm_core.profile
    CONTACTS_IMPORT = "contacts.import"  # import contacts in bulk
    DEALS_VIEW = "deals.view"
    SCRIPTS_VIEW = "scripts.view"
    ROUTING_MANAGE = "routing.manage"
    ROUTING_RULES = "routing.rules"  # routing rules and working hours
    CAMPAIGNS_MANAGE = "campaigns.manage"
    REPORTS_VIEW = "reports.view"
    CHANNELS_MANAGE = "channels.manage"
    USERS_MANAGE = "users.manage"
    JOBS_MANAGE = "jobs.manage"
    AUDIT_VIEW = "audit.view"
    CANNED_MANAGE = "canned.manage"
    TASKS_VIEW = "tasks.view"  # "My tasks"; which tasks: crm_core.tasks.may_act
    CALLS_VIEW = "calls.view"  # the call list (CDR) and its CSV export
    CALLS_MONITOR = "calls.monitor"  # listen / whisper / barge into a live call
    CALLS_DIAL = "calls.dial"  # click-to-call from the person's own phone
    CALLS_RECORDING = "calls.recording"  # which recordings: webui.views.calls.may_listen
    CLASSIFIERS_MANAGE = "classifiers.manage"  # the vocabularies every form picks from
    SCORING_MANAGE = "scoring.manage"  # lead scoring rules and the learned model
    LISTS_EXPORT = "lists.export"  # export a filtered list of contacts, companies, leads or deals
    FIELDS_MANAGE = "fields.manage"  # custom fields, and which fields each role may not see


_ALL = frozenset(Role)
_A, _S, _G, _M = Role.ADMIN, Role.SUPERVISOR, Role.AGENT, Role.MARKETER

MATRIX: dict[Action, frozenset[Role]] = {
    Action.HOME_VIEW: _ALL,
    Action.PROFILE_EDIT: _ALL,
    Action.INBOX_VIEW: frozenset({_A, _S, _G}),
    Action.CONTACTS_VIEW: _ALL,
    Action.CONTACTS_EDIT: frozenset({_A, _S, _G}),
    Action.CONTACTS_IMPORT: frozenset({_A, _S}),
    Action.DEALS_VIEW: frozenset({_A, _S, _G}),
    Action.SCRIPTS_VIEW: frozenset({_A, _S}),
    Action.ROUTING_MANAGE: frozenset({_A, _S}),
    Action.ROUTING_RULES: frozenset({_A}),
    Action.CAMPAIGNS_MANAGE: frozenset({_A, _M}),
    Action.REPORTS_VIEW: frozenset({_A, _S, _M}),
    Action.CHANNELS_MANAGE: frozenset({_A}),
    Action.USERS_MANAGE: frozenset({_A}),
    Action.JOBS_MANAGE: frozenset({_A}),
    Action.AUDIT_VIEW: frozenset({_A}),
    Action.CANNED_MANAGE: frozenset({_A, _S}),
    Action.TASKS_VIEW: frozenset({_A, _S, _G}),
    Action.CALLS_VIEW: frozenset({_A, _S}),
    Action.CALLS_MONITOR: frozenset({_A, _S}),
    Action.CALLS_DIAL: frozenset({_A, _S, _G}),
    Action.CALLS_RECORDING: frozenset({_A, _S, _G}),
    Action.CLASSIFIERS_MANAGE: frozenset({_A}),
    Action.SCORING_MANAGE: frozenset({_A}),
    Action.LISTS_EXPORT: frozenset({_A, _S, _M}),
    Action.FIELDS_MANAGE: frozenset({_A}),
}


def can(role: str | Role, action: Action) -> bool:
    """True when `role` may perform `action`; unknown roles may do nothing."""
    try:
        return Role(role) in MATRIX[action]
    except ValueError:
        return False


def allowed_actions(role: str | Role) -> list[Action]:
    return [action for action in Action if can(role, action)]
