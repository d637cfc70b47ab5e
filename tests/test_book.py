"""The smoke profile end to end: papermill executes every notebook, Jupyter Book builds the HTML, and the
pages hold every chapter, tables with numbers and non-empty figures; then a real headless Chromium renders
the results and evaluate pages (tables visible, images loaded, no broken links).

The build runs in a copy of the repository under the test's tmp folder, so it never touches the
developer's own book, data or runs.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

# the smoke profile's whole pipeline and a Jupyter Book build: minutes
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["book/intro", "book/methods", "book/reproduce", "book/notebooks/architecture", "book/notebooks/data",
            "book/notebooks/refinement", "book/notebooks/results", "book/notebooks/injection",
            "book/notebooks/qualitative", "book/notebooks/train/unet-refined", "book/notebooks/train/unet-base",
            "book/notebooks/train/extended_unet-refined", "book/notebooks/evaluate/unet",
            "book/notebooks/evaluate/extended_unet", "book/notebooks/parser", "book/notebooks/claims",
            "book/notebooks/evidence", "book/api",
            "book/references"]


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line and (ROOT / line).is_file()]


@pytest.fixture(scope="module")
def smoke_book(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("repo")
    for rel in _tracked_files():
        dest = copy / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    env = {**os.environ, "PYTHONPATH": str(copy), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "clothparse.cli", "book", "--profile", "smoke"], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=1800)
    (copy / "book-build.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"book build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    index = copy / "_build" / "html" / "index.html"
    assert str(index) in proc.stdout, "the runner must end by printing the path of index.html"
    # a second run executes nothing: every step is cached at once (none keyed on state it changed itself)
    again = subprocess.run([sys.executable, "-m", "clothparse.cli", "book", "--profile", "smoke", "--no-build"],
                           cwd=copy, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    steps = [line.split() for line in again.stdout.splitlines() if line.startswith("  ") and len(line.split()) >= 2]
    statuses = {words[1]: words[0] for words in steps if words[0] in ("cached", "executing", "done", "FAILED")}
    assert len(statuses) >= 10 and set(statuses.values()) == {"cached"}, again.stdout
    # ... and the first page still tells how long each execution behind a page took
    recorded = json.loads((copy / "book" / "generated" / "steps.json").read_text())
    assert all(step["seconds"] > 0 for step in recorded), recorded
    yield copy / "_build" / "html"
    # the trained models (hundreds of MB) are not needed to diagnose a page; the book and its log stay
    shutil.rmtree(copy / "runs", ignore_errors=True)


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.cells, self.images, self.links = 0, [], [], []
        self.data_cells: list[int] = []  # indices of <td> cells (headers may say e.g. "none" = no clothing)
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables += 1
        elif tag in ("td", "th"):
            self._in_cell = True
            if tag == "td":
                self.data_cells.append(len(self.cells))
            self.cells.append("")
        elif tag == "img" and a.get("src"):
            self.images.append(a["src"])
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells[-1] += data


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_every_chapter_is_built(smoke_book):
    missing = [c for c in CHAPTERS if not (smoke_book / f"{c}.html").is_file()]
    assert not missing, f"pages missing from the book: {missing}"
    summary = (smoke_book / "book" / "intro.html").read_text()
    assert "smoke" in summary and "Commit" in summary and "Hardware" in summary


@pytest.mark.parametrize("chapter", ["results", "injection", "evaluate/extended_unet", "evaluate/unet", "data",
                                     "refinement", "architecture", "claims"])
def test_tables_hold_numbers_and_no_nan(smoke_book, chapter):
    page = _parse(smoke_book / "book" / "notebooks" / f"{chapter}.html")
    assert page.tables > 0, f"{chapter}: no table"
    numbers = [c for c in page.cells if re.fullmatch(r"\s*[-−+]?\d+(\.\d+)?\s*%?\s*", c)]
    assert len(numbers) >= 5, f"{chapter}: tables hold too few numbers"
    nan = [page.cells[i] for i in page.data_cells
           if page.cells[i].strip().lower() in ("nan", "none", "<na>", "inf", "-inf")]
    assert not nan, f"{chapter}: table cells without a number: {nan[:5]}"


@pytest.mark.parametrize("chapter", ["results", "injection", "qualitative", "evaluate/extended_unet",
                                     "architecture", "refinement", "train/extended_unet-refined", "claims"])
def test_figures_exist_and_are_not_empty(smoke_book, chapter):
    html = smoke_book / "book" / "notebooks" / f"{chapter}.html"
    page = _parse(html)
    figures = [src for src in page.images if not src.startswith("data:") and "logo" not in src]
    assert figures, f"{chapter}: no figure"
    for src in figures:
        f = (html.parent / unquote(urlparse(src).path)).resolve()
        assert f.is_file() and f.stat().st_size > 1000, f"{chapter}: figure {src} missing or empty"


def _chromium_driver(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and chromedriver):
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic", f"--user-data-dir={tmp_path / 'chrome-profile'}", "--window-size=1400,2000"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(chromedriver), options=opts)


@pytest.mark.parametrize("chapter", ["results", "evaluate/extended_unet"])
def test_a_real_browser_renders_the_page(smoke_book, chapter, tmp_path):
    driver = _chromium_driver(tmp_path)
    try:
        page = smoke_book / "book" / "notebooks" / f"{chapter}.html"
        driver.get(page.as_uri())
        driver.save_screenshot(str(tmp_path / f"{chapter.replace('/', '_')}.png"))
        state = driver.execute_script("""
            const imgs = [...document.querySelectorAll('article img')];
            const tables = [...document.querySelectorAll('article table')];
            return {
              title: document.title,
              images: imgs.length,
              broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
              tables: tables.length,
              visibleTables: tables.filter(t => t.getBoundingClientRect().height > 0).length,
              links: [...document.querySelectorAll('a[href]')].map(a => a.href).filter(h => h.startsWith('file:')),
            };""")
    finally:
        driver.quit()
    assert state["tables"] > 0 and state["visibleTables"] == state["tables"], state
    assert state["images"] > 0 and not state["broken"], state["broken"]
    dead = [h for h in state["links"] if not Path(unquote(urlparse(h).path)).exists()]
    assert not dead, f"broken links: {dead[:5]}"
    assert (tmp_path / f"{chapter.replace('/', '_')}.png").stat().st_size > 10_000


#: The pages with the widest tables.
WIDE_TABLE_PAGES = ["book/notebooks/results", "book/notebooks/evaluate/extended_unet", "book/notebooks/injection",
                    "book/notebooks/data", "book/notebooks/architecture", "book/notebooks/claims"]


def test_no_table_is_wider_than_the_page(smoke_book, tmp_path):
    """At a 1,400 × 2,000 window (the driver's), every table of the main pages fits its article and its cell's
    output column: none needs a horizontal scroll bar to be read (book/_static/clothparse.css, report.grouped)."""
    pages = WIDE_TABLE_PAGES
    driver = _chromium_driver(tmp_path)
    measured = {}
    try:
        for p in pages:
            driver.get((smoke_book / f"{p}.html").as_uri())
            driver.save_screenshot(str(tmp_path / f"{p.replace('/', '_')}.png"))
            measured[p] = driver.execute_script("""
                const article = document.querySelector('article.bd-article') || document.querySelector('article');
                const width = article.getBoundingClientRect().width;
                const css = [...document.styleSheets].some(s => (s.href || '').includes('/clothparse.css'));
                return {article: width, css: css,
                        tables: [...article.querySelectorAll('table')].map(t => ({
                          width: Math.max(t.getBoundingClientRect().width, t.scrollWidth),
                          // the cell's output column, narrower than the article: a table wider spills over it
                          box: (t.closest('div.cell_output') || article).getBoundingClientRect().width,
                          head: (t.querySelector('th') || t).innerText.slice(0, 40)}))};""")
    finally:
        driver.quit()
    assert all(m["css"] for m in measured.values()), "book/_static/clothparse.css is not loaded"
    assert all(m["tables"] for m in measured.values()), measured
    wide = {p: [(round(t["width"]), round(min(t["box"], m["article"])), t["head"]) for t in m["tables"]
                if t["width"] > min(t["box"], m["article"]) + 1] for p, m in measured.items()}
    wide = {p: w for p, w in wide.items() if w}
    assert not wide, f"tables (width, room, first header) wider than their column: {wide}"
    assert (tmp_path / "book_notebooks_results.png").stat().st_size > 10_000


def test_citations_link_to_the_references_and_the_build_has_no_doc_warnings(smoke_book):
    """sphinxcontrib-bibtex renders every {cite:p}/{cite:t} as a link to book/references, which lists the works
    of book/references.bib; autodoc imports every module of the API page."""
    log = (smoke_book.parent / "jupyter-book.log").read_text()
    for problem in ("could not find bibtex key", "autodoc: failed to import", "failed to import module",
                    "No module named", "duplicate citation"):
        assert problem not in log, [line for line in log.splitlines() if problem in line][:5]
    refs = (smoke_book / "book" / "references.html").read_text(encoding="utf-8")
    for entry in ("Clothing parsing using extended U-Net", "Clothing co-parsing", "iMaterialist (Fashion) 2019",
                  "Fashionpedia", "U-Net: convolutional networks", "Feature pyramid networks",
                  "Rethinking atrous convolution", "Encoder-decoder with atrous separable convolution",
                  "Deep residual learning", "Fastai: a layered", "Segmentation Models PyTorch", "EfficientNet",
                  "Bootstrap methods", "An Introduction to the Bootstrap"):
        assert entry in refs, f"references: {entry!r} missing"
    for page in ("book/intro", "book/methods", "book/notebooks/architecture", "book/notebooks/data"):
        links = _parse(smoke_book / f"{page}.html").links
        assert sum("references.html#" in link for link in links) >= 2, f"{page}: no citation links"
    api = (smoke_book / "book" / "api.html").read_text(encoding="utf-8")
    for name in ("clothparse.profiles.load_profile", "clothparse.models.build_model", "clothparse.training.train.train",
                 "clothparse.evaluation.evaluate.evaluate", "clothparse.parser.parse.Parser",
                 "clothparse.parser.parse.ParseResult",
                 "clothparse.models.injection.parse_prior", "clothparse.report.table2", "clothparse.rle.encode",
                 "clothparse.runs.RunDir", "clothparse.evaluation.metrics.pooled_iou",
                 "clothparse.evaluation.claims.claims_table",
                 "clothparse.evaluation.bootstrap.image_bootstrap", "clothparse.categories.colorize"):
        assert f'id="{name}"' in api, f"API reference: {name} not documented"


def _plain(html: str) -> str:
    """Tags out, entities and typographic quotes (Sphinx's smartquotes) back to plain text."""
    return re.sub(r"\s+", " ", unescape(html).replace("\u2019", "'").replace("\u2018", "'"))


def _text(path: Path) -> str:
    return _plain(re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8")))


def _pasted(path: Path) -> list[str]:
    """The glued sentences of a page (MyST-NB's ``{glue:text}`` renders them as span.pasted-text)."""
    html = path.read_text(encoding="utf-8")
    spans = re.findall(r'<span class="pasted-text">(.*?)</span>', html, flags=re.S)
    return [_plain(re.sub(r"<[^>]+>", "", m)) for m in spans]


def test_the_prose_carries_the_numbers_of_the_claims_table(smoke_book):
    """The headline sentence of the first page, the results page and the claims page is one sentence, glued
    from the runs, and its numbers are those of the claims table and the model-interval table beside it."""
    claims_page = smoke_book / "book" / "notebooks" / "claims.html"
    sentences = {page: [s for s in _pasted(smoke_book / f"{page}.html") if s.startswith("On this build")]
                 for page in ("book/intro", "book/notebooks/results", "book/notebooks/claims")}
    assert all(len(found) == 1 for found in sentences.values()), sentences
    headline = sentences["book/notebooks/claims"][0]
    assert {found[0] for found in sentences.values()} == {headline}
    text = _text(claims_page)
    # the claims table's row of the headline claim: "+1.28 <ours> [<low>, <high>] 1 <verdict>"
    row = re.search(r"extended_unet > unet \(the paper.s headline\) \+1\.28 (-?\d+\.\d\d) \[(-?\d+\.\d\d), "
                    r"(-?\d+\.\d\d)\] \d+ (agrees|contradicts|inconclusive)", text)
    assert row, text[:3000]
    ours, low, high = (float(v) for v in row.groups()[:3])
    assert f"a difference of {ours:+.2f} [{low:+.2f}, {high:+.2f}] points where the paper reports +1.28" in headline
    says = {"agrees": "agrees with the paper", "contradicts": "contradicts the paper", "inconclusive": "cannot tell"}
    assert says[row.group(4)] in headline
    # the model-interval table: Our model's and the plain U-Net's IoU excl. bg with their intervals
    for label, name in (("Our model (extended_unet)", "Our model scores"), ("Plain U-Net (unet)", "U-Net's")):
        cell = re.search(re.escape(label) + r" (\d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\])", text)
        assert cell and f"{name} {cell.group(1)}" in headline, (label, headline)
    # the page's own section: the longest stretch between its title and the next (the contents sidebars name both)
    parts = text.split("The claims, one by one")[1:]
    section = max((part.split("Every model, with its interval")[0] for part in parts), key=len)
    verdicts = re.findall(r"\b(agrees|contradicts|inconclusive)\b", section)
    counts = re.search(r"(\d+) agrees?, (\d+) contradicts? and (\d+) (?:is|are) inconclusive", headline)
    table_verdicts = verdicts[-sum(int(c) for c in counts.groups()):]
    assert [table_verdicts.count(v) for v in ("agrees", "contradicts", "inconclusive")] == \
        [int(c) for c in counts.groups()]


def _numbers(repo: Path) -> dict:
    """Every run's scores, history (without seconds) and test-split metrics, keyed by profile, model, variant and
    file: not by run folder, whose hash covers the store key and so the data's absolute path."""
    out = {}
    for params_file in sorted((repo / "runs").rglob("params.json")):
        run, params = params_file.parent, json.loads(params_file.read_text())
        name = f"{run.parent.name}/{params['model']}/{params['variant']}"
        for metrics in sorted(run.rglob("metrics.json")):
            data = json.loads(metrics.read_text())
            for volatile in ("train_seconds_this_process", "seconds", "evaluated", "finished", "store_key"):
                data.pop(volatile, None)
            out[f"{name}/{metrics.relative_to(run)}"] = data
        lines = (run / "history.csv").read_text().splitlines()
        keep = [i for i, c in enumerate(lines[0].split(",")) if c != "seconds"]
        out[f"{name}/history.csv"] = [[row.split(",")[i] for i in keep] for row in lines]
    return out


def test_a_parallel_build_gives_the_sequential_builds_numbers(smoke_book, tmp_path):
    """``--parallel 2``: the three smoke trainings two at a time (each worker one thread, as conftest pins), every
    run's scores and history and every evaluation identical to the sequential build's; the data is copied over
    (same files, same mtimes; the stores are rebuilt under keys of the copy's path), the runs are made anew."""
    sequential = smoke_book.parent.parent
    copy = tmp_path / "repo"
    for rel in _tracked_files():
        dest = copy / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    shutil.copytree(sequential / "work", copy / "work", copy_function=shutil.copy2)
    env = {**os.environ, "PYTHONPATH": str(copy), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-m", "clothparse.cli", "book", "--profile", "smoke", "--parallel", "2",
                           "--no-build"], cwd=copy, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    running = [line for line in proc.stdout.splitlines() if line.startswith("  running ")]
    assert any(line.count("train/") == 2 for line in running), proc.stdout  # two trainings at once
    ours, theirs = _numbers(copy), _numbers(sequential)
    assert ours.keys() == theirs.keys() and len(ours) >= 6
    assert ours == theirs
    statuses = json.loads((copy / "book" / "generated" / "steps.json").read_text())
    assert [s["output"] for s in statuses] == [s["output"] for s in json.loads(
        (sequential / "book" / "generated" / "steps.json").read_text())]
    assert {s["status"] for s in statuses} == {"executed"}
