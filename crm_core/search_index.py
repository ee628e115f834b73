"""What the search box looks in, and how each engine indexes it (migration 0015 builds it from here).

One text document per record, per kind: a contact's names, primary phone and e-mail, IDNP, address and
tags; a company's name, fiscal code, industry and address; a lead's source, campaign, UTM, product and
status; a deal's product, status and loss reason; a message's body. A phone number is also written with
its digits reversed behind a letter (`+37369123456` → `r65432196373`), so the end of a number is a word's
beginning, which both engines find with a prefix query: "123456" finds "+37369123456" without pg_trgm.

- PostgreSQL: a stored generated column `search_vector` = `to_tsvector('simple', fold(document))` on each
  table, with a GIN index, where fold turns ASCII punctuation into spaces and Latin diacritics into plain
  letters (`translate`, which is immutable, unlike `unaccent`); `tsvector_sql()` is the one place the
  expression is written, and changing it needs a new migration. Stored rather than an expression index so
  that checking one row is cheap: for a common word ("Rusu", a tenth of the base) the planner walks the
  newest rows and stops at the twentieth hit instead of fetching every match from the heap to sort them;
  for a rare one it asks the index. The models do not declare the column, so the ORM never loads it.
- SQLite: an FTS5 table `<table>_fts` (rowid = the record's id, one column `doc`, tokenizer unicode61 with
  diacritics removed) kept in step by triggers on insert, update of the indexed columns, and delete.
"""

from __future__ import annotations

import string
import unicodedata

from crm_core.search_query import PHONE_MARK

# table → the columns of its document (text columns; `tags` is JSON and is indexed as its text)
DOCUMENTS: dict[str, tuple[str, ...]] = {
    "contacts": ("first_name", "last_name", "phone", "email", "idnp", "address", "tags"),
    "companies": ("name", "fiscal_code", "industry", "address"),
    "leads": (
        "source_channel",
        "campaign",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_content",
        "utm_term",
        "product",
        "status",
        "junk_reason",
    ),
    "deals": ("product", "status", "lost_reason"),
    "messages": ("body",),
}
PHONE_COLUMNS = {"contacts": "phone"}
JSON_COLUMNS = frozenset({"tags"})
MAX_PHONE_DIGITS = 15  # E.164
# a field hidden by role (`crm_core.field_visibility`) that stands for several columns of a document
FIELD_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {"contacts": {"name": ("first_name", "last_name")}}


def hidden_columns(table: str, hidden: frozenset[str]) -> frozenset[str]:
    """The columns of `table`'s document that a reader who may not see the fields `hidden` may not see."""
    out = {column for column in DOCUMENTS[table] if column in hidden}
    for name, columns in FIELD_COLUMNS.get(table, {}).items():
        if name in hidden:
            out.update(columns)
    return frozenset(out)


def fts_table(table: str) -> str:
    return f"{table}_fts"


PG_COLUMN = "search_vector"


def is_search_object(name: str) -> bool:
    """A search index of ours, its column, an FTS5 table or one of its shadow tables: schema comparisons
    leave them alone (the models do not declare them)."""
    return name == PG_COLUMN or any(
        name in (fts_table(t), pg_index_name(t)) or name.startswith(fts_table(t) + "_") for t in DOCUMENTS
    )


def _folding() -> tuple[str, str]:
    """`translate()`'s from / to strings: ASCII punctuation → space, Latin letters with diacritics → the
    plain lower-case letter (what `crm_core.search_query.fold` does to a query)."""
    source = [c for c in string.punctuation]
    target = [" "] * len(source)
    for code in [*range(0xC0, 0x250), *range(0x1E00, 0x1F00)]:
        char = chr(code)
        base = unicodedata.normalize("NFKD", char)[0]
        if base != char and base.isascii() and base.isalpha():
            source.append(char)
            target.append(base.lower())
    return "".join(source), "".join(target)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pg_document(table: str) -> str:
    parts = []
    for column in DOCUMENTS[table]:
        value = f"{column}::text" if column in JSON_COLUMNS else column
        parts.append(f"coalesce({value}, '')")
    phone = PHONE_COLUMNS.get(table)
    if phone is not None:
        parts.append(
            f"CASE WHEN {phone} IS NULL THEN '' ELSE '{PHONE_MARK}' || reverse(replace({phone}, '+', '')) END"
        )
    return " || ' ' || ".join(parts)


def tsvector_sql(table: str) -> str:
    """The expression of `table`'s `search_vector` column on PostgreSQL."""
    source, target = _folding()
    return (
        f"to_tsvector('simple'::regconfig, lower(translate({_pg_document(table)}, "
        f"{_literal(source)}, {_literal(target)})))"
    )


def pg_index_name(table: str) -> str:
    return f"ix_{table}_search"


def pg_ddl(table: str) -> list[str]:
    """The stored `search_vector` column of `table` (computed for the existing rows) and its GIN index."""
    return [
        f"ALTER TABLE {table} ADD COLUMN {PG_COLUMN} tsvector "
        f"GENERATED ALWAYS AS ({tsvector_sql(table)}) STORED",
        f"CREATE INDEX {pg_index_name(table)} ON {table} USING gin ({PG_COLUMN})",
    ]


def pg_drop(table: str) -> list[str]:
    return [
        f"DROP INDEX IF EXISTS {pg_index_name(table)}",
        f"ALTER TABLE {table} DROP COLUMN IF EXISTS {PG_COLUMN}",
    ]


def _sqlite_reversed(value: str) -> str:
    digits = f"replace({value}, '+', '')"
    return " || ".join(f"substr({digits}, {i}, 1)" for i in range(MAX_PHONE_DIGITS, 0, -1))


def sqlite_document(table: str, row: str) -> str:
    """The document of `table` as an SQLite expression over the row alias `row` (`new`, or the table)."""
    parts = [f"coalesce({row}.{column}, '')" for column in DOCUMENTS[table]]
    phone = PHONE_COLUMNS.get(table)
    if phone is not None:
        parts.append(
            f"CASE WHEN {row}.{phone} IS NULL THEN '' "
            f"ELSE '{PHONE_MARK}' || {_sqlite_reversed(f'{row}.{phone}')} END"
        )
    return " || ' ' || ".join(parts)


def sqlite_ddl(table: str) -> list[str]:
    """The FTS5 table of `table`, its triggers, and the statement filling it with the existing rows."""
    fts = fts_table(table)
    columns = ", ".join(DOCUMENTS[table])
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5(doc, tokenize='unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts}(rowid, doc) VALUES (new.id, {sqlite_document(table, 'new')}); END",
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {columns} ON {table} BEGIN "
        f"DELETE FROM {fts} WHERE rowid = old.id; "
        f"INSERT INTO {fts}(rowid, doc) VALUES (new.id, {sqlite_document(table, 'new')}); END",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN DELETE FROM {fts} WHERE rowid = old.id; END",
        f"INSERT INTO {fts}(rowid, doc) SELECT id, {sqlite_document(table, table)} FROM {table}",
    ]


def sqlite_drop(table: str) -> list[str]:
    fts = fts_table(table)
    return [f"DROP TRIGGER IF EXISTS {fts}_{suffix}" for suffix in ("ai", "au", "ad")] + [
        f"DROP TABLE IF EXISTS {fts}"
    ]
