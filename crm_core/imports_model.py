"""The tables of a spreadsheet import (crm_core.imports; migration 0020).

`imports` is the wizard's state and the progress a page polls: the detected columns, the mapping, the
duplicate policy, and for the phase running (dry run or the real one) how many rows are done and what became
of them. `import_files` holds the uploaded bytes apart, so polling never loads them; the file lives in the
database rather than under the data directory because the job that reads it may run in another hub process
(on another machine) than the one that took the upload, and it goes away with its import. `import_errors`
is the per-row report: refused rows with the column, the value and the reason, and rows a duplicate policy
acted on, each tagged with the phase that wrote it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from switchboard.db import Base, utcnow


class Import(Base):
    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # contacts, leads
    status: Mapped[str] = mapped_column(String(20))  # crm_core.imports.Status
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    owner_name: Mapped[str] = mapped_column(String(64), default="")
    branch_id: Mapped[int | None] = mapped_column(ForeignKey("branches.id", ondelete="SET NULL"), index=True)
    filename: Mapped[str] = mapped_column(String(200), default="")
    file_format: Mapped[str] = mapped_column(String(10))  # csv, xlsx
    file_size: Mapped[int] = mapped_column(Integer, default=0)
    columns: Mapped[list[str]] = mapped_column(default=list)
    sample: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    mapping: Mapped[list[str]] = mapped_column(default=list)  # a target key or "" per column
    policy: Mapped[str] = mapped_column(String(10), default="skip")  # skip, update, create
    phase: Mapped[str] = mapped_column(String(10), default="")  # dry_run, run: what the counts are of
    rows_done: Mapped[int] = mapped_column(Integer, default=0)  # rows of the file behind the last commit
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0)  # created with a likely duplicate noted
    dry_run: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the last dry run's counts
    error: Mapped[str | None] = mapped_column(Text)  # why the whole import stopped
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ImportFile(Base):
    __tablename__ = "import_files"

    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class RowIssue(Base):
    """One line of an import's per-row report."""

    __tablename__ = "import_errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"))
    phase: Mapped[str] = mapped_column(String(10))  # dry_run, run
    row_number: Mapped[int] = mapped_column(Integer)  # as the spreadsheet shows it (header = 1)
    outcome: Mapped[str] = mapped_column(String(10))  # refused, skipped, updated, created
    column: Mapped[str] = mapped_column(String(200), default="", server_default=text("''"))
    value: Mapped[str] = mapped_column(String(200), default="", server_default=text("''"))
    reason: Mapped[str] = mapped_column(String(500))  # in English; `params` fill it when translated
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_import_errors_import_phase_row", "import_id", "phase", "row_number"),)
