"""The search box and the duplicate check on PostgreSQL with many contacts and messages.

Fills a fresh database (COPY, before the search indexes of migration 0015 are built, then migrates to the
head, which builds them) with BENCH_CONTACTS contacts (default 1,000,000), one conversation each and
BENCH_MESSAGES messages (default 5,000,000) spread over them, then prints p50 / p95 of: a surname, a phone
tail, `credit AND Balti` (contacts, companies, leads, deals and messages, as an admin sees them, which is
the widest scope), the duplicate check a contact's creation runs, and a primary-key lookup in the same run
for scale. Goals: search p95 ≤ 100 ms, duplicate check p95 ≤ 20 ms.

    BENCH_CONTACTS=20000 BENCH_MESSAGES=100000 .venv/bin/python bench/search.py

BENCH_DATABASE_URL reuses an existing (already filled) database instead; BENCH_ROUNDS sets how many
times each query runs (default 200).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))

import asyncpg
from sqlalchemy import select

from bench.ingest import drop_database, fresh_database
from crm_core import duplicates
from crm_core.models import Contact
from crm_core.search import Scope, search
from crm_core.search_query import parse
from inbox.search import search_messages
from inbox.service import Viewer
from switchboard import migrate
from switchboard.db import create_engine, create_sessionmaker
from switchboard.permissions import Role

CONTACTS = int(os.environ.get("BENCH_CONTACTS", "1000000"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "5000000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "200"))
BATCH = 50_000

FIRST = [
    "Ion",
    "Vasile",
    "Maria",
    "Elena",
    "Andrei",
    "Natalia",
    "Sergiu",
    "Olga",
    "Victor",
    "Ana",
    "Mihai",
    "Irina",
]
LAST = [
    "Rusu", "Ceban", "Popa", "Lungu", "Munteanu", "Rotari", "Cojocaru", "Ciobanu", "Sârbu", "Țurcan",
    "Bălan", "Moraru", "Guțu", "Creangă", "Roșca", "Botnari", "Cebotari", "Cazacu", "Mocanu", "Racu",
]  # fmt: skip
CITIES = [
    "Chișinău",
    "Bălți",
    "Cahul",
    "Orhei",
    "Ungheni",
    "Soroca",
    "Comrat",
    "Edineț",
    "Hîncești",
    "Strășeni",
]
_TEXT = (
    "bună ziua vreau un credit de consum pentru mașină ipotecă rata dobânda luni suma lei documente buletin "
    "salariu contract sună-mă mâine mulțumesc viber telegram filiala adresa programul aprobare refuz"
)
WORDS = _TEXT.split()


def _phone(i: int) -> str:
    return f"+3736{i:07d}"


def _contacts(now: dt.datetime) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(1)
    for i in range(1, CONTACTS + 1):
        city = rng.choice(CITIES)
        yield (
            i,
            rng.choice(FIRST),
            rng.choice(LAST) if i % 97 else f"{rng.choice(LAST)}-{rng.choice(LAST)}",
            _phone(i),
            f"client{i}@mail.md" if i % 3 == 0 else None,
            f"{city}, str. {rng.choice(LAST)} {i % 200}",
            json.dumps(["vip"] if i % 50 == 0 else []),
            "{}",
            now,
            now,
        )


def _messages(now: dt.datetime) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(2)
    for i in range(1, MESSAGES + 1):
        words = rng.sample(WORDS, 8)
        if i % 5 == 0:
            words.append(rng.choice(CITIES))
        yield (
            i,
            rng.randint(1, CONTACTS),
            "in" if i % 2 else "out",
            "text",
            " ".join(words),
            "[]",
            "sent",
            now,
            "{}",
        )


async def _copy(
    conn: asyncpg.Connection, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]
) -> None:
    batch: list[tuple[Any, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            await conn.copy_records_to_table(table, records=batch, columns=columns)
            batch = []
    if batch:
        await conn.copy_records_to_table(table, records=batch, columns=columns)


async def fill(url: str) -> None:
    """Schema up to 0014, the rows by COPY, then the rest (0015 builds the search columns and indexes over
    the full tables)."""
    await migrate.upgrade(url, "0014")
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    try:
        await conn.set_type_codec(  # json's binary form is its text
            "json", encoder=str.encode, decoder=bytes.decode, schema="pg_catalog", format="binary"
        )
        cols = ["id", "first_name", "last_name", "phone", "email", "address", "tags", "consents"]
        await _copy(conn, "contacts", [*cols, "created_at", "updated_at"], _contacts(now))
        await _copy(
            conn,
            "contact_phones",
            ["contact_id", "e164", "tail", "label", "is_primary"],
            ((i, _phone(i), _phone(i)[-6:], "", True) for i in range(1, CONTACTS + 1)),
        )
        await _copy(  # every write path keeps the primary e-mail in contact_emails too
            conn,
            "contact_emails",
            ["contact_id", "email", "label", "is_primary"],
            ((i, f"client{i}@mail.md", "", True) for i in range(3, CONTACTS + 1, 3)),
        )
        await _copy(
            conn,
            "conversations",
            ["id", "contact_id", "status", "priority", "labels", "unread", "last_activity_at", "created_at"],
            ((i, i, "resolved", 0, "[]", 0, now, now) for i in range(1, CONTACTS + 1)),
        )
        msg_cols = [
            "id",
            "conversation_id",
            "direction",
            "kind",
            "body",
            "attachments",
            "status",
            "created_at",
        ]
        await _copy(conn, "messages", [*msg_cols, "meta"], _messages(now))
        for table in ("contacts", "conversations", "messages"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        print(f"loaded {CONTACTS} contacts, {MESSAGES} messages in {time.perf_counter() - started:.0f} s")
    finally:
        await conn.close()
    started = time.perf_counter()
    await migrate.upgrade(url)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    print(f"built the search indexes and analysed in {time.perf_counter() - started:.0f} s")


_BASELINE: dict[str, float] = {}


async def _timed(label: str, call: Callable[[int], Awaitable[object]]) -> None:
    for i in range(10):  # warm up
        await call(i)
    times = []
    for i in range(ROUNDS):
        started = time.perf_counter()
        await call(i)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[int(len(times) * 0.95) - 1]
    _BASELINE.setdefault("p95", p95)  # the first figure (the primary-key lookup) is the yardstick
    ratio = p95 / _BASELINE["p95"]
    print(f"{label:<40} p50 {statistics.median(times):8.2f} ms  p95 {p95:8.2f} ms  ({ratio:5.1f}x pk lookup)")


async def measure(url: str) -> None:
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    scope = Scope(0, Role.ADMIN, None)
    viewer = Viewer(0, Role.ADMIN, None)
    rng = random.Random(3)

    async def everything(text: str) -> None:
        query = parse(text)
        async with sessions() as db:
            await search(db, query, scope)
            await search_messages(db, query, viewer)

    async def pk(i: int) -> None:
        async with sessions() as db:
            await db.scalar(select(Contact).where(Contact.id == rng.randint(1, CONTACTS)))

    async def surname(i: int) -> None:
        await everything(LAST[i % len(LAST)])

    async def tail(i: int) -> None:
        await everything(_phone(rng.randint(1, CONTACTS))[-6:])

    async def credit_balti(i: int) -> None:
        await everything("credit AND Balti")

    async def duplicate_check(i: int) -> None:
        n = rng.randint(1, CONTACTS)
        candidate = duplicates.Candidate(
            first_name=FIRST[i % len(FIRST)],
            last_name=LAST[i % len(LAST)],
            phones=[_phone(n)],
            emails=[f"client{n}@mail.md"],
        )
        async with sessions() as db:
            await duplicates.find_duplicates(db, candidate)

    try:
        print(f"{CONTACTS} contacts, {MESSAGES} messages, {ROUNDS} rounds each")
        await _timed("primary-key lookup (contacts)", pk)
        await _timed("search: a surname", surname)
        await _timed("search: a phone tail (6 digits)", tail)
        await _timed("search: credit AND Balti", credit_balti)
        await _timed("duplicate check on create", duplicate_check)
    finally:
        await engine.dispose()


async def main() -> None:
    url, created = await fresh_database()
    try:
        if created is not None:
            await fill(url)
        await measure(url)
    finally:
        if created is not None:
            await drop_database(created)


if __name__ == "__main__":
    asyncio.run(main())
