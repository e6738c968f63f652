"""Open every page of the built book in headless Chromium and fail on what a reader would meet.

Usage: ``python .ci/browser_test.py [_build/html]`` (``make browser-test``).

The site is served by a local HTTP server on 127.0.0.1 only, and the browser resolves no
other host name (``--host-resolver-rules``), so external resources fail the same way on
every machine, with or without internet. Failures:

* a console error (a missing script, style, image or font, an external resource that
  cannot load offline, a JavaScript error);
* an image that did not load (``naturalWidth == 0``), or whose alt text is missing from a
  figure or is a file name;
* an equation that MathJax did not typeset (a ``.math`` element without ``mjx-container``);
* a paragraph that starts with ``|``: a Markdown table that was not rendered as a table;
* an absolute path of the build machine in the text or the alt texts: the clone's folder,
  ``/tmp/``, ``/home/``, ``/root/``;
* more warning lines in a page's cell outputs than ``WARNING_LINES`` allows it (0 unless
  listed there, with the reason);
* an internal link to a page that does not exist, or to an anchor that page lacks;
* a chapter page (``notebooks/*.html``) without a figure among its cell outputs, without a
  figure ``REQUIRED_FIGURES`` names for it, or with the same figure twice;
* a citation without a year ("n.d."), the mark of a BibTeX entry with no ``year``.

Screenshots of each whole page, in tiles of ``SHOT_TILE`` px from top to bottom, are saved
under ``_build/screenshots/``. The browser is Debian's ``chromium`` with its
``chromedriver`` (Selenium); set ``CHROMIUM`` and ``CHROMEDRIVER`` to use another Chrome
(GitHub's runners ship ``google-chrome``). No browser is downloaded.
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

SKIPPED_FOLDERS = ("_static", "_sources", "_images", "_sphinx_design_static")
IMAGE_WAIT_S = 10.0
MATH_WAIT_S = 20.0
SHOT_WIDTH, SHOT_TILE = 1280, 4000  # whole pages, in tiles of this height
CLONE = Path(__file__).resolve().parents[1]

_COLLAPSE = "a CollapseWarning, shown once (chapter_aids.page): the chapter trains runs that the collapse rule flags, "
_FLAT = (
    "a FlatMapWarning per place that trains, shown once: a smoke run whose map ends phase 1 with a contrast "
    "below 0.25 (the paper recipe's saturated map, the L1 baseline's barely moving weights, or a map with only "
    "a few epochs to learn), which the chapters count and chapter 5 explains"
)


def _allow(collapse: int, flat: int, why: str) -> tuple[int, str]:
    reasons = ([_COLLAPSE + why] if collapse else []) + ([_FLAT] if flat else [])
    return collapse + flat, "; and ".join(reasons)


#: Warning lines a page's cell outputs may show, above the default of 0, and why.
WARNING_LINES: dict[str, tuple[int, str]] = {
    "notebooks/04_combined_loss.html": _allow(1, 1, "section 4.5's paper-options run, whose map saturates"),
    "notebooks/05_two_phase_training.html": _allow(
        2, 2, "the paper recipe's saturated maps and a run that predicts one class: the chapter's subject"
    ),
    "notebooks/06_idrid.html": _allow(1, 1, "a smoke run on the stand-in that predicts one class for 3 epochs"),
    "notebooks/07_jaffe.html": _allow(1, 1, "a smoke run that predicts one class for 3 epochs"),
    "notebooks/08_your_own_data.html": _allow(0, 1, ""),
    "notebooks/09_retinamnist.html": _allow(1, 1, "the paper recipe's map saturating on RetinaMNIST"),
    "notebooks/10_baselines.html": _allow(0, 1, ""),
    "notebooks/11_results.html": _allow(0, 1, ""),
    "notebooks/12_attention_maps.html": _allow(1, 1, "the paper recipe's runs, compared with the recommended one"),
    "notebooks/13_sensitivity_and_design.html": _allow(
        1, 1, "a sweep setting whose run predicts one class for 3 epochs, which the sweep exists to find"
    ),
}
#: Figures a chapter must show, by a phrase of their alt text (their titles).
REQUIRED_FIGURES: dict[str, tuple[str, ...]] = {
    "notebooks/01_structured_images.html": ("training images (relevant region in cyan)",),
    "notebooks/04_combined_loss.html": ("learned maps on the scale [0, 1]",),
    "notebooks/05_two_phase_training.html": ("train loss against epoch", "final maps"),
    "notebooks/09_retinamnist.html": ("GSA, paper recipe", "GSA, recommended recipe"),
    "notebooks/12_attention_maps.html": ("Grad-CAM, Grad-CAM++ and the ResAttNet mask on the same test images",),
    "notebooks/13_sensitivity_and_design.html": ("against K, λ and E",),
}

WARNING_LINE = re.compile(r"\b[A-Z]\w*Warning\b:|^\s*warnings\.warn\(|\.py:\d+: ", re.MULTILINE)
FILE_NAME = re.compile(r"^\S*\.(png|jpe?g|gif|svg|webp)$|^[0-9a-f]{32,}$", re.IGNORECASE)
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(tmp|home|root)/")


def warning_lines(text: str) -> list[str]:
    """The lines of ``text`` that are a warning, or the module path or source line of one."""
    return [line for line in text.splitlines() if WARNING_LINE.search(line)]


def file_name_alt(alt: str | None) -> bool:
    """Whether an image's alt text is missing or only a file name (or a hash)."""
    name = (alt or "").strip()
    return not name or bool(FILE_NAME.match(name.rsplit("/", 1)[-1]))


def machine_paths(text: str, clone: Path = CLONE) -> list[str]:
    """Absolute paths of the build machine in ``text``: the clone's folder, /tmp/, /home/, /root/."""
    found = [m.group(0) for m in MACHINE_PATH.finditer(text)]
    if str(clone) in text:
        found.append(str(clone))
    return found


@dataclass
class PageReport:
    """What one page showed: its problems."""

    path: str
    problems: list[str] = field(default_factory=list)


class _Anchors(HTMLParser):
    """Collect every ``id`` and ``name`` attribute of an HTML file."""

    def __init__(self) -> None:
        super().__init__()
        self.anchors: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.anchors.add(value)


@functools.cache
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
        sys.exit(
            "browser test: no chromium/chromedriver found; install Debian's `chromium` and "
            "`chromium-driver` (apt-get install -y chromium chromium-driver) or set "
            "CHROMIUM and CHROMEDRIVER"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={SHOT_WIDTH},1000",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=driver_path))


def console_problem(entry: dict) -> str | None:
    """The console entry as a problem when it is an error, else None."""
    if entry.get("level") != "SEVERE":
        return None
    return entry.get("message", "")


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


PAGE_FACTS = """
const body = document.body.cloneNode(true);
body.querySelectorAll('script, style').forEach(e => e.remove());
const outputs = Array.from(document.querySelectorAll('.cell_output'));
const figures = Array.from(document.querySelectorAll('.cell_output img'));
return {
  text: body.textContent,
  alts: Array.from(document.images).map(i => i.getAttribute('alt') || ''),
  figures: figures.map(i => ({src: i.getAttribute('src'), alt: i.getAttribute('alt'), ok: i.naturalWidth > 0})),
  untypeset: Array.from(document.querySelectorAll('.math'))
    .filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.trim().slice(0, 80)),
  pipes: Array.from(document.querySelectorAll('p'))
    .map(p => p.textContent.trim()).filter(s => s.startsWith('|')).map(s => s.slice(0, 80)),
  outputs: outputs.map(o => o.innerText).join('\\n'),
};
"""


def wait_for_math(driver) -> None:
    """Until MathJax has typeset the page (pages without maths do not load it)."""
    driver.set_script_timeout(MATH_WAIT_S)
    driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
        "  MathJax.startup.promise.then(() => done(true), () => done(false));"
        "else done(null);"
    )


def check_page(driver, root: Path, html_file: Path, base: str, shots: Path) -> PageReport:
    relative = html_file.relative_to(root).as_posix()
    report = PageReport(relative)
    url = urljoin(base, relative)
    driver.get(url)
    deadline = time.monotonic() + IMAGE_WAIT_S
    while time.monotonic() < deadline and not driver.execute_script(
        "return document.readyState === 'complete' && Array.from(document.images).every(i => i.complete)"
    ):
        time.sleep(0.1)
    wait_for_math(driver)
    for entry in driver.get_log("browser"):
        problem = console_problem(entry)
        if problem:
            report.problems.append(f"console: {problem}")
    broken = driver.execute_script(
        "return Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
        ".map(i => i.currentSrc || i.src || i.outerHTML.slice(0, 120))"
    )
    report.problems += [f"image did not load: {src[:160]}" for src in broken]
    hrefs = driver.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    report.problems += check_links(html_file, root, url, hrefs, base)
    facts = driver.execute_script(PAGE_FACTS)
    report.problems += [f"equation not typeset: {m}" for m in facts["untypeset"]]
    report.problems += [f"a paragraph starts with '|' (a table not rendered): {p}" for p in facts["pipes"]]
    report.problems += [
        f"machine path in the page: {p}" for p in sorted(set(machine_paths(facts["text"] + "\n".join(facts["alts"]))))
    ]
    report.problems += check_figures(relative, facts["figures"], facts["outputs"])
    if "n.d." in facts["text"]:
        report.problems.append("a citation without a year ('n.d.'): check book/references.bib")
    save_screenshots(driver, shots / relative.replace("/", "__").removesuffix(".html"))
    return report


def check_figures(relative: str, figures: list[dict], outputs: str) -> list[str]:
    """Alt texts, duplicates, required figures and warning lines of one page's cell outputs."""
    problems = [
        f"figure alt text is a file name or empty: {f['alt']!r} ({f['src']})"
        for f in figures
        if file_name_alt(f["alt"])
    ]
    sources = [f["src"] for f in figures]
    problems += [
        f"the same figure twice: {src} (alt {f['alt']!r})"
        for src, f in {f["src"]: f for f in figures}.items()
        if sources.count(src) > 1
    ]
    if relative.startswith("notebooks/"):
        if not any(f["ok"] for f in figures):
            problems.append("chapter page without a figure in its cell outputs")
        for phrase in REQUIRED_FIGURES.get(relative, ()):
            if not any(phrase.lower() in (f["alt"] or "").lower() for f in figures):
                problems.append(f"no figure whose alt text (its titles) contains {phrase!r}")
    lines = warning_lines(outputs)
    allowed, _why = WARNING_LINES.get(relative, (0, ""))
    if len(lines) > allowed:
        problems.append(
            f"{len(lines)} warning lines in the cell outputs (allowed: {allowed}; "
            "WARNING_LINES):\n    " + "\n    ".join(line[:160] for line in lines)
        )
    return problems


def save_screenshots(driver, stem: Path) -> None:
    """The whole page, in tiles of SHOT_TILE px: ``<stem>-01.png``, ``<stem>-02.png``, ..."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(SHOT_WIDTH, min(max(height, 1000), SHOT_TILE))
    stem.parent.mkdir(parents=True, exist_ok=True)
    for old in stem.parent.glob(f"{stem.name}-[0-9][0-9].png"):
        old.unlink()
    for number, top in enumerate(range(0, max(height, 1), SHOT_TILE), start=1):
        driver.execute_script("window.scrollTo(0, arguments[0])", top)
        time.sleep(0.1)
        driver.save_screenshot(str(stem.parent / f"{stem.name}-{number:02d}.png"))
    driver.set_window_size(SHOT_WIDTH, 1000)


def pages(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.html") if not set(p.relative_to(root).parts[:-1]) & set(SKIPPED_FOLDERS))


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
    failed = [r for r in reports if r.problems]
    for report in failed:
        print(f"\n{report.path}:")
        for problem in report.problems:
            print(f"  {problem}")
    print(f"\nbrowser test: {len(reports)} pages, {len(failed)} with problems; screenshots in {shots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
