"""Open every page of the built book in headless Chromium and fail on what a reader would meet.

Usage: ``python .ci/browser_test.py [_build/html]`` (``make browser-test``).

The site is served by a local HTTP server on 127.0.0.1 only, and the browser resolves no
other host name (``--host-resolver-rules``), so external resources fail the same way on
every machine, with or without internet. Failures:

* a console error that names a resource of the book itself (a missing script, style,
  image or font), or a JavaScript error, unless it only names a tolerated external URL;
* an image that did not load (``naturalWidth == 0``);
* an internal link to a page that does not exist, or to an anchor that page lacks;
* a chapter page (``notebooks/*.html``) without a figure among its cell outputs;
* a citation without a year ("n.d."), the mark of a BibTeX entry with no ``year``.

A screenshot of each page is saved under ``_build/screenshots/``. The browser is Debian's
``chromium`` with its ``chromedriver`` (Selenium); set ``CHROMIUM`` and ``CHROMEDRIVER``
to use another Chrome (GitHub's runners ship ``google-chrome``). No browser is downloaded.
"""
from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

# External resources the built pages request and that cannot load offline. Each entry is
# a URL prefix; a console error naming only such URLs is reported but tolerated.
TOLERATED_EXTERNAL = (
    # MathJax 3, loaded by Sphinx's mathjax extension; pages without math do not use it.
    "https://cdn.jsdelivr.net/npm/mathjax@3/",
)
SKIPPED_FOLDERS = ("_static", "_sources", "_images", "_sphinx_design_static")
IMAGE_WAIT_S = 10.0
SHOT_WIDTH, SHOT_MAX_HEIGHT = 1280, 12000  # whole page, cut at 12000 px


@dataclass
class PageReport:
    """What one page showed: its problems and what was tolerated."""

    path: str
    problems: list[str] = field(default_factory=list)
    tolerated: list[str] = field(default_factory=list)


class _Anchors(HTMLParser):
    """Collect every ``id`` and ``name`` attribute of an HTML file."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.anchors.add(value)


@functools.lru_cache(maxsize=None)
def anchors_of(path: Path) -> frozenset[str]:
    parser = _Anchors()
    parser.feed(path.read_text(encoding="utf8", errors="replace"))
    return frozenset(parser.anchors)


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``root`` on 127.0.0.1 at a free port, in a daemon thread."""

    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def browser():
    """Headless Chromium driven by Selenium, logging the console; nothing downloaded."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not binary or not driver_path:
        sys.exit("browser test: no chromium/chromedriver found; install Debian's `chromium` and "
                 "`chromium-driver` (apt-get install -y chromium chromium-driver) or set "
                 "CHROMIUM and CHROMEDRIVER")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={SHOT_WIDTH},1000", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=driver_path))


def classify_console(entry: dict, base: str) -> tuple[str | None, str | None]:
    """(problem, tolerated) for one console entry; both None when it is not an error."""
    if entry.get("level") != "SEVERE":
        return None, None
    message = entry.get("message", "")
    urls = re.findall(r"(?:https?|file)://[^\s\"')]+", message)
    external = [u for u in urls if not u.startswith(base)]
    if external and all(u.startswith(TOLERATED_EXTERNAL) for u in external) \
            and not any(u.startswith(base) for u in urls):
        return None, message
    return message, None


def check_links(html_file: Path, root: Path, page_url: str, hrefs: list[str], base: str) -> list[str]:
    """Broken internal links and anchors among ``hrefs`` (absolute URLs) of one page."""
    problems = []
    for href in sorted(set(hrefs)):
        if not href.startswith(base):
            continue
        target, anchor = urldefrag(href)
        relative = unquote(urlparse(target).path)
        file = root / relative.lstrip("/")
        if file.is_dir():
            file = file / "index.html"
        if not file.exists():
            problems.append(f"broken link {href}")
        elif anchor and file.suffix == ".html" and unquote(anchor) not in anchors_of(file):
            problems.append(f"missing anchor #{anchor} in {file.relative_to(root)} (link {href})")
    return problems


def check_page(driver, root: Path, html_file: Path, base: str, shots: Path) -> PageReport:
    relative = html_file.relative_to(root).as_posix()
    report = PageReport(relative)
    url = urljoin(base, relative)
    driver.get(url)
    deadline = time.monotonic() + IMAGE_WAIT_S
    while time.monotonic() < deadline and not driver.execute_script(
            "return document.readyState === 'complete' && "
            "Array.from(document.images).every(i => i.complete)"):
        time.sleep(0.1)
    for entry in driver.get_log("browser"):
        problem, tolerated = classify_console(entry, base)
        if problem:
            report.problems.append(f"console: {problem}")
        if tolerated:
            report.tolerated.append(tolerated)
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.currentSrc || i.src || i.outerHTML.slice(0, 120))")
    report.problems += [f"image did not load: {src[:160]}" for src in broken]
    hrefs = driver.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    report.problems += check_links(html_file, root, url, hrefs, base)
    if relative.startswith("notebooks/"):
        figures = driver.execute_script(
            "return Array.from(document.querySelectorAll('.cell_output img'))"
            ".filter(i => i.naturalWidth > 0).length")
        if not figures:
            report.problems.append("chapter page without a figure in its cell outputs")
    if "n.d." in driver.find_element("tag name", "body").text:
        report.problems.append("a citation without a year ('n.d.'): check book/references.bib")
    save_screenshot(driver, shots / (relative.replace("/", "__").removesuffix(".html") + ".png"))
    return report


def save_screenshot(driver, path: Path) -> None:
    """The whole page (up to SHOT_MAX_HEIGHT px): the window is stretched to the page."""
    height = min(int(driver.execute_script("return document.documentElement.scrollHeight")),
                 SHOT_MAX_HEIGHT)
    driver.set_window_size(SHOT_WIDTH, max(height, 1000))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(SHOT_WIDTH, 1000)


def pages(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.html")
                  if not set(p.relative_to(root).parts[:-1]) & set(SKIPPED_FOLDERS))


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "_build/html").resolve()
    if not (root / "index.html").exists():
        sys.exit(f"browser test: {root}/index.html not found; build the book first (make book)")
    shots = root.parent / "screenshots"
    server, base = serve(root)
    driver = browser()
    reports = []
    try:
        for html_file in pages(root):
            reports.append(check_page(driver, root, html_file, base, shots))
            print(f"{'ok  ' if not reports[-1].problems else 'FAIL'} {reports[-1].path}", flush=True)
    finally:
        driver.quit()
        server.shutdown()
    tolerated = sorted({t for r in reports for t in r.tolerated})
    if tolerated:
        print(f"\ntolerated (external, cannot load offline; see TOLERATED_EXTERNAL):")
        for message in tolerated:
            print(f"  {message}")
    failed = [r for r in reports if r.problems]
    for report in failed:
        print(f"\n{report.path}:")
        for problem in report.problems:
            print(f"  {problem}")
    print(f"\nbrowser test: {len(reports)} pages, {len(failed)} with problems; "
          f"screenshots in {shots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
