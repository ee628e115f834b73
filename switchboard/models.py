"""Imports every room's table modules so that `Base.metadata` is complete (for Alembic and tests)."""

from __future__ import annotations

from channels import accounts_model as channel_accounts_model
from channels import webchat_model
from crm_core import contacts_model as crm_contacts_model
from crm_core import (
    custom_fields_model,
    funnel_model,
    imports_model,
    list_views_model,
    merge_model,
    scoring_model,
    tasks_model,
)
from crm_core import models as crm_models
from inbox import calls_model, canned_model, notifications_model
from inbox import models as inbox_models
from router import tables as router_tables
from scripts_engine import tables as scripts_tables
from switchboard import accounts_model, audit_model, jobs_model
from switchboard.db import Base

metadata = Base.metadata

__all__ = [
    "accounts_model",
    "audit_model",
    "calls_model",
    "canned_model",
    "channel_accounts_model",
    "crm_contacts_model",
    "crm_models",
    "custom_fields_model",
    "funnel_model",
    "imports_model",
    "inbox_models",
    "jobs_model",
    "list_views_model",
    "merge_model",
    "metadata",
    "notifications_model",
    "router_tables",
    "scoring_model",
    "scripts_tables",
    "tasks_model",
    "webchat_model",
]
