"""The HTML reports: ``Report._repr_html_`` (notebooks) and ``backprop-check --html`` (a page),
parsed strictly here, and the page rendered in headless Chromium where one is installed."""

import io
import json
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from tiers import slow

import backprop
import reference
import reference.boundary.guard
from reference.bugs import CATALOG
from reference.frontends import cli
from reference.judging import checks
from reference.judging.records import failed_report
from reference.report import html

PROBLEM = reference.seed_problem()
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "source"}
"""Elements that have no end tag in HTML."""


class Strict(HTMLParser):
    """Every element opened is closed, in the right order; records the text of each row
    (``rows``: the cells' text, whether the row has the failing class) and every class seen."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.rows: list[tuple[list[str], bool]] = []
        self.classes: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.text: list[str] = []
        self._row: list[str] | None = None
        self._failing = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.attributes += [(k, v or "") for k, v in attrs.items()]
        self.classes += (attrs.get("class") or "").split()
        if tag == "tr":
            self._row, self._failing = [], html.FAIL_CLASS in (attrs.get("class") or "")
        if tag in ("td", "th") and self._row is not None:
            self._row.append("")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        raise AssertionError(f"<{tag} /> is not HTML")

    def handle_endtag(self, tag):
        assert tag not in VOID, f"</{tag}> closes a void element"
        assert self.stack, f"</{tag}> closes nothing"
        assert self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1]}> (open: {self.stack})"
        self.stack.pop()
        if tag == "tr" and self._row is not None:
            self.rows.append((self._row, self._failing))
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._row:
            self._row[-1] += data


def parse(text: str) -> Strict:
    parser = Strict()
    parser.feed(text)
    parser.close()
    assert not parser.stack, f"left open: {parser.stack}"
    return parser


def marked_rows(parsed: Strict) -> set[tuple[int, str]]:
    """(layer, param) of every row the page marks as failing."""
    return {(int(cells[0]), cells[1]) for cells, failing in parsed.rows if failing}


def check(impl):
    return reference.check_gradients(impl, PROBLEM.params, PROBLEM.X, PROBLEM.Y, **PROBLEM.kwargs())


# --- the notebook's view of one report -------------------------------------------------------


def test_the_builtin_implementation_has_no_failing_cell():
    report = check(backprop)
    parsed = parse(report._repr_html_())
    assert report.ok
    assert html.FAIL_CLASS not in parsed.classes
    assert html.FAIL_BACKGROUND not in report._repr_html_()
    assert len(parsed.rows) == 1 + len(report.layers)  # the header and one row per array


@pytest.mark.parametrize("name", CATALOG)
def test_a_catalogued_mistake_marks_exactly_its_failing_cells(name):
    report = check(CATALOG[name])
    text = report._repr_html_()
    parsed = parse(text)
    assert marked_rows(parsed) == {(c.layer, c.param) for c in report.failing()}
    for cells, failing in parsed.rows:  # a marked row says so in words, not colour alone
        if failing:
            assert html.FAIL_MARK in cells
    assert (html.FAIL_CLASS in parsed.classes) == (not report.ok)
    assert (html.FAIL_BACKGROUND in text) == (not report.ok)


def test_some_catalogued_mistake_fails_a_row():
    """The test above is not vacuous: the catalog has mistakes the table itself shows."""
    assert any(check(impl).failing() for impl in CATALOG.values())


def test_every_piece_of_text_is_escaped():
    report = check(CATALOG[next(iter(CATALOG))])
    report.impl = "<script>alert(1)</script>"
    report.summary = 'a "quoted" <b>summary</b> & more'
    report.notes.append("<img src=x onerror=alert(1)>")
    text = report._repr_html_()
    parsed = parse(text)
    assert "<script" not in text and "<img" not in text and "<b>summary" not in text
    joined = "".join(parsed.text)
    assert "<script>alert(1)</script>" in joined and "<b>summary</b> & more" in joined


def test_a_crashed_check_shows_where():
    finding = reference.boundary.guard.Finding(
        "raised", "gradients", "raised ValueError: boom", "2-3-1",
        where={"file": "student.py", "line": 7, "code": "W @ dZ", "function": "gradients"},
    )  # fmt: skip
    report = failed_report(finding, {"sizes": [2, 3, 1], "activations": ["tanh", "sigmoid"],
                                     "cost": "mse", "m": 4}, "student")  # fmt: skip
    parsed = parse(report._repr_html_())
    joined = "".join(parsed.text)
    assert "student.py, line 7, in gradients: W @ dZ" in joined
    assert html.FAIL_CLASS in parsed.classes


def test_a_failed_check_is_marked_by_its_severity():
    for severity, (cls, background, words) in html._SEVERITY.items():
        failed = checks.CheckResult("purity", False, "changed X in place", severity=severity)
        parsed = parse(failed._repr_html_())
        assert cls in parsed.classes and words.strip() and words in "".join(parsed.text)
        assert background in failed._repr_html_()
    held = checks.CheckResult("purity", True, "no argument changed")
    assert not {c for c, _, _ in html._SEVERITY.values()} & set(parse(held._repr_html_()).classes)


# --- the page --------------------------------------------------------------------------------

SCOPE = ["--activations", "tanh", "--output-activations", "sigmoid", "--costs", "bce"]
"""A small run: the seed network's tanh/sigmoid/bce variants and one random network."""


def first_table_mistake() -> str:
    """The first catalogued mistake whose table fails on the seed network."""
    return next(name for name, impl in CATALOG.items() if check(impl).failing())


def run_page(tmp: Path, impl: str) -> tuple[int, str, dict, Path]:
    page, data = tmp / f"{impl.replace(':', '_')}.html", tmp / "run.json"
    out = io.StringIO()
    code = cli.main(["--impl", impl, *SCOPE, "--networks", "1", "--in-process", "--quiet",
                     "--html", str(page), "--json", str(data)], out=out)  # fmt: skip
    return code, page.read_text(encoding="utf-8"), json.loads(data.read_text()), page


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pages")
    mistake = f"reference.bugs:{first_table_mistake()}"
    return {"fail": run_page(tmp, mistake), "pass": run_page(tmp, "backprop")}


def failing_rows(run: dict) -> set[tuple[int, str]]:
    return {(c["layer"], c["param"]) for n in run["networks"] for c in n["layers"] if not c["ok"]}


def test_the_page_is_valid_and_self_contained(pages):
    for _, text, _, _ in pages.values():
        parsed = parse(text)
        assert text.startswith("<!DOCTYPE html>")
        assert "<script" not in text.lower()
        assert not [(k, v) for k, v in parsed.attributes if k in ("src", "href")]
        assert "url(" not in text and "@import" not in text


def test_a_failing_page_marks_the_failing_rows_and_draws_heatmaps(pages):
    code, text, run, _ = pages["fail"]
    parsed = parse(text)
    assert code == 1
    assert marked_rows(parsed) == failing_rows(run) != set()
    titles = [v for k, v in parsed.attributes if k == "title"]
    assert any(t.startswith("dW") or t.startswith("db") for t in titles)  # heatmap cells
    assert "bp-heat" in parsed.classes and "bp-legend" in parsed.classes


def test_a_passing_page_marks_nothing(pages):
    code, text, run, _ = pages["pass"]
    parsed = parse(text)
    assert code == 0 and run["ok"]
    assert html.FAIL_CLASS not in parsed.classes and html.FAIL_BACKGROUND not in text
    assert "bp-heat" not in parsed.classes
    assert "<details>" in text  # the passing networks folded


def test_an_html_path_that_cannot_be_written_is_a_usage_error(tmp_path, capsys):
    code = cli.main(["--html", str(tmp_path), "--networks", "0"], out=io.StringIO())
    assert code == 2
    assert "--html" in capsys.readouterr().err


# --- what a person sees: the page in headless Chromium --------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        pytest.skip(f"no headless browser to render the page: none of {', '.join(BROWSERS)} "
                    "is on PATH (apt-get install chromium)")  # fmt: skip
    return found


def chromium(page: Path, *args: str) -> subprocess.CompletedProcess:
    # --no-sandbox: CI containers run as root, where Chromium's sandbox will not start
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               *args, page.as_uri()]  # fmt: skip
    # timeout: a safety net, generous enough for a machine at load 8; never a speed criterion
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def png_pixels(path: Path) -> list[tuple[int, int, int]]:
    """The RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, header
    channels = 3 if colour == 2 else 4
    raw, stride = zlib.decompress(b"".join(chunks)), width * channels
    previous, pixels = bytearray(stride), []
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                near = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + near) & 0xFF
        pixels += [tuple(line[i : i + 3]) for i in range(0, stride, channels)]
        previous = line
    return pixels


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[k : k + 2], 16) for k in (1, 3, 5))


@pytest.fixture
def found_browser() -> str:
    """The browser's path; resolved before ``pages``, so that a skip costs no run."""
    return browser()


@slow
@pytest.mark.parametrize("kind", ["fail", "pass"])
def test_the_page_as_a_person_sees_it(found_browser, pages, kind, tmp_path):
    _, _, run, page = pages[kind]
    shot = tmp_path / "page.png"
    done = chromium(page, f"--screenshot={shot}", "--window-size=1280,1400")
    assert shot.exists(), done.stderr[-2000:]
    pixels = png_pixels(shot)
    counts: dict[tuple[int, int, int], int] = {}
    for p in pixels:
        counts[p] = counts.get(p, 0) + 1
    background = max(counts, key=counts.get)
    assert len(counts) > 20 and counts[background] < 0.98 * len(pixels), "a blank page"
    marked = counts.get(rgb(html.FAIL_BACKGROUND), 0)
    if kind == "fail":
        assert marked > 100, "no failing cell painted in the marking colour"
    else:
        assert marked == 0, f"{marked} pixels in the failing cells' colour on a passing page"
    dom = chromium(page, "--dump-dom").stdout
    shown = marked_rows(parse(dom[dom.index("<html") :]))
    assert shown == failing_rows(run)
