"""Phone numbers become E.164: Moldovan mobiles and landlines however written, Romanian numbers in the
Romanian region or with +40, international numbers with their code; anything else is None."""

from __future__ import annotations

import pytest

from crm_core.contacts import normalise_phone


@pytest.mark.parametrize(
    "raw",
    ["069123456", "+373 69 123 456", "0037369123456", "(+373) 69-12-34-56", "069 12 34 56"],
)
def test_moldovan_mobile_numbers_however_written(raw: str) -> None:
    assert normalise_phone(raw) == "+37369123456"


def test_moldovan_landline() -> None:
    assert normalise_phone("22 123456") == "+37322123456"
    assert normalise_phone("022 123 456") == "+37322123456"


def test_romanian_numbers_in_the_romanian_region_or_with_their_code() -> None:
    assert normalise_phone("0721 234 567", "RO") == "+40721234567"
    assert normalise_phone("+40 721 234 567") == "+40721234567"
    assert normalise_phone("0040721234567") == "+40721234567"


def test_the_default_region_decides_numbers_without_a_country_code() -> None:
    assert normalise_phone("0721 234 567", "MD") != "+40721234567"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+7 495 123-45-67", "+74951234567"),
        ("+1 (202) 555-0143", "+12025550143"),
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_international_numbers(raw: str, e164: str) -> None:
    assert normalise_phone(raw) == e164


@pytest.mark.parametrize("raw", [None, "", "hello", "12", "+", "0" * 41, "+373 69 12", "+999 123"])
def test_garbage_is_none(raw: str | None) -> None:
    assert normalise_phone(raw) is None
