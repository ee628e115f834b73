"""`crm_core.search_query`: the grammar parses as a web search engine's does, folds diacritics, and turns
any text at all — operators of either engine included — into an expression its engine accepts."""

from __future__ import annotations

import sqlite3

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from crm_core.search_query import MAX_ATOMS, Term, fold, parse, tokens_of

# Text rich in both engines' operators, quotes and the grammar's own words.
QUERIES = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=6),
        st.sampled_from([*"\"-*:^()!&|<>'\\", " ", "OR", "AND", "NOT", "NEAR(", "ă", "ș", "0", "7"]),
    ),
    max_size=16,
).map("".join)


def test_words_side_by_side_must_all_match() -> None:
    query = parse("credit Balti")
    assert query.must == ((Term(("credit",)),), (Term(("balti",)),))
    assert parse("credit AND Balti") == query


def test_or_binds_tighter_than_and() -> None:
    query = parse("credit viber OR telegram")
    assert query.must == ((Term(("credit",)),), (Term(("viber",)), Term(("telegram",))))
    assert query.fts5() == '("credit" AND ("viber" OR "telegram"))'
    assert query.tsquery() == "'credit' & ('viber' | 'telegram')"


def test_quotes_make_a_phrase_and_minus_excludes() -> None:
    query = parse('"Ion Rusu" -junk')
    assert query.must == ((Term(("ion", "rusu")),),)
    assert query.must_not == (Term(("junk",)),)
    assert query.fts5() == '"ion rusu" NOT "junk"'
    assert query.tsquery() == "('ion' <-> 'rusu') & !'junk'"


def test_only_exclusions_or_only_operators_are_empty() -> None:
    for text_ in ("-junk", "OR AND", "", '""', "- -", "***"):
        assert parse(text_).empty
        assert parse(text_).fts5() == parse(text_).tsquery() == ""


def test_diacritics_are_folded_and_words_cut_at_punctuation() -> None:
    assert fold("Bălți ȘTEFAN Țară") == "balti stefan tara"
    assert fold("Йошкар") == "йошкар"  # other scripts keep their letters
    assert tokens_of("ion.rusu@mail.md") == ("ion", "rusu", "mail", "md")
    assert parse("Bălți").tsquery() == "'balti'"


def test_a_run_of_digits_also_matches_a_phone_numbers_end() -> None:
    assert parse("123456").fts5() == '("123456" OR "r654321"*)'
    assert parse("123456").tsquery() == "('123456' | 'r654321':*)"
    assert parse("123").fts5() == '"123"'  # too short to be a tail


def test_operators_of_the_engines_are_only_words() -> None:
    query = parse('NEAR(a b) col:x ^start "x" * !y <-> z')
    assert all(token.isalnum() for group in query.must for term in group for token in term.tokens)


def test_a_query_keeps_at_most_so_many_words() -> None:
    assert len(parse(" ".join(f"w{i}" for i in range(100))).must) == MAX_ATOMS


@given(QUERIES)
@settings(max_examples=300, deadline=None)
def test_any_text_is_a_valid_fts5_expression(raw: str) -> None:
    query = parse(raw)
    connection = sqlite3.connect(":memory:")
    try:
        connection.execute("CREATE VIRTUAL TABLE t USING fts5(doc, tokenize='unicode61 remove_diacritics 2')")
        connection.execute("INSERT INTO t VALUES ('credit Balti r654321')")
        if not query.empty:
            connection.execute("SELECT count(*) FROM t WHERE t MATCH ?", (query.fts5(),)).fetchone()
    finally:
        connection.close()


@given(QUERIES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_any_text_is_a_valid_query_on_the_runs_backend(engine: AsyncEngine, raw: str) -> None:
    query = parse(raw)
    if query.empty:
        return
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT to_tsquery('simple', :q)"), {"q": query.tsquery()})
        else:
            await conn.execute(
                text("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH :q"), {"q": query.fts5()}
            )
