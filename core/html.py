"""HTML that custseg writes runs no script of the data's: safe JSON for inline scripts, and a scan
of a finished page for everything that could run one.

Inside `<script>...</script>` the browser does not read JavaScript but looks for `</script`
(and `<!--` followed by `<script`, which changes where the script ends): a category value such as
`</script><img src=x onerror=...>` in embedded JSON closes the script and the rest is live HTML.
`script_json` writes JSON with every `<`, `>` and `&` as its \\u escape, so no such sequence can
appear, and JavaScript reads back exactly the same strings (the fix of Django's `json_script` and
Rails' `json_escape`).

`scan` lists a page's scripts, event-handler attributes, `javascript:` (and similar) URLs and
frames/objects: monitoring checks Evidently's pages with it before writing them, the tests check
every page custseg writes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

# < > & end or open markup inside a script; U+2028/9 end a line in pre-2019 JavaScript
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028"}
_SCRIPT_UNSAFE["\u2029"] = "\\u2029"
_SCRIPT_UNSAFE_RE = re.compile("[<>&\u2028\u2029]")

# attributes whose value is loaded or followed as a URL
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "data", "poster"}
# URL schemes that run script (or, for data:, may carry a page that does); data:image is fine
_ACTIVE_URL = re.compile(r"(javascript|vbscript|data(?!:image/(png|jpe?g|gif|webp)[;,])):")
# elements that load or run another document or script
ACTIVE_ELEMENTS = {"iframe", "frame", "frameset", "object", "embed", "applet", "base", "portal"}


def script_json(text: str) -> str:
    """JSON text (as `json.dumps` writes it) made safe inside an inline `<script>`: `<`, `>`, `&`
    and U+2028/U+2029 as \\u escapes. Outside strings JSON has none of these characters, so the
    result is the same JSON value for `JSON.parse` and the same object literal for JavaScript;
    `</script>` and `<!--` cannot appear in it."""
    return _SCRIPT_UNSAFE_RE.sub(lambda m: _SCRIPT_UNSAFE[m.group()], text)


def dumps_for_script(value: object, **kwargs) -> str:
    """`json.dumps(value, **kwargs)` safe inside an inline `<script>` (see `script_json`)."""
    return script_json(json.dumps(value, **kwargs))


@dataclass
class PageScan:
    """What in a page can run script, as an HTML parser sees it."""

    scripts: list[dict] = field(default_factory=list)  # {"attrs": {...}, "text": "..."} each
    handlers: list[str] = field(default_factory=list)  # 'tag onerror="..."' per on* attribute
    urls: list[str] = field(default_factory=list)  # 'tag href="javascript:..."' and the like
    elements: list[str] = field(default_factory=list)  # iframe, object, embed, base, meta refresh

    def problems(self, *, scripts_allowed: bool = False) -> list[str]:
        """One line per finding; scripts count only when not `scripts_allowed`."""
        out = [f"event handler: {h}" for h in self.handlers]
        out += [f"script URL: {u}" for u in self.urls]
        out += [f"active element: {e}" for e in self.elements]
        if not scripts_allowed:
            out += [f"script: {_short(str(s['attrs']) + ' ' + s['text'])}" for s in self.scripts]
        return out


def scan(page: str) -> PageScan:
    """Every script, event handler, script URL and frame-like element of `page`.

    Python's parser ends a script at `</script>` like a browser; unlike a browser it ignores
    `<!--<script>` inside one, so a page whose scripts contain `<` at all is only trustworthy
    here once that `<` is escaped (see `script_json`)."""
    parser = _Scanner()
    parser.feed(page)
    parser.close()
    return parser.found


def _active_url(value: str) -> bool:
    """A URL that runs script, read as a browser does: tabs and line breaks anywhere and
    leading or trailing control characters and spaces ignored, the scheme in any case."""
    url = re.sub(r"[\t\n\r]", "", value).strip("".join(map(chr, range(33)))).lower()
    return _ACTIVE_URL.match(url) is not None


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Scanner(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found = PageScan()
        self._script: dict | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v or "" for k, v in attrs}
        for name, value in values.items():
            where = f'<{tag} {name}="{_short(value, 80)}">'
            if name.startswith("on"):
                self.found.handlers.append(where)
            elif name in URL_ATTRIBUTES and _active_url(value):
                self.found.urls.append(where)
        refresh = tag == "meta" and values.get("http-equiv", "").lower() == "refresh"
        if tag in ACTIVE_ELEMENTS or refresh:
            self.found.elements.append(f"<{tag}>")
        if tag == "script":
            self._script = {"attrs": values, "text": ""}
            self.found.scripts.append(self._script)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "script":
            self._script = None

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script["text"] += data
