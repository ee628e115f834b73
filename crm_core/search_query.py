"""The one search grammar of the search box, parsed once and compiled for either engine.

The user writes words, "quoted phrases", `OR`, `AND` (or nothing: words side by side must all match) and
`-word` to exclude, as in a web search engine (PostgreSQL's `websearch_to_tsquery`): `credit Balti`,
`credit AND Balti`, `viber OR telegram`, `"Ion Rusu"`, `credit -junk`. OR binds tighter than AND, so
`credit viber OR telegram` is credit and (viber or telegram). Letters lose their diacritics ("Bălți" finds
"Balti") and case; a word is cut into runs of letters and digits, the way both indexes cut documents
(`crm_core.search_index`), and a word of digits also matches a phone number ending in it.

The parser never raises: whatever it cannot read becomes words or is dropped. The AST compiles to
an FTS5 MATCH expression (SQLite) and a `to_tsquery` string (PostgreSQL), both passed as bound parameters;
every token is alphanumeric and quoted, so no operator of either engine (`NEAR(`, `*`, `:`, `^`, `!`, `<->`)
can come from the user's text.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_ATOMS = 16  # words and phrases kept from one query; the rest is ignored
MAX_TOKENS = 8  # tokens kept in one phrase
MIN_TAIL = 4  # the shortest run of digits that also matches a phone number's end
PHONE_MARK = "r"  # the indexes hold a phone's digits reversed behind this letter (a suffix becomes a prefix)


def fold(text: str) -> str:
    """Lower-case `text` and strip the diacritics of Latin letters (ă â î ș ț → a a i s t), as the
    indexes do; other scripts keep their letters (й stays й)."""
    out: list[str] = []
    for char in text:
        if ord(char) < 0x80 or not ("\u00c0" <= char <= "\u024f" or "\u1e00" <= char <= "\u1eff"):
            out.append(char)
            continue
        base = unicodedata.normalize("NFKD", char)
        out.append(base[0] if base[0].isascii() and base[0].isalpha() else char)
    return "".join(out).lower()


def tokens_of(text: str) -> tuple[str, ...]:
    """The runs of letters and digits in folded `text`: what both engines index as words."""
    words: list[str] = []
    current: list[str] = []
    for char in fold(text):
        if char.isalnum() and unicodedata.category(char)[0] in "LN" and char.isprintable():
            current.append(char)
        elif current:
            words.append("".join(current))
            current = []
    if current:
        words.append("".join(current))
    return tuple(words)


@dataclass(frozen=True)
class Term:
    """A word or a phrase: tokens that must stand side by side (one token for a plain word)."""

    tokens: tuple[str, ...]

    @property
    def phone_tail(self) -> str | None:
        """The digits, when the term is one run of digits long enough to be the end of a phone number."""
        if len(self.tokens) == 1 and self.tokens[0].isascii() and self.tokens[0].isdigit():
            return self.tokens[0] if len(self.tokens[0]) >= MIN_TAIL else None
        return None


@dataclass(frozen=True)
class Query:
    """All of `must` (each a group of alternatives, any of which will do) and none of `must_not`."""

    must: tuple[tuple[Term, ...], ...] = ()
    must_not: tuple[Term, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to look for: no words, or only excluded ones (which would list everything)."""
        return not self.must

    def positive(self) -> Query:
        """The query without its exclusions (which `found_in` then applies to what the reader may see)."""
        return Query(self.must, ())

    def found_in(self, document: str, phones: Iterable[str] = ()) -> bool:
        """Whether `document` (with `phones`, E.164 numbers) matches, as the indexes would find it: the
        check of a hit against only the fields its reader may see."""
        words = tokens_of(document)
        digits = [phone.lstrip("+") for phone in phones if phone]

        def has(term: Term) -> bool:
            n = len(term.tokens)
            if any(words[i : i + n] == term.tokens for i in range(len(words) - n + 1)):
                return True
            tail = term.phone_tail
            return tail is not None and any(number.endswith(tail) for number in digits)

        return (
            not self.empty
            and all(any(has(term) for term in group) for group in self.must)
            and not any(has(term) for term in self.must_not)
        )

    def fts5(self, phones: bool = True) -> str:
        """An FTS5 MATCH expression; '' when the query is empty. `phones`: a run of digits also matches a
        phone number's end (only where the document holds phone numbers)."""
        if self.empty:
            return ""
        groups = []
        for group in self.must:
            alternatives = [_fts5_term(term, phones) for term in group]
            groups.append(
                alternatives[0] if len(alternatives) == 1 else "(" + " OR ".join(alternatives) + ")"
            )
        expression = " AND ".join(groups)
        if len(groups) > 1:
            expression = f"({expression})"
        for term in self.must_not:
            expression = f"{expression} NOT {_fts5_term(term, phones)}"
        return expression

    def tsquery(self, phones: bool = True) -> str:
        """A `to_tsquery('simple', …)` string; '' when the query is empty. `phones` as for `fts5`: a prefix
        query the planner cannot estimate is left out where no phone numbers are indexed."""
        if self.empty:
            return ""
        groups = []
        for group in self.must:
            alternatives = [_ts_term(term, phones) for term in group]
            groups.append(alternatives[0] if len(alternatives) == 1 else "(" + " | ".join(alternatives) + ")")
        parts = groups + [f"!{_ts_term(term, phones)}" for term in self.must_not]
        return " & ".join(parts)


def _quote_fts5(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def _fts5_term(term: Term, phones: bool) -> str:
    phrase = _quote_fts5(" ".join(term.tokens))
    tail = term.phone_tail if phones else None
    if tail is None:
        return phrase
    return f"({phrase} OR {_quote_fts5(PHONE_MARK + tail[::-1])}*)"


def _quote_ts(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def _ts_term(term: Term, phones: bool) -> str:
    phrase = " <-> ".join(_quote_ts(token) for token in term.tokens)
    if len(term.tokens) > 1:
        phrase = f"({phrase})"
    tail = term.phone_tail if phones else None
    if tail is None:
        return phrase
    return f"({phrase} | {_quote_ts(PHONE_MARK + tail[::-1])}:*)"


@dataclass
class _Builder:
    must: list[list[Term]] = field(default_factory=list)
    must_not: list[Term] = field(default_factory=list)
    pending_or: bool = False
    atoms: int = 0

    def add(self, text: str, negated: bool) -> None:
        tokens = tokens_of(text)[:MAX_TOKENS]
        if not tokens or self.atoms >= MAX_ATOMS:
            self.pending_or = False
            return
        self.atoms += 1
        term = Term(tokens)
        if negated:
            self.must_not.append(term)
        elif self.pending_or and self.must:
            self.must[-1].append(term)
        else:
            self.must.append([term])
        self.pending_or = False


def parse(text: str) -> Query:
    """The query in `text`; never raises (see the module's docstring for the grammar)."""
    builder = _Builder()
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
            continue
        negated = char == "-"
        if negated:
            i += 1
            if i >= n or text[i].isspace():
                continue
            char = text[i]
        if char == '"':
            end = text.find('"', i + 1)
            end = n if end < 0 else end
            builder.add(text[i + 1 : end], negated)
            i = end + 1
            continue
        end = i
        while end < n and not text[end].isspace() and text[end] != '"':
            end += 1
        word = text[i:end]
        i = end
        if not negated and word == "OR":
            builder.pending_or = bool(builder.must)
        elif not negated and word == "AND":
            builder.pending_or = False
        else:
            builder.add(word, negated)
    return Query(tuple(tuple(group) for group in builder.must), tuple(builder.must_not))
