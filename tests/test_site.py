"""The built site, as a reader on a train would see it: headless Chromium with the network cut.

Every page of the book is opened from a local HTTP server on 127.0.0.1 in headless Chromium
(Debian's ``chromium``, driven by Python ``playwright``), with every request to another host
aborted and recorded. On each page the test asserts that MathJax typeset all the math with its
own fonts, that every image loaded, that the console stayed free of errors, and that no request
tried to leave the machine. A second group of tests walks every internal link and anchor of the
built HTML, checks the download buttons of the chapters, that no page names an invented address
or (while ``repository.url`` is unset in ``_config.yml``) links to a repository, and that the
display equations of the pages checked so far, and the pages themselves, fit a 400 px phone
screen.

The site is looked for in ``$FISHERBOOK_SITE`` or ``_build/html`` (the default output of
``jupyter-book build .``). Where the site, Chromium or playwright is missing the tests skip with
the reason; with ``FISHERBOOK_REQUIRE_BROWSER=1`` (set in CI) they fail instead.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SITE_DIR = Path(os.environ.get("FISHERBOOK_SITE", REPO_ROOT / "_build" / "html")).resolve()
REQUIRE_BROWSER = os.environ.get("FISHERBOOK_REQUIRE_BROWSER", "") == "1"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    # No name resolves except the loopback: a second wall behind the request router below.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
# Every chapter is a file of a numbered part of the table of contents.
CHAPTERS = [
    Path(entry["file"]).name
    for part in yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())["parts"]
    if part.get("numbered")
    for entry in part["chapters"]
]
# An inline $...$ with a TeX command inside that MyST did not turn into math.
RAW_INLINE_TEX = re.compile(r"\$[^$\n]*\\[A-Za-z]+[^$\n]*\$")
# A TeX command in the prose outside any math, e.g. a {ref} to a heading with math in it shows
# the heading's source ("at every \theta").
RAW_TEX_COMMAND = re.compile(r"\\(?:[A-Za-z]{2,}|[,;!])")


def skip_or_fail(reason: str) -> None:
    """Skip the test with ``reason``, or fail with it when FISHERBOOK_REQUIRE_BROWSER=1."""
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (FISHERBOOK_REQUIRE_BROWSER=1 turns this skip into a failure)")
    pytest.skip(reason)


def site_pages() -> list[Path]:
    """Every page of the built book (the HTML under book/), and the search and index pages."""
    if not SITE_DIR.joinpath("index.html").is_file():
        return []
    extra = [SITE_DIR / name for name in ("search.html", "genindex.html")]
    return sorted(SITE_DIR.joinpath("book").glob("*.html")) + [p for p in extra if p.is_file()]


def page_id(path: Path) -> str:
    return path.relative_to(SITE_DIR).as_posix()


def require_site() -> None:
    if not site_pages():
        skip_or_fail(
            f"no built site in {SITE_DIR}: run `jupyter-book build .` first "
            "(or point FISHERBOOK_SITE at a built _build/html)"
        )


def chromium_executable() -> str | None:
    """Debian's chromium, or the one named by $FISHERBOOK_CHROMIUM."""
    explicit = os.environ.get("FISHERBOOK_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


PAGES = site_pages()
PAGE_PARAMS = [pytest.param(p, id=page_id(p)) for p in PAGES] or [
    pytest.param(None, id="site-not-built")
]


# --------------------------------------------------------------------------- static HTML checks


class _LinkCollector(HTMLParser):
    """Collects the ids of a page and the URLs it refers to (href of a/link, src of img/script)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.refs: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if values.get(key):
                self.ids.add(values[key])  # type: ignore[arg-type]
        for key in ("href", "src"):
            url = values.get(key)
            if url is not None and tag in {"a", "link", "img", "script", "iframe", "source"}:
                self.refs.append((tag, url))


@functools.cache
def parse_page(path: Path) -> _LinkCollector:
    collector = _LinkCollector()
    collector.feed(path.read_text(encoding="utf-8"))
    return collector


def all_html_pages() -> list[Path]:
    """Every HTML page Sphinx wrote (not the theme's templates under _static, nor _sources)."""
    return sorted(
        p
        for p in SITE_DIR.rglob("*.html")
        if p.relative_to(SITE_DIR).parts[0] not in {"_static", "_sources", "_images"}
    )


def broken_internal_links(page: Path) -> list[str]:
    """Internal references of ``page`` whose file or #anchor does not exist in the built site."""
    problems = []
    for tag, url in parse_page(page).refs:
        parts = urlsplit(url)
        if parts.scheme or parts.netloc or url.startswith(("mailto:", "javascript:", "data:")):
            continue
        path_part = unquote(parts.path)
        target = page if path_part == "" else (page.parent / path_part).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(SITE_DIR):
            problems.append(f"<{tag}> {url}: leaves the site")
            continue
        if not target.is_file():
            problems.append(f"<{tag}> {url}: no file {target.relative_to(SITE_DIR)}")
            continue
        fragment = unquote(parts.fragment)
        if fragment and target.suffix == ".html" and fragment not in parse_page(target).ids:
            problems.append(f"<{tag}> {url}: no id '{fragment}' in {target.relative_to(SITE_DIR)}")
    return problems


def test_every_internal_link_and_anchor_resolves() -> None:
    require_site()
    pages = all_html_pages()
    problems = {
        page_id(page): broken for page in pages if (broken := broken_internal_links(page))
    }
    assert not problems, "broken internal links:\n" + "\n".join(
        f"{page}: {msg}" for page, msgs in problems.items() for msg in msgs
    )
    # A sanity check that the walker walked: the book has links between its pages.
    assert sum(len(parse_page(p).refs) for p in pages) > 100


def test_toc_pages_are_all_built() -> None:
    require_site()
    names = {p.stem for p in PAGES}
    expected = {"index", "notation", *CHAPTERS, "errata", "api", "bibliography", "execution"}
    assert expected <= names, f"pages missing from the build: {sorted(expected - names)}"


def repository_url() -> str | None:
    """The repository address of _config.yml (``repository.url``), or None while it is unset."""
    import yaml

    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text(encoding="utf-8"))
    return (config.get("repository") or {}).get("url") or None


# Addresses that were once typed into the book without existing; none may come back.
INVENTED_ADDRESSES = re.compile(r"fisherbook\.example\b|github\.com/fisherbook|hub\.fisherbook")
# Links that need a repository: launch services, repository and issue buttons, clone commands.
REPOSITORY_LINKS = re.compile(
    r"mybinder\.org|colab\.research\.google\.com|/hub/user-redirect|github\.com/|gitlab\.com/"
    r"|bitbucket\.org/|git clone")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_has_a_download_button_and_launch_buttons_only_with_a_repository(
        chapter: str) -> None:
    require_site()
    page = SITE_DIR / "book" / f"{chapter}.html"
    assert page.is_file(), f"{chapter} was not built"
    urls = [url for _, url in parse_page(page).refs]
    downloads = [u for u in urls if u.endswith(f"_sources/book/{chapter}.ipynb")]
    assert downloads, f"{chapter}: no .ipynb download link"
    assert (page.parent / downloads[0]).resolve().is_file()
    repository = repository_url()
    if repository is None:
        linked = [u for u in urls if REPOSITORY_LINKS.search(u)]
        assert not linked, f"{chapter}: links that need a repository, yet none is set: {linked}"
    else:
        assert any(u.startswith(repository) for u in urls), f"{chapter}: no repository button"


def test_no_invented_addresses_anywhere() -> None:
    """No page, source or configuration names an address that does not exist; while
    ``repository.url`` is unset, no page links to a repository, a launch service or a clone."""
    require_site()
    sources = [REPO_ROOT / "_config.yml", REPO_ROOT / "README.md",
               *sorted((REPO_ROOT / "book").glob("*.md")),
               *sorted((REPO_ROOT / "book").glob("*.ipynb"))]
    built = [p for p in SITE_DIR.rglob("*") if p.suffix in {".html", ".js", ".txt", ".ipynb"}
             and "_static" not in p.relative_to(SITE_DIR).parts]
    invented = [f"{p}: {m.group(0)}" for p in [*sources, *built]
                for m in INVENTED_ADDRESSES.finditer(p.read_text(encoding="utf-8", errors="replace"))]
    assert not invented, "invented addresses:\n" + "\n".join(invented[:20])
    if repository_url() is None:
        linked = [f"{page_id(page)}: {url}" for page in all_html_pages()
                  for _, url in parse_page(page).refs if REPOSITORY_LINKS.search(url)]
        assert not linked, "links that need a repository, yet none is set:\n" + "\n".join(linked)


def test_no_page_refers_to_another_host_for_scripts_styles_or_images() -> None:
    """Statically, before the browser: <script src>, <link rel=stylesheet>, <img src> are local."""
    require_site()
    remote = [
        f"{page_id(page)}: <{tag}> {url}"
        for page in all_html_pages()
        for tag, url in parse_page(page).refs
        if tag in {"script", "img", "link", "iframe", "source"} and urlsplit(url).netloc
        and not (tag == "link" and not url.endswith(".css"))
    ]
    assert not remote, "resources on another host:\n" + "\n".join(remote)


def test_every_mathjax_macro_is_documented_for_authors() -> None:
    """The macros in _config.yml are the book's vocabulary: each one, with its expansion, is in
    the authors' table of README.md (readers see the symbols on the notation page, not macros)."""
    import yaml

    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text(encoding="utf-8"))
    macros = config["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    heading = "## Writing for the book: the MathJax macros"
    assert heading in readme, f"README.md has no section {heading!r}"
    section = readme.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `\\")]
    missing = [name for name in macros
               if not any(f"`\\{name}`" in row and f"`{body}`" in row
                          for row in rows for body in [macros[name]])]
    assert not missing, f"macros not in README.md's table with their expansion: {missing}"
    notation = (REPO_ROOT / "book" / "notation.md").read_text(encoding="utf-8")
    assert "mathjax3_config" not in notation, "the notation page is for readers, not authors"
    assert config["sphinx"]["config"]["mathjax_path"].startswith("mathjax/"), "MathJax not local"
    assert (REPO_ROOT / "book" / "_static" / config["sphinx"]["config"]["mathjax_path"]).is_file()


# --------------------------------------------------------------------------- browser checks


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    require_site()
    handler = functools.partial(_QuietHandler, directory=str(SITE_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_executable()
    if executable is None:
        skip_or_fail("Chromium is not installed (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the Python package playwright is not installed (pip install playwright)")
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class PageVisit:
    """One page load with the network cut: what was blocked, failed or logged as an error."""

    def __init__(self, browser: object, url: str) -> None:
        self.blocked: list[str] = []
        self.failed: list[str] = []
        self.console_errors: list[str] = []
        self.context = browser.new_context(  # type: ignore[attr-defined]
            viewport={"width": 1280, "height": 900}, service_workers="block"
        )
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.console_errors.append(f"pageerror: {exc}"))
        self.page.on("response", self._response)
        self.page.on("requestfailed", self._request_failed)
        self.page.goto(url, wait_until="load")

    def _route(self, route: object) -> None:
        url = route.request.url  # type: ignore[attr-defined]
        parts = urlsplit(url)
        if parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname not in LOCAL_HOSTS:
            self.blocked.append(url)
            route.abort("blockedbyclient")  # type: ignore[attr-defined]
        else:
            route.continue_()  # type: ignore[attr-defined]

    def _console(self, message: object) -> None:
        if message.type == "error":  # type: ignore[attr-defined]
            location = message.location  # type: ignore[attr-defined]
            self.console_errors.append(f"{message.text} @ {location.get('url', '')}")  # type: ignore[attr-defined]

    def _response(self, response: object) -> None:
        if response.status >= 400:  # type: ignore[attr-defined]
            self.failed.append(f"HTTP {response.status} {response.url}")  # type: ignore[attr-defined]

    def _request_failed(self, request: object) -> None:
        if request.url not in self.blocked:  # type: ignore[attr-defined]
            self.failed.append(f"{request.failure} {request.url}")  # type: ignore[attr-defined]

    def close(self) -> None:
        self.context.close()


WAIT_FOR_MATHJAX = """
async () => {
  const math = document.querySelectorAll('.math');
  if (math.length === 0) return {math: 0};
  const t0 = Date.now();
  while (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) {
    if (Date.now() - t0 > 20000) return {math: math.length, mathjax: false};
    await new Promise(r => setTimeout(r, 50));
  }
  await MathJax.startup.promise;
  await document.fonts.ready;
  return {math: math.length, mathjax: true};
}
"""

INSPECT_PAGE = """
async () => {
  const root = document.querySelector('main') || document.body;
  const math = [...root.querySelectorAll('.math')];
  const untypeset = math.filter(el => !el.querySelector('mjx-container'))
                        .map(el => el.textContent.trim().slice(0, 80));
  const mathErrors = [...root.querySelectorAll('mjx-merror, [data-mjx-error]')]
      .map(el => (el.getAttribute('data-mjx-error') || el.textContent).slice(0, 80));
  // Undefined macros are typeset as red text; report the TeX source of the formulas holding them.
  const items = (window.MathJax && MathJax.startup && MathJax.startup.document)
      ? MathJax.startup.document.getMathItemsWithin(root) : [];
  const undefinedMacros = items
      .filter(item => item.typesetRoot &&
              item.typesetRoot.querySelector('mjx-mtext[style*="color: red"]'))
      .map(item => item.math.slice(0, 80));
  // Inline formulas must sit in the prose, not in scroll boxes: a desktop browser draws a
  // scrollbar under each one that overflows by a pixel (headless Chromium hides scrollbars, so
  // the style itself is checked).
  const scrollingInlineMath = [...root.querySelectorAll('span.math, mjx-container:not([display="true"])')]
      .filter(el => ['auto', 'scroll'].includes(getComputedStyle(el).overflowX))
      .map(el => el.textContent.trim().slice(0, 60));
  const images = [...root.querySelectorAll('img')];
  images.forEach(img => { img.loading = 'eager'; });
  await Promise.all(images.map(img => img.complete ? null :
      new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); })));
  const brokenImages = images.filter(img => !(img.naturalWidth > 0))
                             .map(img => img.getAttribute('src'));
  const clone = root.cloneNode(true);
  // Prose only: code, signatures (default values may hold matplotlib labels) and typeset math out.
  clone.querySelectorAll('pre, code, kbd, samp, script, style, textarea, mjx-container, ' +
                         '.highlight, .sig, span.pre')
       .forEach(el => el.remove());
  const text = clone.textContent;
  const fonts = [...document.fonts];
  return {
    untypeset, mathErrors, undefinedMacros, brokenImages, scrollingInlineMath,
    images: images.length,
    mjxContainers: root.querySelectorAll('mjx-container').length,
    text,
    fontErrors: fonts.filter(f => f.status === 'error').map(f => f.family),
    mathFontsLoaded: fonts.filter(f => f.family.startsWith('MJX') && f.status === 'loaded')
                          .map(f => f.family),
  };
}
"""


@pytest.mark.parametrize("page", PAGE_PARAMS)
def test_page_renders_offline(page: Path | None, site_url: str, browser: object) -> None:
    assert page is not None
    visit = PageVisit(browser, f"{site_url}/{page_id(page)}")
    try:
        mathjax = visit.page.evaluate(WAIT_FOR_MATHJAX)
        report = visit.page.evaluate(INSPECT_PAGE)
    finally:
        visit.close()
    name = page_id(page)
    assert not visit.blocked, f"{name} tried to reach another host: {visit.blocked}"
    assert not visit.failed, f"{name}: requests that failed: {visit.failed}"
    assert not visit.console_errors, f"{name}: console errors: {visit.console_errors}"
    if mathjax["math"]:
        assert mathjax["mathjax"], f"{name}: has math but MathJax never started"
        assert not report["untypeset"], f"{name}: math left untypeset: {report['untypeset']}"
        assert not report["mathErrors"], f"{name}: MathJax errors: {report['mathErrors']}"
        assert not report["undefinedMacros"], (
            f"{name}: undefined TeX macros: {report['undefinedMacros']}"
        )
        assert report["mathFontsLoaded"], f"{name}: no MathJax font was loaded from the site"
        assert not report["scrollingInlineMath"], (
            f"{name}: inline math drawn with a scrollbar: {report['scrollingInlineMath'][:5]}"
        )
    assert not report["fontErrors"], f"{name}: fonts that failed to load: {report['fontErrors']}"
    assert "$$" not in report["text"], f"{name}: raw $$ left in the text"
    raw = RAW_INLINE_TEX.findall(report["text"])
    assert not raw, f"{name}: raw inline TeX left in the text: {raw[:5]}"
    commands = [
        report["text"][max(0, m.start() - 40) : m.end() + 20].replace("\n", " ")
        for m in RAW_TEX_COMMAND.finditer(report["text"])
    ]
    assert not commands, f"{name}: TeX commands outside math: {commands[:5]}"
    assert not report["brokenImages"], f"{name}: images that did not load: {report['brokenImages']}"


def test_chapters_have_rendered_math(site_url: str, browser: object) -> None:
    """The chapters are about equations: each must have typeset math (guards the check above)."""
    chapters = [p for p in PAGES if p.stem in CHAPTERS]
    if not chapters:
        skip_or_fail("no chapter pages in the built site")
    for page in chapters:
        visit = PageVisit(browser, f"{site_url}/{page_id(page)}")
        try:
            visit.page.evaluate(WAIT_FOR_MATHJAX)
            count = visit.page.evaluate("() => document.querySelectorAll('mjx-container').length")
        finally:
            visit.close()
        assert count > 0, f"{page_id(page)}: no typeset math at all"


# Pages checked to fit a phone: every chapter, the reader's pages and the API reference.
PHONE_CHECKED_PAGES = [*CHAPTERS, "index", "notation", "errata", "bibliography", "api"]

OVERFLOWING_DISPLAY_MATH = """
async () => {
  if (window.MathJax && MathJax.startup) await MathJax.startup.promise;
  await document.fonts.ready;
  return [...document.querySelectorAll('main mjx-container[display="true"]')]
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .map(el => `${el.scrollWidth - el.clientWidth}px too wide: ${el.textContent.slice(0, 60)}`);
}
"""


# What makes the page itself wider than the screen: elements reaching past its right edge that
# no scroll box (overflow-x other than visible) holds. Code and wide outputs scroll in their own
# boxes, which is fine; a long unbreakable word in the prose (an inline code name) is not.
PAGE_WIDER_THAN_SCREEN = """
() => {
  const width = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth <= width + 1) return [];
  const inScrollBox = el => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement)
      if (getComputedStyle(a).overflowX !== 'visible') return true;
    return false;
  };
  return [...document.querySelectorAll('main *')]
    .filter(el => el.getBoundingClientRect().right > width + 1 && !inScrollBox(el))
    .map(el => `${el.tagName.toLowerCase()}.${el.className}: ${el.textContent.trim().slice(0, 60)}`)
    .slice(0, 5);
}
"""


@pytest.mark.parametrize("name", PHONE_CHECKED_PAGES)
def test_display_equations_fit_a_phone(name: str, site_url: str, browser: object) -> None:
    """At 400 px (a phone) no display equation needs to scroll sideways, and neither does the
    page itself (code and wide outputs scroll inside their own boxes)."""
    page = SITE_DIR / "book" / f"{name}.html"
    if not page.is_file():
        skip_or_fail(f"{name} was not built")
    context = browser.new_context(viewport={"width": 400, "height": 800})  # type: ignore[attr-defined]
    try:
        tab = context.new_page()
        tab.goto(f"{site_url}/{page_id(page)}", wait_until="load")
        too_wide = tab.evaluate(OVERFLOWING_DISPLAY_MATH)
        page_width = tab.evaluate("() => document.documentElement.scrollWidth")
        widening = tab.evaluate(PAGE_WIDER_THAN_SCREEN)
    finally:
        context.close()
    assert not too_wide, f"{name}: display equations wider than a 400 px screen:\n" + "\n".join(
        too_wide)
    assert page_width <= 401, (
        f"{name}: the page is {page_width} px wide on a 400 px screen; reaching past its edge:\n"
        + "\n".join(widening)
    )
