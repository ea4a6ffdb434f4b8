"""Offline browser check for a self-contained HTML file (the `a2c-sweep report` output).

`check_offline` opens the file in headless Chromium (Debian's system `chromium`, driven by
Playwright; no `playwright install`) with the network switched off, and records everything that
would make the file less than self-contained: console errors, uncaught JS exceptions, failed
requests and any request that is not the file itself or a data:/blob:/about: URL. Every such
request is aborted, so nothing leaves the machine. It also takes a full-page screenshot and says
whether it is blank. `static_external_urls` is the same question asked of the HTML text.

Use in a test module (tests/ is on sys.path through tests/conftest.py, so `import browser`):

    from browser import check_offline, need_browser, open_browser

    @pytest.fixture(scope="module")
    def chromium():
        need_browser()  # skips loudly, or fails when A2C_REQUIRE_BROWSER=1
        with open_browser() as b:
            yield b

    def test_report_opens_offline(chromium, tmp_path):
        rep = check_offline(report_html, tmp_path / "shot.png", browser=chromium)
        assert rep.ok, rep.summary()
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urldefrag

from PIL import Image, ImageChops

if TYPE_CHECKING:
    from playwright.sync_api import Browser

REQUIRE_ENV = "A2C_REQUIRE_BROWSER"
# Schemes a self-contained page may request besides its own file.
INLINE_SCHEMES = ("data:", "blob:", "about:")
# Bounds getcolors(); a screenshot with more distinct colours than this is reported as CAP + 1.
COLOUR_CAP = 1 << 16
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]


@dataclass
class BrowserReport:
    """What one offline load of an HTML file showed. `ok` is the verdict."""

    url: str
    title: str = ""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)  # uncaught JS exceptions
    failed_requests: list[str] = field(default_factory=list)  # "URL (reason)"
    external_requests: list[str] = field(default_factory=list)  # aborted, never sent
    requests: list[str] = field(default_factory=list)  # every request seen, allowed or not
    screenshot: Path | None = None
    colours: int = 0  # distinct RGB colours in the screenshot (COLOUR_CAP + 1 means more)
    ink: float = 0.0  # fraction of pixels differing from the most common (background) colour
    nonblank: bool = False  # the screenshot has at least `min_colours` distinct colours

    @property
    def ok(self) -> bool:
        return self.nonblank and not (
            self.console_errors
            or self.page_errors
            or self.failed_requests
            or self.external_requests
        )

    def summary(self) -> str:
        """Readable account for an assertion message."""
        lines = [f"{self.url}: title={self.title!r} colours={self.colours} ink={self.ink:.4f}"]
        for name in ("console_errors", "page_errors", "failed_requests", "external_requests"):
            for item in getattr(self, name):
                lines.append(f"  {name}: {item}")
        if not self.nonblank:
            lines.append(f"  blank screenshot: {self.screenshot}")
        return "\n".join(lines)


def _is_self(url: str, own: str) -> bool:
    """True when url is the checked file itself (fragment and query ignored)."""
    bare = urldefrag(url).url.split("?", 1)[0]
    return unquote(bare) == unquote(own)


def _allowed(url: str, own: str) -> bool:
    return url.startswith(INLINE_SCHEMES) or _is_self(url, own)


def browser_available() -> str | None:
    """None when the check can run here, else the reason it cannot (for a skip or a failure)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return (
            "Python package 'playwright' is not installed in this environment "
            "(pip install -c constraints.txt -e '.[dev]')"
        )
    if shutil.which("chromium") is None:
        return "no 'chromium' on PATH (Debian: apt-get update && apt-get install -y chromium)"
    return None


def need_browser() -> None:
    """Skip the calling test (or module fixture) when no browser can run, with a loud reason;
    fail instead when A2C_REQUIRE_BROWSER=1, so CI cannot pass without the browser check."""
    import pytest

    reason = browser_available()
    if reason is None:
        return
    message = f"OFFLINE BROWSER CHECK NOT RUN: {reason}"
    if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
        pytest.fail(f"{message} [{REQUIRE_ENV}=1 makes this a failure]", pytrace=False)
    pytest.skip(f"{message} (set {REQUIRE_ENV}=1 to make this a failure)")


@contextmanager
def open_browser() -> Iterator[Browser]:
    """Headless system Chromium under Playwright, closed on exit. One per test module is enough:
    check_offline gives every file its own fresh context."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError(browser_available() or "no chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_stats(png: Path) -> tuple[int, float]:
    """(distinct colours, capped at COLOUR_CAP + 1; fraction of pixels that differ from the
    background colour: the most common one, or the top-left pixel when there are too many)."""
    with Image.open(png) as im:
        rgb = im.convert("RGB")
    total = rgb.width * rgb.height
    counts = rgb.getcolors(maxcolors=COLOUR_CAP)
    if counts is None:
        colours, background = COLOUR_CAP + 1, rgb.getpixel((0, 0))
    else:
        colours, background = len(counts), max(counts)[1]
    diff = ImageChops.difference(rgb, Image.new("RGB", rgb.size, background))
    r, g, b = diff.split()
    same = ImageChops.lighter(ImageChops.lighter(r, g), b).histogram()[0]
    return colours, (total - same) / total if total else 0.0


def check_offline(
    html_path: str | Path,
    screenshot_path: str | Path,
    *,
    browser: Browser | None = None,
    min_colours: int = 2,
    viewport: tuple[int, int] = (1280, 800),
    timeout_ms: int = 30_000,
    settle_ms: int = 250,
) -> BrowserReport:
    """Open html_path in offline headless Chromium and report what went wrong (see module doc).

    The context is offline and every request that is not the file itself or data:/blob:/about:
    is aborted and listed in external_requests (another local file counts as external too: the
    page must be one file). A full-page PNG goes to screenshot_path; nonblank means it has at
    least min_colours distinct colours (a page that rendered nothing is one flat colour).
    Pass a browser from open_browser() to reuse it; without one a browser is started and closed
    here (do not do that inside an open_browser() block: Playwright's sync API does not nest).
    """
    path = Path(html_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(path)
    shot = Path(screenshot_path)
    shot.parent.mkdir(parents=True, exist_ok=True)
    if browser is None:
        with open_browser() as own_browser:
            return check_offline(
                path,
                shot,
                browser=own_browser,
                min_colours=min_colours,
                viewport=viewport,
                timeout_ms=timeout_ms,
                settle_ms=settle_ms,
            )

    own = path.as_uri()
    rep = BrowserReport(url=own, screenshot=shot)
    context = browser.new_context(
        offline=True,
        service_workers="block",
        viewport={"width": viewport[0], "height": viewport[1]},
    )
    try:

        def external(url: str) -> None:
            if url not in rep.external_requests:
                rep.external_requests.append(url)

        def route(r: Any) -> None:
            url = r.request.url
            if _allowed(url, own):
                r.continue_()
            else:
                external(url)
                r.abort("blockedbyclient")

        def on_request(req: Any) -> None:
            rep.requests.append(req.url)
            if not _allowed(req.url, own):  # also catches what bypasses routing
                external(req.url)

        def on_console(msg: Any) -> None:
            if msg.type == "error":
                loc = msg.location or {}
                where = f" ({loc.get('url', '')}:{loc.get('lineNumber', '')})" if loc else ""
                rep.console_errors.append(f"{msg.text}{where}")

        context.route("**/*", route)
        context.on("request", on_request)  # the context's: popups and frames included
        context.on(
            "requestfailed", lambda req: rep.failed_requests.append(f"{req.url} ({req.failure})")
        )
        page = context.new_page()
        page.on("console", on_console)
        page.on("pageerror", lambda err: rep.page_errors.append(f"{err.name}: {err.message}"))
        page.on("websocket", lambda ws: external(ws.url))

        page.goto(own, wait_until="load", timeout=timeout_ms)
        page.wait_for_load_state("networkidle", timeout=timeout_ms)
        if settle_ms:
            page.wait_for_timeout(settle_ms)  # timers that fire just after load
        rep.title = page.title()
        page.screenshot(path=str(shot), full_page=True, animations="disabled", timeout=timeout_ms)
    finally:
        context.close()
    rep.colours, rep.ink = screenshot_stats(shot)
    rep.nonblank = rep.colours >= min_colours
    return rep


# --- static check -------------------------------------------------------------------------------

# Attributes whose value the browser fetches (`<a>`/`<area>` href is navigation, not a fetch).
_URL_ATTRS = {
    "src",
    "href",
    "xlink:href",
    "poster",
    "data",
    "action",
    "formaction",
    "background",
    "manifest",
}
_SRCSET_ATTRS = {"srcset", "imagesrcset"}
_LINK_TAGS = {"a", "area"}
_EXTERNAL = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)""", re.IGNORECASE | re.DOTALL)
_CSS_IMPORT = re.compile(r"""@import\s+(['"])(.*?)\1""", re.IGNORECASE)


def _css_urls(css: str) -> list[str]:
    return [m.group(2).strip() for m in _CSS_URL.finditer(css)] + [
        m.group(2).strip() for m in _CSS_IMPORT.finditer(css)
    ]


class _UrlCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = 0

    def _add(self, value: str) -> None:
        if _EXTERNAL.match(value):
            self.found.append(value.strip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "style":
            self._in_style += 1
        for name, value in attrs:
            if value is None or name == "xmlns" or name.startswith("xmlns:"):
                continue
            if name in _URL_ATTRS and tag not in _LINK_TAGS:
                self._add(value)
            elif name in _SRCSET_ATTRS:
                for candidate in value.split(","):
                    self._add(candidate.strip().split(" ")[0])
            for url in _css_urls(value):  # style="..." and SVG fill="url(...)" and the like
                self._add(url)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag == "style":
            self._in_style -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self._in_style:
            self._in_style -= 1

    def handle_data(self, data: str) -> None:
        if self._in_style:
            for url in _css_urls(data):
                self._add(url)


def static_external_urls(html_text: str) -> list[str]:
    """External URLs (http://, https:// or protocol-relative //) that the HTML would fetch,
    in document order, without repeats.

    Rule: the values of fetching attributes (src, href, xlink:href, srcset, poster, data,
    action, formaction, background, manifest; but not the href of <a>/<area>, a link the
    reader may follow), CSS url(...) in any attribute value (style="...", fill="url(...)"),
    and url(...) / @import "..." inside <style> elements. xmlns and xmlns:* attributes (inline
    SVG's http://www.w3.org/2000/svg) are names, not fetches, and never count; neither does
    text (a URL shown in a <pre> or a paragraph) nor script source (the browser check catches
    what scripts fetch).
    """
    collector = _UrlCollector()
    collector.feed(html_text)
    collector.close()
    return list(dict.fromkeys(collector.found))
