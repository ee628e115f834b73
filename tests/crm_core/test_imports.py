"""Spreadsheet imports of contacts and leads: the readers, the header guess, the dry run and the real run
through the jobs worker, duplicates inside the file and in the database under each policy, custom fields,
and a crash in the middle of a run."""

# ruff: noqa: RUF001 - Russian headers are Cyrillic on purpose
from __future__ import annotations

import csv
import datetime as dt
import io
import time
import zipfile
from typing import Any

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm_core import classifiers, custom_fields, idnp, import_apply, import_files, import_mapping, imports
from crm_core.contacts_model import Company, ContactCompany, ContactPhone, DuplicateCandidate
from crm_core.imports_model import Import, RowIssue
from crm_core.models import Contact, Lead
from switchboard import accounts
from switchboard.audit import SYSTEM, Actor
from switchboard.audit_model import AuditEntry
from switchboard.errors import Invalid
from switchboard.jobs import JobRegistry, Worker
from switchboard.permissions import Role

# --- the readers ------------------------------------------------------------------------------------------


def test_a_csv_is_read_with_or_without_a_bom_and_any_of_three_delimiters() -> None:
    for delimiter in (",", ";", "\t"):
        for bom in (b"", b"\xef\xbb\xbf"):
            text = delimiter.join(["Nume", "Telefon"]) + "\n" + delimiter.join(["Rusu", "069123456"]) + "\n"
            table = import_files.read_table(bom + text.encode(), import_files.CSV)
            assert table.header == ["Nume", "Telefon"], (delimiter, bom)
            assert table.sample == [["Rusu", "069123456"]] and table.total == 1


def test_quoted_fields_keep_their_newlines_and_delimiters_and_rows_are_numbered_as_in_the_sheet() -> None:
    data = b'name;address\n"Ion";"str. Mare 1;\nap. 2"\n\n"Ana";"x"\n'
    rows = list(import_files.iter_rows(data, import_files.CSV))
    assert [r.number for r in rows] == [1, 2, 4]
    assert rows[1].cells == ["Ion", "str. Mare 1;\nap. 2"]


def test_utf16_text_from_excel_is_read() -> None:
    data = "Имя\tТелефон\nИван\t069123456\n".encode("utf-16")
    table = import_files.read_table(data, import_files.detect_format(data, "x.txt"))
    assert table.header == ["Имя", "Телефон"] and table.sample == [["Иван", "069123456"]]


def _xlsx(rows: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_cells_come_typed() -> None:
    data = _xlsx(
        [
            ["Nume", "Data nașterii", "Suma", "Telefon"],
            ["Rusu", dt.datetime(1985, 4, 23), 1250.5, 37369123456],
        ]
    )
    assert import_files.detect_format(data, "a.xlsx") == import_files.XLSX
    table = import_files.read_table(data, import_files.XLSX)
    assert table.sample == [["Rusu", dt.date(1985, 4, 23), 1250.5, 37369123456]]


@pytest.mark.parametrize(
    ("data", "name", "words"),
    [
        (b"", "a.csv", "empty"),
        (b"\xd0\xcf\x11\xe0rest", "a.xls", ".xls"),
        (b"PK\x03\x04broken", "a.xlsx", "XLSX"),
        (b"name,phone\n", "a.csv", "no rows"),
        (b"\xff\x00\xfe binary \x00\x00", "a.csv", "UTF-8"),
        (b"name\n" + b"x" * 20_000 + b"\n", "a.csv", "longer than"),
        (",".join(f"c{i}" for i in range(201)).encode() + b"\n1\n", "a.csv", "more than 200 columns"),
    ],
)
def test_a_file_that_is_not_a_table_is_refused_with_a_reason(data: bytes, name: str, words: str) -> None:
    with pytest.raises(Invalid) as caught:
        fmt = import_files.detect_format(data, name)
        import_files.read_table(data, fmt)
    assert words in caught.value.message % caught.value.params


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "not a workbook")
    with pytest.raises(Invalid, match="not a valid XLSX"):
        import_files.read_table(out.getvalue(), import_files.XLSX)


# --- the header guess -------------------------------------------------------------------------------------


def test_headers_are_mapped_in_english_romanian_and_russian() -> None:
    header = ["Prenume", "Nume", "Telefon", "E-mail", "Data nașterii", "IDNP", "Filiala", "Whatever"]
    assert import_mapping.suggest("contacts", header) == [
        "first_name",
        "last_name",
        "phone",
        "email",
        "birth_date",
        "idnp",
        "branch",
        "",
    ]
    russian = ["Имя", "Фамилия", "Телефон", "Мобильный телефон", "Дата рождения", "Адрес", "Продукт"]
    assert import_mapping.suggest("leads", russian) == [
        "first_name",
        "last_name",
        "phone",
        "phone",
        "birth_date",
        "address",
        "lead.product",
    ]
    english = ["Full name", "Phone number", "Email address", "utm_source", "Requested amount", "Name"]
    assert import_mapping.suggest("leads", english) == [
        "full_name",
        "phone",
        "email",
        "lead.utm_source",
        "lead.amount",
        "",  # full name is taken by the first column
    ]


def test_a_mapping_that_cannot_work_is_refused() -> None:
    allowed = import_mapping.targets("contacts", [])
    with pytest.raises(Invalid, match="same field"):
        import_mapping.check_mapping("contacts", ["idnp", "idnp"], ["a", "b"], allowed)
    with pytest.raises(Invalid, match="at least a name"):
        import_mapping.check_mapping("contacts", ["idnp", ""], ["a", "b"], allowed)
    with pytest.raises(Invalid, match="Unknown field"):
        import_mapping.check_mapping("contacts", ["lead.product", "phone"], ["a", "b"], allowed)
    assert import_mapping.check_mapping("contacts", ["phone", "phone"], ["a", "b"], allowed) == [
        "phone",
        "phone",
    ]


# --- helpers for the runs ---------------------------------------------------------------------------------


def valid_idnp(n: int) -> str:
    body = f"2{n:011d}"
    return body + str(idnp.check_digit(body))


def bad_idnp(n: int) -> str:
    good = valid_idnp(n)
    return good[:-1] + str((int(good[-1]) + 1) % 10)


def csv_bytes(rows: list[list[str]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerows(rows)
    return out.getvalue().encode()


async def _user(
    sessions: async_sessionmaker[AsyncSession], role: Role, branch: str = "Chișinău"
) -> imports.Viewer:
    async with sessions() as db, db.begin():
        user = await accounts.create_user(
            db,
            SYSTEM,
            username=f"{role.value}{time.monotonic_ns()}",
            password="x" * 12,
            role=role,
            branch=branch,
        )
    return imports.Viewer(user.id, role, user.branch_id)


def actor_of(viewer: imports.Viewer) -> Actor:
    return Actor(viewer.user_id, f"user{viewer.user_id}")


async def _fields(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as db, db.begin():
        for data in (
            {"key": "income", "label": "Venit lunar", "kind": "number", "required": True},
            {"key": "segment", "label": "Segment", "kind": "choice", "options": "vip = VIP\nmass = Mass"},
        ):
            await custom_fields.create_definition(db, SYSTEM, "contact", custom_fields.parse_definition(data))


def _worker(sessions: async_sessionmaker[AsyncSession], batch_rows: int = 500) -> Worker:
    registry = JobRegistry()
    imports.register(registry, batch_rows=batch_rows)
    return Worker(sessions, registry, concurrency=1, backoff_base=0.01, backoff_max=0.01)


async def _upload(
    sessions: async_sessionmaker[AsyncSession],
    viewer: imports.Viewer,
    data: bytes,
    *,
    kind: str = "contacts",
    mapping: list[str] | None = None,
    policy: str = "skip",
    name: str = "people.csv",
) -> int:
    async with sessions() as db, db.begin():
        imp = await imports.create_import(
            db, actor_of(viewer), viewer, kind=kind, filename=name, data=data, max_bytes=20 << 20
        )
        await imports.set_mapping(db, actor_of(viewer), imp, mapping or imp.mapping, policy)
        return imp.id


async def _phase(
    sessions: async_sessionmaker[AsyncSession],
    viewer: imports.Viewer,
    import_id: int,
    phase: str,
    worker: Worker,
) -> Import:
    async with sessions() as db, db.begin():
        imp = await imports.get_import(db, viewer, import_id)
        await imports.start(db, actor_of(viewer), imp, phase)
    assert await worker.run_once() == 1
    async with sessions() as db:
        found = await db.get(Import, import_id)
        assert found is not None
        return found


async def _report(
    sessions: async_sessionmaker[AsyncSession], import_id: int, phase: str, outcome: str
) -> dict[int, RowIssue]:
    async with sessions() as db:
        rows = await db.scalars(
            select(RowIssue).where(
                RowIssue.import_id == import_id, RowIssue.phase == phase, RowIssue.outcome == outcome
            )
        )
        return {r.row_number: r for r in rows}


HEADER = [
    "Prenume",
    "Nume",
    "Telefon",
    "E-mail",
    "IDNP",
    "Data nașterii",
    "Filiala",
    "Venit lunar",
    "Segment",
]

BAD_KINDS: list[tuple[int, str, str]] = [  # (column index, bad value, the reason's start)
    (2, "12", "Not a phone number"),
    (4, "", "An IDNP is 13 digits"),  # value filled with a bad check digit
    (3, "ion@", "Enter an e-mail address"),
    (5, "31.02.1985", "Enter a date"),
    (7, "", "This field is required"),
    (8, "platinum", "Choose one from the list"),
    (6, "Atlantis", "No such branch"),
]


def big_file(n: int = 10_000, every: int = 20) -> tuple[bytes, dict[int, str]]:
    """`n` rows, every `every`-th one bad for one of seven reasons; returns the bytes and the bad rows
    (sheet row number → the reason's start)."""
    rows = [HEADER]
    bad: dict[int, str] = {}
    for i in range(n):
        row = [
            f"Ion{i}",
            f"Rusu{i}",
            f"+37369{i:06d}",
            f"ion{i}@mail.md",
            valid_idnp(i),
            f"{1 + i % 28:02d}.{1 + i % 12:02d}.{1950 + i % 50}",
            "Chișinău",
            str(1000 + i),
            "VIP" if i % 2 else "mass",
        ]
        if i % every == every - 1:
            column, value, reason = BAD_KINDS[(i // every) % len(BAD_KINDS)]
            row[column] = bad_idnp(i) if column == 4 else value
            bad[i + 2] = reason
        rows.append(row)
    return csv_bytes(rows), bad


async def test_ten_thousand_rows_with_five_percent_bad_report_exactly_those_and_import_the_rest(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _fields(sessions)
    admin = await _user(sessions, Role.ADMIN)
    data, bad = big_file()
    assert len(bad) == 500
    import_id = await _upload(sessions, admin, data)
    async with sessions() as db:
        imp = await db.get(Import, import_id)
        assert imp is not None and imp.mapping == [
            "first_name",
            "last_name",
            "phone",
            "email",
            "idnp",
            "birth_date",
            "branch",
            "custom.income",
            "custom.segment",
        ]
    worker = _worker(sessions)
    started = time.perf_counter()
    dry = await _phase(sessions, admin, import_id, imports.DRY_RUN, worker)
    dry_seconds = time.perf_counter() - started
    assert dry.status == imports.Status.CHECKED
    assert dry.dry_run == {"created": 9500, "updated": 0, "skipped": 0, "refused": 500, "rows": 10_000}
    refused = await _report(sessions, import_id, imports.DRY_RUN, "refused")
    assert set(refused) == set(bad)
    for number, reason in bad.items():
        assert refused[number].reason.startswith(reason), (number, refused[number].reason)
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(Contact)) == 0  # a dry run writes nothing

    started = time.perf_counter()
    done = await _phase(sessions, admin, import_id, imports.RUN, worker)
    run_seconds = time.perf_counter() - started
    print(f"dry run {dry_seconds:.1f} s, run {run_seconds:.1f} s")
    assert done.status == imports.Status.DONE
    assert (done.created, done.updated, done.skipped, done.refused, done.rows_done) == (
        9500,
        0,
        0,
        500,
        10_000,
    )
    assert set(await _report(sessions, import_id, imports.RUN, "refused")) == set(bad)
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(Contact)) == 9500
        assert await db.scalar(select(func.count()).select_from(ContactPhone)) == 9500
        audited = await db.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.record_type == "contact")
        )
        assert audited == 9500
        good = await db.scalar(select(Contact).where(Contact.phone == "+37369000001"))
        assert good is not None and good.custom == {"income": 1001, "segment": "vip"}
        assert good.birth_date == dt.date(1951, 2, 2) and good.idnp == valid_idnp(1)
        numbers = {f"+37369{n - 2:06d}" for n in bad}
        assert (
            await db.scalar(select(func.count()).select_from(Contact).where(Contact.phone.in_(numbers))) == 0
        )


async def _known(sessions: async_sessionmaker[AsyncSession], **values: Any) -> int:
    async with sessions() as db, db.begin():
        contact = Contact(**values)
        db.add(contact)
        await db.flush()
        if contact.phone:
            db.add(
                ContactPhone(
                    contact_id=contact.id, e164=contact.phone, tail=contact.phone[-6:], is_primary=True
                )
            )
        return contact.id


DUP_ROWS = [
    ["Prenume", "Nume", "Telefon", "E-mail", "Data nașterii"],
    ["Ion", "Rusu", "069000001", "ion@mail.md", ""],  # row 2: the known contact's phone
    ["Ana", "Ceban", "069000002", "ana@mail.md", ""],  # row 3: new
    ["Ana C", "", "069000009", "ANA@mail.md", ""],  # row 4: row 3's e-mail
    ["Stefan", "Lupu", "+40721000111", "", "23.04.1985"],  # row 5: likely the known Ștefan Lupu
]


@pytest.mark.parametrize(
    ("policy", "counts", "contacts"),
    [
        ("skip", (2, 0, 2, 0), 4),
        ("update", (2, 2, 0, 0), 4),
        ("create", (4, 0, 0, 0), 6),
    ],
)
async def test_duplicates_in_the_file_and_in_the_database_follow_the_policy(
    sessions: async_sessionmaker[AsyncSession], policy: str, counts: tuple[int, int, int, int], contacts: int
) -> None:
    admin = await _user(sessions, Role.ADMIN)
    known = await _known(sessions, first_name="Ion", last_name="Rusu", phone="+37369000001")
    stefan = await _known(
        sessions, first_name="Ștefan", last_name="Lupu", phone="+37360000777", birth_date=dt.date(1985, 4, 23)
    )
    import_id = await _upload(sessions, admin, csv_bytes(DUP_ROWS), policy=policy)
    worker = _worker(sessions)
    dry = await _phase(sessions, admin, import_id, imports.DRY_RUN, worker)
    done = await _phase(sessions, admin, import_id, imports.RUN, worker)
    assert (done.created, done.updated, done.skipped, done.refused) == counts
    assert dry.dry_run == dict(zip(("created", "updated", "skipped", "refused"), counts, strict=True)) | {
        "rows": 4
    }
    outcome = {"skip": "skipped", "update": "updated", "create": "created"}[policy]
    notes = await _report(sessions, import_id, imports.RUN, outcome)
    assert notes[2].reason == "Same %(what)s as contact #%(id)s." and notes[2].params == {
        "what": "phone",
        "id": known,
    }
    assert notes[4].reason == "Same %(what)s as row %(row)s." and notes[4].params == {
        "what": "email",
        "row": 3,
    }
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(Contact)) == contacts
        pairs = {(p.contact_id, p.other_id, p.reason) for p in await db.scalars(select(DuplicateCandidate))}
        lupu = await db.scalar(select(Contact.id).where(Contact.phone == "+40721000111"))
        assert lupu is not None and (min(stefan, lupu), max(stefan, lupu), "name+birth_date") in pairs
        ion = await db.get(Contact, known)
        assert ion is not None
        if policy == "update":
            assert ion.email == "ion@mail.md"  # a non-empty cell filled the known contact
            ana = await db.scalar(select(Contact).where(Contact.first_name == "Ana C"))
            assert ana is not None and ana.phone == "+37369000009" and ana.last_name == "Ceban"
        else:
            assert ion.email is None


async def test_custom_fields_are_validated_on_import_required_kind_and_choice(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _fields(sessions)
    admin = await _user(sessions, Role.ADMIN)
    rows = [
        ["Nume", "Telefon", "Venit lunar", "Segment"],
        ["A", "069000001", "1 250,50", "VIP"],
        ["B", "069000002", "", "mass"],  # required
        ["C", "069000003", "lots", "mass"],  # a number
        ["D", "069000004", "100", "gold"],  # a choice
        ["E", "069000005", "=1+1", "mass"],  # a formula
    ]
    import_id = await _upload(sessions, admin, csv_bytes(rows))
    done = await _phase(sessions, admin, import_id, imports.DRY_RUN, _worker(sessions))
    assert done.dry_run["created"] == 1 and done.dry_run["refused"] == 4
    refused = await _report(sessions, import_id, imports.DRY_RUN, "refused")
    assert {n: (r.column, r.reason) for n, r in refused.items()} == {
        3: ("Venit lunar", "This field is required."),
        4: ("Venit lunar", "Enter a number."),
        5: ("Segment", "Choose one from the list."),
        6: ("Venit lunar", "This cell holds a formula: import its value instead."),
    }
    await _phase(sessions, admin, import_id, imports.RUN, _worker(sessions))
    async with sessions() as db:
        stored = await db.scalar(select(Contact.custom).where(Contact.phone == "+37369000001"))
    assert stored == {"income": 1250.5, "segment": "vip"}


async def test_a_crash_in_the_middle_resumes_after_the_last_batch_and_imports_nothing_twice(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await _user(sessions, Role.ADMIN)
    rows = [["Nume", "Telefon"]] + [[f"P{i}", f"+37369{i:06d}"] for i in range(250)]
    rows.append(["Again", "+37369000003"])  # the same phone as row 5: a duplicate inside the file
    import_id = await _upload(sessions, admin, csv_bytes(rows))
    worker = _worker(sessions, batch_rows=50)
    await _phase(sessions, admin, import_id, imports.DRY_RUN, worker)
    real_apply = import_apply.apply
    calls = 0

    async def crashing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("the process died")
        return await real_apply(*args, **kwargs)

    monkeypatch.setattr(import_apply, "apply", crashing)
    stopped = await _phase(sessions, admin, import_id, imports.RUN, worker)
    assert stopped.status == imports.Status.RUNNING and stopped.rows_done == 100
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(Contact)) == 100
    monkeypatch.setattr(import_apply, "apply", real_apply)
    async with sessions() as db, db.begin():  # the retry is due now rather than after its backoff
        from switchboard.jobs_model import Job

        job = (await db.scalars(select(Job))).one()
        job.run_at = dt.datetime.now(dt.UTC)
    assert await worker.run_once() == 1
    async with sessions() as db:
        imp = await db.get(Import, import_id)
        assert imp is not None and imp.status == imports.Status.DONE
        assert (imp.created, imp.skipped, imp.rows_done) == (250, 1, 251)
        assert await db.scalar(select(func.count()).select_from(Contact)) == 250
        assert await db.scalar(select(func.count(func.distinct(Contact.phone))).select_from(Contact)) == 250
    skipped = await _report(sessions, import_id, imports.RUN, "skipped")
    assert list(skipped) == [252] and skipped[252].params == {"what": "phone", "row": 5}


async def test_a_leads_import_creates_scored_leads_with_their_source_and_links_companies(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as db, db.begin():
        await classifiers.seed_defaults(db)  # the products and lead sources a new hub starts with
    supervisor = await _user(sessions, Role.SUPERVISOR)
    rows = [
        ["Nume complet", "Telefon", "Sursa", "Produs", "Suma", "Termen", "utm_source", "Companie", "Status"],
        [
            "Ion Rusu",
            "069000001",
            "Facebook",
            "Credit de consum",
            "50 000",
            "24",
            "fb",
            "Moldcell SRL",
            "in work",
        ],
        ["Ana Ceban", "069000002", "", "mortgage", "", "", "", "Moldcell SRL", ""],
        ["Bad", "069000003", "Radio", "", "", "", "", "", ""],
        ["Bad2", "069000004", "", "", "-5", "", "", "", ""],
        ["Bad3", "069000005", "", "", "", "", "", "", "converted"],
    ]
    import_id = await _upload(sessions, supervisor, csv_bytes(rows), kind="leads")
    async with sessions() as db:
        imp = await db.get(Import, import_id)
        assert imp is not None and imp.mapping == [
            "full_name",
            "phone",
            "lead.source_channel",
            "lead.product",
            "lead.amount",
            "lead.term_months",
            "lead.utm_source",
            "company",
            "lead.status",
        ]
    worker = _worker(sessions)
    await _phase(sessions, supervisor, import_id, imports.DRY_RUN, worker)
    done = await _phase(sessions, supervisor, import_id, imports.RUN, worker)
    refused = await _report(sessions, import_id, imports.RUN, "refused")
    assert (done.created, done.refused) == (2, 3), {n: (r.column, r.reason) for n, r in refused.items()}
    assert refused[4].reason == "Choose a lead source from the list." and refused[4].column == "Sursa"
    assert refused[5].column == "Suma" and refused[6].column == "Status"
    async with sessions() as db:
        leads = list(await db.scalars(select(Lead).order_by(Lead.id)))
        assert [(x.source_channel, x.product, x.term_months, x.status, x.utm_source) for x in leads] == [
            ("facebook", "consumer", 24, "in_work", "fb"),
            ("import", "mortgage", None, "new", None),
        ]
        assert str(leads[0].amount) == "50000.00"
        companies = list(await db.scalars(select(Company)))
        assert [c.name for c in companies] == ["Moldcell SRL"]
        assert await db.scalar(select(func.count()).select_from(ContactCompany)) == 2
        contacts = list(await db.scalars(select(Contact).order_by(Contact.id)))
        assert [(c.first_name, c.last_name) for c in contacts] == [("Ion", "Rusu"), ("Ana", "Ceban")]
        assert all(c.branch_id == supervisor.branch_id for c in contacts)
        audited = await db.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.record_type == "lead")
        )
        assert audited == 2
        assert all(x.score_breakdown is not None for x in leads)
