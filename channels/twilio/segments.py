"""How many SMS a text costs (GSM 03.38 / 3GPP TS 23.038), and a Romanian transliteration to make it cheaper.

- GSM-7: 160 septets in one SMS, 153 per part once split (the user data header takes the rest). The
  extension characters (form feed, `^ { } \\ [ ] ~ |` and `€`) are an escape plus a code, two septets,
  and a part never ends between the two.
- One character outside GSM-7 makes the whole text UCS-2: 70 UTF-16 units in one SMS, 67 per part.
  Characters outside the basic plane (emoji) are surrogate pairs, two units, never split across parts.

Romanian `ă â î ș ț` (and the cedilla forms `ş ţ`) are not GSM-7, so one diacritic halves what an SMS holds;
`transliterate` offers the plain letters instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_LIMITS: dict[Encoding, tuple[int, int]] = {"GSM-7": (160, 153), "UCS-2": (70, 67)}

_ROMANIAN = {
    "ă": "a",
    "â": "a",
    "î": "i",
    "ș": "s",
    "ş": "s",
    "ț": "t",
    "ţ": "t",
    "Ă": "A",
    "Â": "A",
    "Î": "I",
    "Ș": "S",
    "Ş": "S",
    "Ț": "T",
    "Ţ": "T",
    # the quotes and dashes Romanian text brings along, one character for one
    "\u201e": '"',
    "\u201d": '"',
    "\u201c": '"',
    "«": '"',
    "»": '"',
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u2013": "-",
    "\u2014": "-",
    "\u00a0": " ",
}
_TRANSLITERATION = str.maketrans(_ROMANIAN)


@dataclass(frozen=True)
class SegmentInfo:
    encoding: Encoding
    parts: int  # SMS billed (0 for an empty text)
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    per_part: int  # what one part holds: 160 / 70 when the text fits in one SMS, else 153 / 67


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def _sizes(text: str, encoding: Encoding) -> list[int]:
    if encoding == "GSM-7":
        return [2 if c in GSM7_EXTENSION else 1 for c in text]
    return [2 if ord(c) > 0xFFFF else 1 for c in text]


def segments(text: str) -> SegmentInfo:
    encoding: Encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    single, per_part = _LIMITS[encoding]
    sizes = _sizes(text, encoding)
    units = sum(sizes)
    if units <= single:
        return SegmentInfo(encoding, 1 if units else 0, units, single)
    parts, used = 1, 0
    for size in sizes:  # an escape pair or a surrogate pair that does not fit opens the next part
        if used + size > per_part:
            parts, used = parts + 1, 0
        used += size
    return SegmentInfo(encoding, parts, units, per_part)


def transliterate(text: str) -> str:
    """Romanian letters without diacritics (and plain quotes and dashes): `Bună ziua, Ștefan` → `Buna ziua,
    Stefan`. One character for one, so a text never grows."""
    return text.translate(_TRANSLITERATION)
