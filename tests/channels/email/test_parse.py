"""Reading a message and writing a reply: message ids in one normal form, threads, automatic mail, MIME
shapes mail programs really send."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from channels.email.compose import compose, reply_subject, thread_ids
from channels.email.parse import Unreadable, id_list, normal_id, parse_email, raw_id

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("<CAF3k9Qx1pZ7@mail.example.md>", "CAF3k9Qx1pZ7@mail.example.md"),
        ("  <abc@x.md> (added by postmaster)", "abc@x.md"),
        ("abc@x.md", "abc@x.md"),
        ("<abc\r\n @x.md>", "abc@x.md"),
        ("", None),
        ("<>", None),
    ],
)
def test_message_ids_have_one_normal_form(header: str, expected: str | None) -> None:
    assert normal_id(header) == expected


def test_an_overlong_id_is_hashed_the_same_way_everywhere() -> None:
    long = "x" * 250 + "@example.md"
    hashed = normal_id(f"<{long}>")
    assert hashed is not None and hashed.startswith("sha256:") and len(hashed) == 71
    assert id_list(f"<a@b.md> <{long}> <a@b.md>") == ("a@b.md", hashed)


def mail(**headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.pop("From", "Ion Popescu <ion@example.md>")
    message["To"] = "credite@banca-test.md"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Salut")
    return message


def test_the_thread_lists_in_reply_to_first_then_references_newest_first() -> None:
    parsed = parse_email(mail(In_Reply_To="<c@x.md>", References="<a@x.md> <b@x.md> <c@x.md>").as_bytes())
    assert parsed.in_reply_to == ("c@x.md", "b@x.md", "a@x.md")
    assert parsed.references == ("a@x.md", "b@x.md", "c@x.md")


def test_a_message_without_message_id_gets_a_stable_id_from_its_bytes() -> None:
    raw = mail().as_bytes()
    assert parse_email(raw).message_id == raw_id(raw) == parse_email(raw).message_id
    assert parse_email(raw + b"\n").message_id != raw_id(raw)


@pytest.mark.parametrize(
    "sender", ["", "undisclosed-recipients:;", "not an address", f"{'a' * 120}@example.md"]
)
def test_a_message_without_a_usable_sender_is_unreadable(sender: str) -> None:
    message = mail()
    del message["From"]
    if sender:
        message["From"] = sender
    with pytest.raises(Unreadable):
        parse_email(message.as_bytes())


def test_text_split_around_an_inline_picture_is_kept_whole() -> None:
    message = mail()
    message.clear_content()
    message.make_mixed()
    for text in ("Prima parte.", None, "A doua parte."):
        part = EmailMessage()
        if text is None:
            part.set_content(b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "image", "png", disposition="inline")
        else:
            part.set_content(text)
        message.attach(part)
    parsed = parse_email(message.as_bytes())
    assert parsed.text == "Prima parte.\n\nA doua parte."
    assert [p.content_type for p in parsed.parts] == ["image/png"]
    assert parsed.parts[0].filename == "image.png"


def test_a_forwarded_message_is_a_file() -> None:
    inner = mail(Subject="Oferta veche", Message_ID="<old@x.md>")
    outer = mail(Subject="Fwd: Oferta veche")
    outer.add_attachment(inner)
    parsed = parse_email(outer.as_bytes())
    assert parsed.text == "Salut"
    [part] = parsed.parts
    assert part.content_type == "message/rfc822" and part.filename == "message.eml"
    assert b"Message-ID: <old@x.md>" in part.data


def test_a_wrong_charset_label_falls_back_instead_of_failing() -> None:
    raw = (
        b"From: ion@example.md\r\nMessage-ID: <cs@x.md>\r\nContent-Type: text/plain; charset=x-unknown\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nBun\xc4\x83 ziua\r\n"
    )
    assert parse_email(raw).text == "Bună ziua"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto_Submitted": "auto-replied"}, "Auto-Submitted: auto-replied"),
        ({"Auto_Submitted": "auto-generated; owner-email=x@y.md"}, "Auto-Submitted: auto-generated"),
        ({"Precedence": "junk"}, "Precedence: junk"),
        ({"Precedence": "list"}, "Precedence: list"),
        ({"X_Autoreply": "yes"}, "X-Autoreply"),
        ({"From": "MAILER-DAEMON@mx.example.md"}, "delivery status notification"),
        ({"Auto_Submitted": "no"}, None),
        ({}, None),
    ],
)
def test_mail_no_person_wrote_is_recognised(headers: dict[str, str], reason: str | None) -> None:
    assert parse_email(mail(**headers).as_bytes()).automatic == reason


def test_a_delayed_notice_is_not_a_bounce() -> None:
    raw = (FIXTURES / "bounce.eml").read_bytes().replace(b"Action: failed", b"Action: delayed")
    parsed = parse_email(raw)
    assert parsed.bounce is None and parsed.automatic is not None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Cerere credit", "Re: Cerere credit"),
        ("Re: Cerere credit", "Re: Cerere credit"),
        ("RE: Cerere", "RE: Cerere"),
        ("AW: Anfrage", "AW: Anfrage"),
        ("Fwd: Oferta", "Re: Fwd: Oferta"),
        ("  ", "Credit Center"),
    ],
)
def test_the_reply_subject_gets_re_once(subject: str, expected: str) -> None:
    assert reply_subject(subject, "Credit Center") == expected


def test_threading_skips_stand_in_ids_and_keeps_the_last_twenty() -> None:
    refs = [f"r{n}@x.md" for n in range(30)]
    answered, chain = thread_ids({"message_id": "last@x.md", "references": [*refs, "sha256:abc"]})
    assert answered == "last@x.md" and chain[-1] == "last@x.md" and len(chain) == 20
    assert thread_ids({"message_id": "sha256:" + "0" * 64}) == (None, [])
    assert thread_ids({"message_id": "<m@x.md>", "references": "<a@x.md> <b@x.md>"}) == (
        "m@x.md",
        ["a@x.md", "b@x.md", "m@x.md"],
    )


def test_a_composed_reply_reads_back_with_its_threading_headers() -> None:
    message, ident = compose(
        from_address="credite@banca-test.md",
        from_name="Centrul de credite",
        to="ion@example.md",
        body="Bună ziua, Ion!",
        reply_to={"subject": "Cerere", "message_id": "q@x.md", "references": ["p@x.md"]},
        fallback_subject="Centrul de credite",
    )
    parsed = parse_email(message.as_bytes())
    assert parsed.message_id == ident and ident.endswith("@banca-test.md")
    assert parsed.in_reply_to == ("q@x.md", "p@x.md")
    assert parsed.subject == "Re: Cerere" and parsed.text == "Bună ziua, Ion!"
    assert (parsed.sender, parsed.sender_name) == ("credite@banca-test.md", "Centrul de credite")
