"""Spreadsheet imports of contacts and leads, the front door: upload (the file checked and its columns
guessed), mapping and duplicate policy, a dry run, the real run, and the report.

Both runs are jobs (`IMPORT_JOB`) that read the file once and go through it a batch at a time
(`Settings.import_batch_rows`), each batch in one transaction together with the import's progress, fenced
on the rows done so far: a crash loses at most the batch in flight, the retried job resumes after the
last committed batch, and no row is ever written twice. The dry run makes every decision the real run
makes (`import_apply.plan`) and writes nothing but its report, so its counts are the real run's.

Who sees an import: its owner; supervisors the imports of their branch; admins all. Functions take the
caller's session and never commit.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import custom_fields, import_apply, import_files, import_mapping
from crm_core.import_apply import CREATED, REFUSED, SKIPPED, UPDATED, Decision, Planned, Refusal, Seen
from crm_core.import_rows import Importer, Lookups, RowError, RowInput, load_lookups, parse_row
from crm_core.imports_model import Import, ImportFile, RowIssue
from switchboard import audit, jobs
from switchboard.accounts_model import User
from switchboard.audit import Actor, AuditAction
from switchboard.db import cast_table, utcnow
from switchboard.errors import N_, Conflict, Invalid, NotFound, TooLarge
from switchboard.jobs import JobContext, JobRegistry
from switchboard.permissions import Role

log = logging.getLogger(__name__)

IMPORT_JOB = "crm.import"
DRY_RUN = "dry_run"
RUN = "run"
PHASES = (DRY_RUN, RUN)
BATCH_ROWS = 500
REPORT_LIMIT = 100  # report lines the progress answer carries
_ISSUES = cast_table(RowIssue)


class Status(StrEnum):
    UPLOADED = "uploaded"  # columns found, mapping guessed
    MAPPED = "mapped"  # mapping and policy chosen
    CHECKING = "checking"  # dry run queued or running
    CHECKED = "checked"  # dry run done: the real run may start
    RUNNING = "running"  # real run queued or running
    DONE = "done"
    FAILED = "failed"


EDITABLE = (Status.UPLOADED, Status.MAPPED, Status.CHECKED, Status.FAILED)


@dataclass(frozen=True)
class Viewer:
    user_id: int
    role: Role
    branch_id: int | None


def may_see(viewer: Viewer, imp: Import) -> bool:
    if viewer.role is Role.ADMIN or imp.owner_id == viewer.user_id:
        return True
    return viewer.role is Role.SUPERVISOR and imp.branch_id is not None and imp.branch_id == viewer.branch_id


async def get_import(session: AsyncSession, viewer: Viewer, import_id: int, *, lock: bool = False) -> Import:
    """The import, or NotFound when it is missing or not the viewer's to see (the same answer)."""
    query = select(Import).where(Import.id == import_id)
    if lock:
        query = query.with_for_update()
    imp = await session.scalar(query)
    if imp is None or not may_see(viewer, imp):
        raise NotFound(N_("No such import."))
    return imp


async def list_imports(session: AsyncSession, viewer: Viewer, limit: int = 20) -> list[Import]:
    query = select(Import).order_by(Import.id.desc()).limit(limit)
    if viewer.role is Role.SUPERVISOR and viewer.branch_id is not None:
        query = query.where((Import.owner_id == viewer.user_id) | (Import.branch_id == viewer.branch_id))
    elif viewer.role is not Role.ADMIN:
        query = query.where(Import.owner_id == viewer.user_id)
    return list(await session.scalars(query))


async def _targets(session: AsyncSession, kind: str) -> list[import_mapping.Target]:
    contact_fields = await custom_fields.definitions(session, "contact")
    lead_fields = await custom_fields.definitions(session, "lead")
    return import_mapping.targets(kind, contact_fields, lead_fields)


async def targets(session: AsyncSession, kind: str) -> list[import_mapping.Target]:
    """The fields a column of a `kind` import may go into (the mapping step's choices)."""
    return await _targets(session, kind)


async def create_import(
    session: AsyncSession,
    actor: Actor,
    viewer: Viewer,
    *,
    kind: str,
    filename: str,
    data: bytes,
    max_bytes: int,
) -> Import:
    """Check the uploaded file, keep it, and guess the mapping from its header."""
    import_mapping.check_kind(kind)
    if len(data) > max_bytes:
        raise TooLarge(N_("The file is larger than %(n)s MB."), field="file", n=max_bytes >> 20)
    if not data:
        raise Invalid(N_("The file is empty."), field="file")
    fmt = import_files.detect_format(data, filename)
    table = import_files.read_table(data, fmt)
    if len(table.header) > import_files.MAX_COLUMNS:
        raise Invalid(N_("At most %(n)s columns."), field="file", n=import_files.MAX_COLUMNS)
    contact_fields = await custom_fields.definitions(session, "contact")
    lead_fields = await custom_fields.definitions(session, "lead")
    imp = Import(
        kind=kind,
        status=Status.UPLOADED.value,
        owner_id=viewer.user_id,
        owner_name=(actor.username or "")[:64],
        branch_id=viewer.branch_id,
        filename=filename[-200:],
        file_format=fmt,
        file_size=len(data),
        columns=table.header,
        sample=[import_files.jsonable(r)[: len(table.header)] for r in table.sample],
        total_rows=table.total,
        mapping=import_mapping.suggest(kind, table.header, contact_fields, lead_fields),
        policy=import_apply.SKIP,
        phase="",
        rows_done=0,
        created=0,
        updated=0,
        skipped=0,
        refused=0,
        flagged=0,
        dry_run={},
    )
    session.add(imp)
    await session.flush()
    session.add(ImportFile(import_id=imp.id, content=data))
    await audit.record_change(
        session,
        actor,
        module="imports",
        action=AuditAction.CREATE,
        record_type="import",
        record_id=imp.id,
        changes=audit.diff({}, {"kind": kind, "file": imp.filename, "rows": table.total}),
    )
    await session.flush()
    return imp


async def set_mapping(
    session: AsyncSession, actor: Actor, imp: Import, mapping: Sequence[object], policy: str
) -> Import:
    """Choose what each column goes into and what a duplicate does; a dry run is needed again after."""
    if imp.status not in EDITABLE:
        raise Conflict(N_("This import is running or finished; start a new one."), field="mapping")
    if policy not in import_apply.POLICIES:
        raise Invalid(N_("Choose skip, update or create."), field="policy")
    allowed = await _targets(session, imp.kind)
    checked = import_mapping.check_mapping(imp.kind, list(mapping), imp.columns, allowed)
    before = {"mapping": ", ".join(imp.mapping), "policy": imp.policy}
    imp.mapping, imp.policy, imp.status, imp.dry_run = checked, policy, Status.MAPPED.value, {}
    await session.flush()
    changes = audit.diff(before, {"mapping": ", ".join(checked), "policy": policy})
    if changes:
        await audit.record_change(
            session,
            actor,
            module="imports",
            action=AuditAction.UPDATE,
            record_type="import",
            record_id=imp.id,
            changes=changes,
        )
    return imp


async def start(
    session: AsyncSession, actor: Actor, imp: Import, phase: str, *, max_attempts: int = 8
) -> Import:
    """Queue the dry run (after a mapping) or the real run (after a dry run of the same mapping)."""
    if phase == DRY_RUN:
        if imp.status not in (Status.MAPPED, Status.CHECKED, Status.FAILED) or not imp.mapping:
            raise Conflict(N_("Choose the mapping first."), field="mapping")
        status = Status.CHECKING
    elif phase == RUN:
        if imp.status != Status.CHECKED and not (imp.status == Status.FAILED and imp.phase == RUN):
            raise Conflict(N_("Run the dry run first."), field="status")
        status = Status.RUNNING
    else:
        raise Invalid(N_("Unknown step."), field="phase")
    resume = imp.status == Status.FAILED and imp.phase == phase
    if not resume:
        await session.execute(delete(RowIssue).where(RowIssue.import_id == imp.id, RowIssue.phase == phase))
        imp.rows_done = imp.created = imp.updated = imp.skipped = imp.refused = imp.flagged = 0
        imp.started_at = utcnow()
    imp.status, imp.phase, imp.error, imp.finished_at = status.value, phase, None, None
    await session.flush()
    await jobs.enqueue(session, IMPORT_JOB, {"import_id": imp.id, "phase": phase}, max_attempts=max_attempts)
    await audit.record_change(
        session,
        actor,
        module="imports",
        action=AuditAction.UPDATE,
        record_type="import",
        record_id=imp.id,
        changes={"status": [None, status.value]},
        detail=phase,
    )
    return imp


# --- the report -----------------------------------------------------------------------------------------


async def issues(
    session: AsyncSession, imp: Import, *, outcome: str | None = None, limit: int | None = REPORT_LIMIT
) -> list[RowIssue]:
    """The report of the phase shown (the last one started), in row order."""
    query = select(RowIssue).where(RowIssue.import_id == imp.id, RowIssue.phase == (imp.phase or DRY_RUN))
    if outcome is not None:
        query = query.where(RowIssue.outcome == outcome)
    query = query.order_by(RowIssue.row_number, RowIssue.id)
    if limit is not None:
        query = query.limit(limit)
    return list(await session.scalars(query))


def progress(imp: Import) -> dict[str, Any]:
    total = imp.total_rows or 0
    return {
        "id": imp.id,
        "kind": imp.kind,
        "status": imp.status,
        "phase": imp.phase,
        "filename": imp.filename,
        "total": total,
        "done": imp.rows_done,
        "percent": round(100 * imp.rows_done / total) if total else 100,
        "counts": {
            CREATED: imp.created,
            UPDATED: imp.updated,
            SKIPPED: imp.skipped,
            REFUSED: imp.refused,
            "flagged": imp.flagged,
        },
        "dry_run": imp.dry_run or None,
        "policy": imp.policy,
        "error": imp.error,
    }


GUARDED = ("=", "+", "-", "@", "\t", "\r")


def guard_cell(text: str) -> str:
    """A cell a spreadsheet would run as a formula, made text (OWASP CSV injection)."""
    return "'" + text if text.startswith(GUARDED) else text


async def refused_csv(session: AsyncSession, imp: Import, translate: Any = None) -> bytes:
    """The refused rows as they were in the file, with an "error" column, for fixing and importing again:
    UTF-8 with a BOM (Excel reads it), formula-like cells defused."""
    reasons: dict[int, list[str]] = {}
    for issue in await issues(session, imp, outcome=REFUSED, limit=None):
        text = translate(issue.reason, issue.params) if translate else issue.reason % issue.params
        where = f"{issue.column}: " if issue.column else ""
        reasons.setdefault(issue.row_number, []).append(f"{where}{text}")
    data = await session.scalar(select(ImportFile.content).where(ImportFile.import_id == imp.id))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([guard_cell(h) for h in [*imp.columns, "error"]])
    if data is not None and reasons:
        for row in import_files.iter_rows(data, imp.file_format):
            if row.number in reasons:
                cells = import_files.jsonable(row.cells) + [""] * (len(imp.columns) - len(row.cells))
                writer.writerow(
                    [guard_cell(c) for c in [*cells[: len(imp.columns)], "; ".join(reasons[row.number])]]
                )
    return "\ufeff".encode() + out.getvalue().encode("utf-8")


# --- running --------------------------------------------------------------------------------------------


class _Superseded(Exception):
    """Another worker moved this import on (or it was restarted): this one stops without writing."""


@dataclass
class _Run:
    imp_id: int
    phase: str
    kind: str
    policy: str
    columns: list[str]
    mapping: list[str]
    actor: Actor
    look: Lookups
    seen: Seen


def _issue_rows(import_id: int, phase: str, planned: Sequence[Planned]) -> list[dict[str, Any]]:
    rows = []
    for item in planned:
        if isinstance(item, Refusal):
            e = item.error
            rows.append((item.number, REFUSED, e.column, e.value, e.message, e.params))
        elif item.note is not None:
            rows.append((item.row.number, item.outcome, "", "", item.note[0], item.note[1]))
    return [
        {
            "import_id": import_id,
            "phase": phase,
            "row_number": number,
            "outcome": outcome,
            "column": column[:200],
            "value": value[:200],
            "reason": reason[:500],
            "params": {k: v if isinstance(v, int | float) else str(v)[:200] for k, v in params.items()},
        }
        for number, outcome, column, value, reason, params in rows
    ]


async def _batch(
    sessions: async_sessionmaker[AsyncSession], run: _Run, rows: list[import_files.Row], done_before: int
) -> None:
    async with sessions() as session, session.begin():
        planned: list[Planned] = []
        valid: list[RowInput] = []
        for row in rows:
            try:
                valid.append(parse_row(row.number, run.columns, run.mapping, row.cells, run.look, run.kind))
            except RowError as exc:
                planned.append(Refusal(row.number, exc))
        planned += await import_apply.plan(session, valid, policy=run.policy, look=run.look, seen=run.seen)
        flagged = 0
        if run.phase == RUN:
            outcome = await import_apply.apply(
                session, run.actor, run.imp_id, planned, look=run.look, seen=run.seen
            )
            late = {r.number for r in outcome.refusals}
            planned = [p for p in planned if not (isinstance(p, Decision) and p.row.number in late)]
            planned += outcome.refusals
            flagged = outcome.flagged
        planned.sort(key=lambda p: p.number if isinstance(p, Refusal) else p.row.number)
        report = _issue_rows(run.imp_id, run.phase, planned)
        if report:
            await session.execute(insert(_ISSUES), report)
        counts = {CREATED: 0, UPDATED: 0, SKIPPED: 0, REFUSED: 0}
        for p in planned:
            counts[REFUSED if isinstance(p, Refusal) else p.outcome] += 1
        moved = await session.execute(
            update(Import)
            .where(Import.id == run.imp_id, Import.phase == run.phase, Import.rows_done == done_before)
            .values(
                rows_done=done_before + len(rows),
                created=Import.created + counts[CREATED],
                updated=Import.updated + counts[UPDATED],
                skipped=Import.skipped + counts[SKIPPED],
                refused=Import.refused + counts[REFUSED],
                flagged=Import.flagged + flagged,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(moved, "rowcount", 0) != 1:
            raise _Superseded()


async def _rebuild(session: AsyncSession, run: _Run, rows: list[import_files.Row]) -> None:
    """After a crash: learn the rows already committed (their keys), so duplicates of them inside the file
    are still told apart. Their contacts are in the database now; refused rows are left out."""
    refused = set(
        await session.scalars(
            select(RowIssue.row_number).where(
                RowIssue.import_id == run.imp_id, RowIssue.phase == run.phase, RowIssue.outcome == REFUSED
            )
        )
    )
    for row in rows:
        if row.number in refused:
            continue
        try:
            parsed = parse_row(row.number, run.columns, run.mapping, row.cells, run.look, run.kind)
        except RowError:
            continue
        for kind, value in import_apply.row_keys(parsed.profile):
            run.seen.keys.setdefault(f"{kind}:{value}", (("row", row.number), row.number))


async def run_phase(
    sessions: async_sessionmaker[AsyncSession],
    import_id: int,
    phase: str,
    *,
    batch_rows: int = BATCH_ROWS,
    region: str = "MD",
) -> bool:
    """Go through the file from the last committed batch; False when the import is not this phase's any
    more (a stale job). `region`: where numbers without a country code are read."""
    expected = Status.CHECKING if phase == DRY_RUN else Status.RUNNING
    async with sessions() as session:
        imp = await session.get(Import, import_id)
        if imp is None or imp.phase != phase or imp.status != expected:
            return False
        data = await session.scalar(select(ImportFile.content).where(ImportFile.import_id == import_id))
        owner = await session.get(User, imp.owner_id) if imp.owner_id is not None else None
        if data is None or owner is None or not owner.active:
            await _fail(
                sessions, import_id, phase, N_("The file or the user who started the import is gone.")
            )
            return True
        importer = Importer(owner.id, Role(owner.role), owner.branch_id)
        run = _Run(
            imp_id=import_id,
            phase=phase,
            kind=imp.kind,
            policy=imp.policy,
            columns=list(imp.columns),
            mapping=list(imp.mapping),
            actor=Actor(owner.id, owner.username),
            look=await load_lookups(session, importer, region=region),
            seen=Seen(),
        )
        done = imp.rows_done
    try:
        rows = import_files.iter_rows(data, imp.file_format)
        next(rows, None)  # the header
        committed: list[import_files.Row] = []
        batch: list[import_files.Row] = []
        seen_rows = 0
        for row in rows:
            seen_rows += 1
            if seen_rows <= done:
                committed.append(row)
                continue
            if committed:
                async with sessions() as session:
                    await _rebuild(session, run, committed)
                committed = []
            batch.append(row)
            if len(batch) >= batch_rows:
                await _batch(sessions, run, batch, done)
                done += len(batch)
                batch = []
        if batch:
            await _batch(sessions, run, batch, done)
    except _Superseded:
        log.info("import %s: %s moved on elsewhere; this run stops", import_id, phase)
        return False
    except Invalid as exc:  # the file was checked at upload; a change of limits can still refuse it
        await _fail(sessions, import_id, phase, exc.message % exc.params)
        return True
    await _finish(sessions, import_id, phase)
    return True


async def _fail(sessions: async_sessionmaker[AsyncSession], import_id: int, phase: str, why: str) -> None:
    async with sessions() as session, session.begin():
        await session.execute(
            update(Import)
            .where(Import.id == import_id, Import.phase == phase)
            .values(status=Status.FAILED.value, error=why[:2000], finished_at=utcnow())
        )


async def _finish(sessions: async_sessionmaker[AsyncSession], import_id: int, phase: str) -> None:
    async with sessions() as session, session.begin():
        imp = await session.get(Import, import_id, with_for_update=True)
        if imp is None or imp.phase != phase:
            return
        counts = {CREATED: imp.created, UPDATED: imp.updated, SKIPPED: imp.skipped, REFUSED: imp.refused}
        if phase == DRY_RUN:
            imp.status, imp.dry_run = Status.CHECKED.value, {**counts, "rows": imp.rows_done}
        else:
            imp.status = Status.DONE.value
        imp.finished_at = utcnow()
        await audit.record_change(
            session,
            Actor(imp.owner_id, imp.owner_name),
            module="imports",
            action=AuditAction.UPDATE,
            record_type="import",
            record_id=imp.id,
            changes={"status": [None, imp.status]},
            detail=", ".join(f"{k} {v}" for k, v in counts.items()),
        )
    log.info("import %s: %s finished: %s", import_id, phase, counts)


def job_handler(batch_rows: int = BATCH_ROWS, region: str = "MD") -> jobs.JobHandler:
    async def handle(ctx: JobContext, payload: dict[str, Any]) -> None:
        import_id, phase = payload.get("import_id"), payload.get("phase")
        if not isinstance(import_id, int) or phase not in PHASES:
            raise jobs.PermanentJobError("bad import job payload")
        try:
            await run_phase(ctx.sessions, import_id, phase, batch_rows=batch_rows, region=region)
        except Exception as exc:
            if ctx.attempt >= ctx.max_attempts:
                await _fail(ctx.sessions, import_id, phase, f"{type(exc).__name__}")
            raise

    return handle


def register(registry: JobRegistry, *, batch_rows: int = BATCH_ROWS, region: str = "MD") -> None:
    """The import job, with the hub's batch size and phone region (`Settings`)."""
    registry.add(IMPORT_JOB, job_handler(batch_rows, region))


async def row_count(session: AsyncSession, imp: Import, outcome: str) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(RowIssue)
            .where(RowIssue.import_id == imp.id, RowIssue.phase == imp.phase, RowIssue.outcome == outcome)
        )
        or 0
    )
