"""SMS segments (GSM 03.38): the reference vectors of notes/channels.md, the split rules, and properties that
hold for any text; the Romanian transliteration."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from channels.twilio.segments import GSM7_BASIC, GSM7_EXTENSION, SegmentInfo, is_gsm7, segments, transliterate

EMOJI = "\U0001f61c"  # 😜, outside the basic plane: a surrogate pair in UCS-2


@pytest.mark.parametrize(
    ("text", "encoding", "parts"),
    [
        ("1" * 160, "GSM-7", 1),
        ("1" * 161, "GSM-7", 2),
        ("1" * 306, "GSM-7", 2),
        ("1" * 307, "GSM-7", 3),
        ("€" + "1" * 158, "GSM-7", 1),  # 2 + 158 = 160 septets
        ("€" + "1" * 159, "GSM-7", 2),  # 161 septets
        ("Á" * 70, "UCS-2", 1),
        ("Á" * 71, "UCS-2", 2),
        (EMOJI + "1" * 68, "UCS-2", 1),  # 2 + 68 = 70 units
        (EMOJI + "1" * 69, "UCS-2", 2),
        ("Bună ziua", "UCS-2", 1),
        ("", "GSM-7", 0),
    ],
)
def test_reference_vectors(text: str, encoding: str, parts: int) -> None:
    info = segments(text)
    assert (info.encoding, info.parts) == (encoding, parts)


def test_units_and_what_a_part_holds() -> None:
    assert segments("1" * 160) == SegmentInfo("GSM-7", 1, 160, 160)
    assert segments("1" * 161) == SegmentInfo("GSM-7", 2, 161, 153)
    assert segments("{}") == SegmentInfo("GSM-7", 1, 4, 160)
    assert segments("ș" * 71) == SegmentInfo("UCS-2", 2, 71, 67)
    assert segments(EMOJI) == SegmentInfo("UCS-2", 1, 2, 70)


def test_an_extension_character_is_never_split_across_parts() -> None:
    # 152 digits, then "€" (2 septets) would straddle the 153rd septet: it opens part 2
    text = "1" * 152 + "€" + "1" * 152
    assert segments(text).units == 306
    assert segments(text).parts == 3  # 152 | 2 + 151 | 1, where a plain count (306 / 153) says 2
    assert segments("1" * 151 + "€" + "1" * 153).parts == 2  # 153 | 153


def test_a_surrogate_pair_is_never_split_across_parts() -> None:
    text = "ă" * 66 + EMOJI + "ă" * 66  # the emoji would take units 67 and 68
    info = segments(text)
    assert (info.units, info.parts) == (134, 3)
    assert segments("ă" * 65 + EMOJI + "ă" * 67).parts == 2


def test_romanian_diacritics_and_their_cedilla_forms_are_not_gsm7() -> None:
    for letter in "ăâîșțşţĂÂÎȘȚŞŢ":
        assert not is_gsm7(letter), letter
    assert segments("Plata a fost înregistrată").encoding == "UCS-2"


def test_transliteration_makes_a_romanian_sms_gsm7() -> None:
    text = "Știți că rata lunară e de 1500 lei? Țineți minte: „mâine” \u2013 ultima zi. ŞŢşţ"
    plain = transliterate(text)
    assert plain == 'Stiti ca rata lunara e de 1500 lei? Tineti minte: "maine" - ultima zi. STst'
    assert segments(text).encoding == "UCS-2" and segments(plain).encoding == "GSM-7"
    assert transliterate("Привет") == "Привет"  # other scripts are left as they are


_GSM_TEXT = st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION)), max_size=700)
_ANY_TEXT = st.text(max_size=700)


@given(st.one_of(_GSM_TEXT, _ANY_TEXT))
def test_parts_are_bounded_by_the_units(text: str) -> None:
    info = segments(text)
    assert info.parts >= math.ceil(info.units / info.per_part)
    # a part loses at most one unit to a pair it could not split
    assert info.parts <= math.ceil(info.units / (info.per_part - 1))
    assert (info.parts <= 1) == (info.units <= (160 if info.encoding == "GSM-7" else 70))
    assert info.encoding == ("GSM-7" if is_gsm7(text) else "UCS-2")
    assert info.units >= len(text)


@given(_ANY_TEXT)
def test_appending_never_makes_a_text_cheaper_within_one_encoding(text: str) -> None:
    longer = segments(text + "a")
    if longer.encoding == segments(text).encoding:
        assert longer.parts >= segments(text).parts


@given(st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC | set("ăâîșțşţĂÂÎȘȚŞŢ„”\u2013"))), max_size=700))
def test_transliterated_romanian_is_gsm7_and_never_costs_more(text: str) -> None:
    plain = transliterate(text)
    assert is_gsm7(plain) and len(plain) == len(text)
    assert segments(plain).parts <= segments(text).parts


@given(_ANY_TEXT)
def test_transliteration_never_costs_more(text: str) -> None:
    assert segments(transliterate(text)).parts <= segments(text).parts
