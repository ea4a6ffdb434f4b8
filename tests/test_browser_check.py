"""The offline browser check (tests/browser.py) on small hand-written pages: a good
self-contained page passes, and each kind of fault is caught."""

from __future__ import annotations

import base64
import io

import pytest
from browser import (
    REQUIRE_ENV,
    check_offline,
    need_browser,
    open_browser,
    screenshot_stats,
    static_external_urls,
)
from PIL import Image

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'width="120" height="60"><defs><linearGradient id="g"><stop offset="0" stop-color="#36a"/>'
    '<stop offset="1" stop-color="#a63"/></linearGradient></defs>'
    '<rect width="120" height="60" fill="url(#g)"/></svg>'
)


def png_data_uri() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 30, 30)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def page(body: str, title: str = "t", head: str = "") -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>{head}</head>'
        f"<body>{body}</body></html>"
    )


GOOD = page(
    f'<h1>Sweep report</h1><img alt="curve" src="{png_data_uri()}" width="80">{SVG}'
    "<p>Run <code>pip install https://example.com/pkg.whl</code> (text, not a fetch).</p>"
    '<a href="https://example.com/docs">docs</a> <a href="#end">end</a><p id="end">end</p>',
    title="Good report",
    head="<style>body{font-family:sans-serif;background:#fcfcfc} h1{color:#234}</style>",
)


@pytest.fixture(scope="module")
def chromium():
    need_browser()
    with open_browser() as browser:
        yield browser


@pytest.fixture
def check(chromium, tmp_path):
    """check(html_text, name) -> BrowserReport, the file written under tmp_path first."""

    def run(html: str, name: str = "page.html"):
        path = tmp_path / name
        path.write_text(html, encoding="utf-8")
        return check_offline(path, tmp_path / "shot.png", browser=chromium)

    return run


# --- in the browser -------------------------------------------------------------------------------


def test_good_page_passes(check):
    rep = check(GOOD, name="sweep report.html")  # a space in the name: still the file itself
    assert rep.ok, rep.summary()
    assert rep.title == "Good report"
    assert rep.console_errors == rep.page_errors == []
    assert rep.failed_requests == rep.external_requests == []
    assert rep.nonblank and rep.colours > 20  # text, a red PNG and an SVG gradient
    assert rep.screenshot.stat().st_size > 0
    assert static_external_urls(GOOD) == []


def test_text_only_page_renders(check):
    """Fonts are installed: a page of text alone is not a blank screenshot."""
    rep = check(page("<p>Only text: IQM 25.0, median 25.0</p>"))
    assert rep.ok, rep.summary()
    assert rep.colours > 2 and rep.ink > 0


def test_external_image_is_flagged(check):
    html = page('<p>hi</p><img src="http://example.com/x.png">')
    rep = check(html)
    assert rep.external_requests == ["http://example.com/x.png"]
    assert not rep.ok
    assert static_external_urls(html) == ["http://example.com/x.png"]


def test_script_fetch_and_sibling_file_are_flagged(check, tmp_path):
    """What only the browser can see: a URL built by script, and a second local file."""
    (tmp_path / "other.png").write_bytes(b"")
    html = page(
        '<p>hi</p><img src="other.png">'
        "<script>fetch('https://api.' + 'example.com/q').catch(() => {})</script>"
    )
    rep = check(html)
    assert sorted(rep.external_requests) == sorted(
        ["https://api.example.com/q", (tmp_path / "other.png").as_uri()]
    ), rep.summary()
    assert static_external_urls(html) == []


def test_console_error_is_flagged(check):
    rep = check(page('<p>hi</p><script>console.error("boom")</script>'))
    assert [e for e in rep.console_errors if "boom" in e], rep.summary()
    assert rep.page_errors == []
    assert not rep.ok


def test_js_exception_is_flagged(check):
    rep = check(page("<p>hi</p><script>null.x</script>"))
    assert len(rep.page_errors) == 1 and "TypeError" in rep.page_errors[0], rep.summary()
    assert not rep.ok


def test_blank_page_is_blank(check):
    rep = check(page(""))
    assert rep.nonblank is False and rep.colours == 1 and rep.ink == 0.0
    assert rep.console_errors == rep.page_errors == rep.external_requests == []
    assert not rep.ok


# --- without the browser --------------------------------------------------------------------------


def test_screenshot_stats(tmp_path):
    png = tmp_path / "s.png"
    im = Image.new("RGB", (10, 10), "white")
    im.putpixel((3, 3), (0, 0, 1))  # differs from the background in one channel by 1
    im.save(png)
    assert screenshot_stats(png) == (2, pytest.approx(0.01))


def test_static_rules():
    html = (
        '<link rel="stylesheet" href="//cdn.example.com/a.css">'
        '<img srcset="data:image/png;base64,AA 1x, https://example.com/b.png 2x">'
        "<div style=\"background: url('https://example.com/c.png')\">x</div>"
        "<style>@import 'https://example.com/d.css'; p { background: url(e.png) }</style>"
        '<script src="HTTPS://example.com/f.js"></script>'
        f"{SVG}<svg><use xlink:href='http://example.com/g.svg#s'/></svg>"
        '<a href="https://example.com/link">a link is not a fetch</a>'
        "<pre>curl https://example.com/text</pre><script>var u = 'https://example.com/js'</script>"
    )
    assert static_external_urls(html) == [
        "//cdn.example.com/a.css",
        "https://example.com/b.png",
        "https://example.com/c.png",
        "https://example.com/d.css",
        "HTTPS://example.com/f.js",
        "http://example.com/g.svg#s",
    ]


def test_missing_browser_skips_or_fails(monkeypatch):
    import browser

    monkeypatch.setattr(browser.shutil, "which", lambda name: None)
    assert "chromium" in browser.browser_available()
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="NOT RUN"):
        need_browser()
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=REQUIRE_ENV):
        need_browser()
