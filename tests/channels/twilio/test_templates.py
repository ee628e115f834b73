"""WhatsApp templates as the admin writes them, and the text a template puts in the conversation."""

from __future__ import annotations

import pytest

from channels.twilio.templates import (
    WhatsAppTemplate,
    format_templates,
    parse_templates,
    render,
    templates_from_config,
)
from switchboard.errors import Invalid

SID_1 = "HX" + "1a" * 16
SID_2 = "HX" + "2B" * 16


def test_lines_become_templates_with_the_variables_of_their_text() -> None:
    text = (
        f"Reminder | {SID_1} | Bună ziua, {{{{1}}}}! Rata de {{{{2}}}} lei e scadentă; "
        "{{1}}, sunați-ne.\n"
        "\n"
        "# approved on 3 March\n"
        f"  Offer|{SID_2}|Ofertă: 5% | fără comision  \n"
    )
    reminder, offer = parse_templates(text)
    assert reminder == WhatsAppTemplate(
        "Reminder", SID_1, "Bună ziua, {{1}}! Rata de {{2}} lei e scadentă; {{1}}, sunați-ne.", ("1", "2")
    )
    assert offer == WhatsAppTemplate("Offer", SID_2, "Ofertă: 5% | fără comision", ())
    assert parse_templates("") == [] and parse_templates("\n  \n# none yet") == []


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (f"Reminder {SID_1} text", 1, "Name | Content SID | Text"),
        (f"ok | {SID_1} | fine\nReminder | {SID_1}", 2, "Name | Content SID | Text"),
        (f" | {SID_1} | text", 1, "name"),
        ("Reminder | HX123 | text", 1, "32 hexadecimal"),
        ("Reminder | MG" + "1a" * 16 + " | text", 1, "HX"),
        (f"Reminder | {SID_1}z | text", 1, "HX"),
        (f"Reminder | {SID_1} |   ", 1, "text"),
        (f"Reminder | {SID_1} | a\n\nreminder | {SID_2} | b", 3, "twice"),
        ("x" * 101 + f" | {SID_1} | text", 1, "too long"),
    ],
)
def test_a_bad_line_is_refused_with_its_number(text: str, line: int, words: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_templates(text)
    assert caught.value.field == "templates"
    assert caught.value.params["line"] == line
    assert words in caught.value.message


def test_render_fills_every_variable() -> None:
    [template] = parse_templates(f"Reminder | {SID_1} | {{{{1}}}}, rata de {{{{ 2 }}}} lei e mâine.")
    assert template.variables == ("1", "2")
    assert render(template, {"1": "Ion", "2": " 1500 "}) == "Ion, rata de 1500 lei e mâine."
    with pytest.raises(Invalid) as caught:
        render(template, {"1": "Ion", "2": "  "})
    assert caught.value.field == "variables" and caught.value.params["name"] == "{{2}}"
    with pytest.raises(Invalid):
        render(template, {"2": "1500"})


def test_templates_round_trip_through_the_config_and_the_textarea() -> None:
    text = f"Reminder | {SID_1} | Bună, {{{{1}}}}!\nOffer | {SID_2} | Ofertă nouă"
    parsed = parse_templates(text)
    stored = [t.as_config() for t in parsed]
    assert stored[0] == {
        "name": "Reminder",
        "content_sid": SID_1,
        "body": "Bună, {{1}}!",
        "variables": ["1"],
    }
    assert templates_from_config(stored) == parsed
    assert parse_templates(format_templates(parsed)) == parsed
    assert templates_from_config(text) == parsed
    broken = [*stored, {"name": "X", "content_sid": "nope", "body": "b"}, "junk", None]
    assert templates_from_config(broken) == parsed
    assert templates_from_config(None) == [] and templates_from_config("garbage line") == []
