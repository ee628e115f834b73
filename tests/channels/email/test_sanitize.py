"""Hostile HTML from a customer's mail must come out unable to run code, load anything or leave the hub."""

from __future__ import annotations

import pytest

from channels.email.sanitize import html_to_text, sanitize_html

HOSTILE = [
    ("<p>Salut<script>alert(document.cookie)</script></p>", "<p>Salut</p>"),
    ('<p onclick="steal()" onmouseover="x()">text</p>', "<p>text</p>"),
    ('<a href="javascript:alert(1)">click</a>', '<a target="_blank" rel="noopener noreferrer">click</a>'),
    ('<a href="jav&#x09;ascript:alert(1)">tab</a>', '<a target="_blank" rel="noopener noreferrer">tab</a>'),
    (
        '<a href="data:text/html;base64,PHNjcmlwdD4=">data</a>',
        '<a target="_blank" rel="noopener noreferrer">data</a>',
    ),
    ('<a href="/admin/users">relative</a>', '<a target="_blank" rel="noopener noreferrer">relative</a>'),
    ('<iframe src="https://evil.example/"></iframe>after', "after"),
    ('<object data="x.swf"></object><embed src="y.swf">z', "z"),
    ('<form action="https://evil.example/"><input name="pin"><button>OK</button></form>', "OK"),
    ("<style>body{display:none}</style>visible", "visible"),
    ('<div style="position:fixed;top:0;left:0;width:100%">cover</div>', "<div>cover</div>"),
    ('<svg onload="alert(1)"><circle r="5"/></svg>svg', "svg"),
    ('<img src="x" onerror="alert(1)">', ""),
    ('<img src="https://track.example.net/o.gif?u=1" width="1" height="1">', ""),
    ('<img src="https://track.example.net/o.gif" style="display: none">', ""),
    ('<img src="cid:image001.png@01DAA5B1" alt="logo">', "logo"),
    ('<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">', "inline"),
    ("<!-- <script>alert(1)</script> -->comment", "comment"),
    ('<meta http-equiv="refresh" content="0;url=https://evil.example/">m', "m"),
    (
        '<base href="https://evil.example/"><a href="x">b</a>',
        '<a target="_blank" rel="noopener noreferrer">b</a>',
    ),
    ("<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", ""),
    ("<<script>script>alert(1)<</script>/script>", "&lt;/script&gt;"),
]


@pytest.mark.parametrize(("dirty", "clean"), HOSTILE)
def test_hostile_html_is_made_harmless(dirty: str, clean: str) -> None:
    safe = sanitize_html(dirty)
    assert safe == clean
    lowered = safe.lower()
    for sign in (
        "<script",
        "javascript:",
        "onerror",
        "onload",
        "onclick",
        "<iframe",
        "<style",
        "<img",
        "style=",
    ):
        assert sign not in lowered


def test_links_open_in_a_new_tab_without_the_opener() -> None:
    safe = sanitize_html('<a href="https://ok.example/" target="_self" rel="opener">ok</a>')
    assert safe == '<a href="https://ok.example/" target="_blank" rel="noopener noreferrer">ok</a>'


def test_a_remote_picture_becomes_a_link_that_loads_nothing() -> None:
    safe = sanitize_html('<p><img src="https://cdn.example.md/cars/logan.jpg" alt="Dacia Logan"></p>')
    assert safe == (
        '<p><a href="https://cdn.example.md/cars/logan.jpg" target="_blank" rel="noopener noreferrer">'
        "[Dacia Logan]</a></p>"
    )
    unnamed = sanitize_html('<img src="https://cdn.example.md/cars/logan%20alb.jpg">')
    assert "[logan alb.jpg]" in unnamed


def test_formatting_survives() -> None:
    html = (
        '<div dir="ltr"><h2>Oferta</h2><p>Suma: <b>50 000</b> <i>lei</i><br>Termen: <u>5 ani</u></p>'
        '<ul><li>rată fixă</li></ul><table><tr><td colspan="2">Total</td></tr></table>'
        "<blockquote>citat</blockquote></div>"
    )
    assert sanitize_html(html) == html.replace("<table><tr>", "<table><tbody><tr>").replace(
        "</tr></table>", "</tr></tbody></table>"
    )


def test_an_unclosed_head_does_not_swallow_the_body() -> None:
    html = "<html><head><title>Subiect<body><p>Textul scrisorii</p></body></html>"
    assert sanitize_html(html) == "<p>Textul scrisorii</p>"
    assert html_to_text(html) == "Textul scrisorii"


def test_html_becomes_readable_text() -> None:
    html = (
        "<html><head><style>p{color:red}</style></head><body><p>Bună ziua,</p>"
        "<p>Vreau&nbsp;un credit<br>de 10&nbsp;000 lei.</p><ul><li>unu</li><li>doi</li></ul>"
        "<script>var x = 1;</script><table><tr><td>A</td><td>B</td></tr></table></body></html>"
    )
    assert html_to_text(html) == "Bună ziua,\n\nVreau un credit\nde 10 000 lei.\n\n- unu\n- doi\n\nA B"
