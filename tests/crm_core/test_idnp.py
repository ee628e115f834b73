"""IDNP / IDNO: 13 digits whose last is the 7-3-1 weighted sum of the first twelve modulo 10; any one digit
changed, a wrong length or a non-digit fails."""

from __future__ import annotations

import pytest

from crm_core.idnp import check_digit, compact, is_valid, is_valid_idno, is_valid_idnp

# Built from the rule: body digits times 7,3,1,7,3,1… summed, mod 10.
VALID = [
    "1008600038413",  # python-stdnum md.idno's doctest vector (a company's IDNO)
    "2000000000004",  # 2*7 = 14 -> 4
    "0000000000000",
    "2002001234563",  # 14+0+0+14+0+0+7+6+3+28+15+6 = 93 -> 3
    "0971234567891",  # 0+27+7+7+6+3+28+15+6+49+24+9 = 181 -> 1
]


def test_check_digit_is_the_7_3_1_weighted_sum_mod_10() -> None:
    assert check_digit("100860003841") == 3
    assert check_digit("200000000000") == 4
    assert check_digit("111111111111") == (7 + 3 + 1) * 4 % 10


@pytest.mark.parametrize("code", VALID)
def test_valid_codes_pass(code: str) -> None:
    assert is_valid(code)
    assert is_valid_idnp(code) and is_valid_idno(code)


@pytest.mark.parametrize("code", VALID)
def test_any_single_digit_changed_fails(code: str) -> None:
    for position in range(13):
        for digit in "0123456789":
            if digit == code[position]:
                continue
            changed = code[:position] + digit + code[position + 1 :]
            # A digit weighted 1… changes the sum by the difference; weighted 7 or 3 it never lands on a
            # multiple of 10 for a one-digit change either, so every one-digit change is caught.
            assert not is_valid(changed), changed


@pytest.mark.parametrize(
    "code",
    [
        "",
        "100860003841",
        "10086000384133",
        "100860003841a",
        "1008600O38413",
        "\uff11\uff10\uff10\uff18\uff16\uff10\uff10\uff10\uff13\uff18\uff14\uff11\uff13",  # full-width digits
        "+008600038413",
    ],
)
def test_wrong_length_or_non_digits_fail(code: str) -> None:
    assert not is_valid(code)


def test_separators_people_type_are_ignored() -> None:
    assert compact("100 860 003 841-3") == "1008600038413"
    assert is_valid("100 860 003 841-3")


def test_check_digit_refuses_a_body_that_is_not_twelve_digits() -> None:
    with pytest.raises(ValueError):
        check_digit("12345")
