"""Exports of a filtered list (`/api/v1/lists/{entity}/export.csv` and `.xlsx`): exactly the rows the list
shows the caller — their visibility rule, their filter and search, the columns they chose minus the fields
hidden from their role — as a person reads them (labels, names, ISO dates).

A contact center's data leaves the building here, so every export is audited before its first byte (who,
which list, filter, columns and how many rows: an interrupted download is still on record), is capped at
`export_max_rows` (refused with the count, never cut silently), and is guarded against formula injection:
a CSV text cell starting with `= + - @`, a tab or a CR gets a leading `'`; in XLSX such text is written
as a string cell, never a formula. Rows come from one streamed query in batches; the CSV is written as it
is read, the XLSX through openpyxl's write-only workbook (rows go to a temporary file, not to memory).
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import logging
import tempfile
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from aiohttp import hdrs, web
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from crm_core import list_views
from crm_core.list_fields import Catalog
from crm_core.list_views import Row
from switchboard import audit
from switchboard.audit import AuditAction, Category
from switchboard.errors import N_, TooLarge
from webui import i18n, keys
from webui.security import client_ip, current_user
from webui.views.calls import safe_cell
from webui.views.lists import (
    Asked,
    ListKind,
    catalog_for,
    cell_text,
    kind_of_path,
    label_of,
    read_request,
    scope_of,
    search_clause,
)

log = logging.getLogger(__name__)

BATCH = 1000
XLSX_CHUNK = 256 * 1024
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_cell(catalog: Catalog, name: str, value: Any) -> str:
    """Numbers as they are; text as the page shows it, guarded against formulas."""
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return cell_text(catalog, name, value)
    return str(safe_cell(cell_text(catalog, name, value)))


def _csv_lines(rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def xlsx_cell(sheet: WriteOnlyWorksheet, catalog: Catalog, name: str, value: Any) -> Any:
    """Numbers and dates as typed cells (datetimes in UTC, as the page shows them), the rest as text;
    text that a spreadsheet would take for a formula as an explicit string cell."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, int | float | Decimal | dt.date) and not isinstance(value, bool):
        return value
    text = ILLEGAL_CHARACTERS_RE.sub("", cell_text(catalog, name, value))
    if not text.startswith(_FORMULA_START):
        return text
    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"  # openpyxl would store "=…" as a formula
    return cell


def _append(sheet: WriteOnlyWorksheet, catalog: Catalog, columns: Sequence[str], rows: list[Row]) -> None:
    for row in rows:
        sheet.append([xlsx_cell(sheet, catalog, name, row.cells.get(name, "")) for name in columns])


def _headers(kind: ListKind, fmt: str) -> dict[str, str]:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M")
    return {
        hdrs.CONTENT_TYPE: "text/csv; charset=utf-8" if fmt == "csv" else _XLSX,
        hdrs.CONTENT_DISPOSITION: f'attachment; filename="{kind.slug}-{stamp}.{fmt}"',
        hdrs.CACHE_CONTROL: "private, no-store",
        "X-Content-Type-Options": "nosniff",
    }


async def _audit(request: web.Request, kind: ListKind, asked: Asked, fmt: str, total: int) -> None:
    user = current_user(request)
    async with request.app[keys.SESSIONS]() as db, db.begin():
        await audit.record(
            db,
            user.actor(client_ip(request)),
            category=Category.REPORT,
            module="crm",
            action=AuditAction.READ,
            record_type="list_export",
            record_id=kind.entity,
            changes={
                "format": [None, fmt],
                "rows": [None, total],
                "filters": [None, asked.query.filters_json()],
                "columns": [None, list(asked.query.columns)],
                "sort": [None, asked.query.sort],
                "q": [None, asked.q],
                "view": [None, asked.view.id if asked.view else None],
            },
            detail=f"export {kind.slug} as {fmt}: {total} rows",
        )


async def _export(request: web.Request, fmt: str) -> web.StreamResponse:
    user = current_user(request)
    kind = kind_of_path(request, user)
    scope = scope_of(user)
    cap = request.app[keys.SETTINGS].export_max_rows
    async with request.app[keys.SESSIONS]() as db:
        catalog = await catalog_for(db, user, kind.entity)
        asked = await read_request(db, user, catalog, request.query)
        extra = search_clause(kind.entity, asked.q, request.app[keys.SETTINGS])
        total = await list_views.count(db, catalog, asked.query, scope, extra=extra)
    if total > cap:
        raise TooLarge(
            N_("%(total)s rows match; an export holds at most %(max)s. Narrow the filter and export again."),
            field="filters",
            total=total,
            max=cap,
        )
    await _audit(request, kind, asked, fmt, total)
    columns = asked.query.columns
    header = [label_of(catalog, name) for name in columns]
    response = web.StreamResponse(headers=_headers(kind, fmt))
    written = 0
    async with request.app[keys.SESSIONS]() as db:
        batches = list_views.stream(db, catalog, asked.query, scope, limit=cap, batch=BATCH, extra=extra)
        if fmt == "csv":
            await response.prepare(request)
            await response.write("\ufeff".encode() + _csv_lines([[str(safe_cell(h)) for h in header]]))
            async for rows in batches:
                lines = [[csv_cell(catalog, n, r.cells.get(n, "")) for n in columns] for r in rows]
                await response.write(_csv_lines(lines))
                written += len(rows)
        else:
            book = Workbook(write_only=True)
            sheet = book.create_sheet(i18n.gettext(kind.title)[:31])
            sheet.append([xlsx_cell(sheet, catalog, "", h) for h in header])
            async for rows in batches:
                await asyncio.to_thread(_append, sheet, catalog, columns, rows)
                written += len(rows)
    if fmt == "xlsx":
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as out:
            await asyncio.to_thread(book.save, out)
            out.seek(0)
            await response.prepare(request)
            while chunk := await asyncio.to_thread(out.read, XLSX_CHUNK):
                await response.write(chunk)
    await response.write_eof()
    log.info("lists: %s exported %d %s as %s", user.username, written, kind.slug, fmt)
    return response


async def export_csv(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/lists/{entity}/export.csv` with the list's parameters (`filters`, `columns`, `sort`,
    `q`, `view`): UTF-8 with a BOM so that Excel reads Romanian and Cyrillic names."""
    return await _export(request, "csv")


async def export_xlsx(request: web.Request) -> web.StreamResponse:
    """`GET /api/v1/lists/{entity}/export.xlsx` with the list's parameters."""
    return await _export(request, "xlsx")
