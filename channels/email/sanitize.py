"""A customer's HTML made safe to show an agent, and made into plain text when it is all there is.

`sanitize_html` keeps a conservative set of formatting tags (nh3, i.e. ammonia's HTML5 parser and
allow-list): no scripts, styles, frames, forms, event handlers or `style` attributes; links only to
http(s) / mailto, opened in a new tab with `rel="noopener noreferrer"`, relative links removed (they would
point into the hub). No image is ever loaded: a remote image becomes a link the agent may click (tiny ones,
tracking pixels, are dropped), `cid:` inline images and `data:` URLs are dropped — the inline files
themselves come in as attachments.

Images are rewritten by a small tokeniser before nh3 runs; whatever that pass produces, nh3 has the last
word, so safety rests on the allow-list alone.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

import nh3

MAX_HTML_CHARS = 200_000  # sanitised HTML past this is not kept (the text body still is)

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div", "dl", "dt",
        "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "ins", "li", "ol", "p", "pre", "q", "s",
        "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
        "tr", "u", "ul",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align"},
    "ol": {"start"},
    "*": {"dir", "lang"},
}
_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags={"script", "style", "title", "template", "noscript", "textarea", "select"},
    attributes=ALLOWED_ATTRIBUTES,
    strip_comments=True,
    link_rel="noopener noreferrer",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    url_schemes={"http", "https", "mailto"},
    url_relative="deny",
)
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_DROP_CONTENT = frozenset({"script", "style", "title", "template", "noscript", "head"})
_PIXEL = 3  # images this small (in either dimension) are trackers, not pictures


def sanitize_html(html: str) -> str:
    """Safe HTML for the agent's browser (see the module's docstring)."""
    rewriter = _ImagesToLinks()
    rewriter.feed(html)
    rewriter.close()
    return _CLEANER.clean("".join(rewriter.out)).strip()


class _ImagesToLinks(HTMLParser):
    """Re-emits the document token by token, turning `<img>` into a link or nothing."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._dropping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._dropping.clear()  # an unclosed <head> or <title> must not swallow the body
        if self._dropping or tag in _DROP_CONTENT:
            if tag in _DROP_CONTENT:
                self._dropping.append(tag)
            return
        if tag == "img":
            self.out.append(_image(dict(attrs)))
        elif _NAME_RE.fullmatch(tag):
            self.out.append(_start_tag(tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._dropping:
            return
        if tag == "img":
            self.out.append(_image(dict(attrs)))
        elif _NAME_RE.fullmatch(tag):
            self.out.append(_start_tag(tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        if self._dropping:
            if tag == self._dropping[-1]:
                self._dropping.pop()
            return
        if _NAME_RE.fullmatch(tag):
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self._dropping:
            self.out.append(escape(data, quote=False))


def _start_tag(tag: str, attrs: list[tuple[str, str | None]]) -> str:
    kept = "".join(
        f' {name}="{escape(value or "", quote=True)}"' for name, value in attrs if _NAME_RE.fullmatch(name)
    )
    return f"<{tag}{kept}>"


def _image(attrs: dict[str, str | None]) -> str:
    """A remote picture as a link to it; a tracking pixel, `cid:` or `data:` image as nothing (its alt
    text stays, as the mail program would show it)."""
    src = (attrs.get("src") or "").strip()
    alt = " ".join((attrs.get("alt") or "").split())
    url = urlsplit(src)
    if url.scheme.lower() not in {"http", "https"} or not url.netloc or _tiny(attrs):
        return escape(alt, quote=False)
    label = alt or unquote(url.path.rsplit("/", 1)[-1]) or url.netloc
    return f'<a href="{escape(src, quote=True)}">[{escape(label[:80], quote=False)}]</a>'


def _tiny(attrs: dict[str, str | None]) -> bool:
    for name in ("width", "height"):
        value = (attrs.get(name) or "").strip().lower().removesuffix("px")
        if value.isdigit() and int(value) < _PIXEL:
            return True
    style = (attrs.get("style") or "").replace(" ", "").lower()
    return "display:none" in style or "visibility:hidden" in style


# --- HTML → text ----------------------------------------------------------------------------------------

_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "div", "dl", "dt", "dd", "footer", "form", "h1", "h2",
        "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table",
        "tr", "ul",
    }
)  # fmt: skip


def html_to_text(html: str) -> str:
    """The readable text of an HTML mail: paragraphs and line breaks kept, markup and scripts gone."""
    parser = _Text()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._dropping.clear()
        if tag in _DROP_CONTENT:
            self._dropping.append(tag)
        elif self._dropping:
            return
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._dropping:
            if tag == self._dropping[-1]:
                self._dropping.pop()
            return
        if tag in _BLOCKS and tag != "li":  # the next item starts its own line
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._dropping:
            self.parts.append(data.replace("\xa0", " "))
