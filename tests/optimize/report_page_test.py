"""The page of `hone optimize` in a real browser: Debian's headless Chromium loads it offline, the
page's own inline script checks that every plot mark (Pareto points, size bars, operator-time bars)
was laid out with a non-empty box inside its plot and writes the result onto <body>; this script
reads that back from the dumped DOM, fails on any console message or uncaught error from the page,
and checks that a screenshot is not one flat colour. Standard library only.

usage: report_page_test.py --page PAGE.html [--report REPORT.json]
       report_page_test.py --render-with RENDER_REPORT_MAIN [--report REPORT.json]   (run by ctest)
--render-with renders REPORT.json (default: data/sample_report.json beside this script) first;
with a report, the mark counts are also checked against the report's own numbers.
Exit status: 0 passed, 1 failed, 77 Chromium is not installed (ctest SKIP_RETURN_CODE).
"""
import argparse
import html.parser
import json
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

SKIP = 77
CHROMIUM_TIMEOUT_S = 60
WINDOW = (1280, 2000)
MIN_DISTINCT_PIXELS = 10
HERE = pathlib.Path(__file__).resolve().parent
# Chromium writes a console message as "...:INFO:CONSOLE:12] "text", source: URL (12)" (older
# releases: "CONSOLE(12)"); "Uncaught" starts every uncaught exception's message.
CONSOLE = re.compile(r"CONSOLE[(:]\d+")


def find_chromium():
    for name in (os.environ.get("HONE_CHROMIUM"), "chromium", "chromium-browser"):
        path = name and shutil.which(name)
        if path:
            return path
    return None


def run_chromium(chromium, page, extra, work):
    """One headless run with a fresh profile; returns (stdout, stderr)."""
    profile = tempfile.mkdtemp(prefix="profile-", dir=work)
    command = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions",
               "--disable-background-networking", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               "--virtual-time-budget=2000", *extra, page.as_uri()]
    try:
        done = subprocess.run(command, capture_output=True, timeout=CHROMIUM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"FAIL: chromium did not finish within {CHROMIUM_TIMEOUT_S} s: {' '.join(command)}")
    stdout, stderr = (s.decode("utf-8", "replace") for s in (done.stdout, done.stderr))
    if done.returncode != 0:
        raise SystemExit(f"FAIL: chromium exited with {done.returncode}:\n{stderr[-3000:]}")
    return stdout, stderr


def console_problems(stderr, page):
    """Console messages and uncaught errors that come from the page."""
    return [line.strip() for line in stderr.splitlines()
            if "Uncaught" in line or (CONSOLE.search(line) and page.as_uri() in line)]


class DomReader(html.parser.HTMLParser):
    """<body>'s attributes, the ids of the <svg> elements and the <title> text of a dumped DOM."""

    def __init__(self):
        super().__init__()
        self.body, self.svg_ids, self.title, self._in_title = None, [], "", False

    def handle_starttag(self, tag, attrs):
        if tag == "body" and self.body is None:
            self.body = dict(attrs)
        elif tag == "svg":
            self.svg_ids.append(dict(attrs).get("id"))
        self._in_title = tag == "title" and not self.title

    def handle_endtag(self, tag):
        self._in_title = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data


def png_rows(data):
    """(width, height, bytes per pixel, rows) of an 8-bit, non-interlaced PNG, un-filtered."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    position, idat, header = 8, [], None
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("no IHDR chunk")
    width, height, depth, colour, _, _, interlace = header
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if depth != 8 or interlace != 0 or channels is None:
        raise ValueError(f"unsupported PNG: bit depth {depth}, colour type {colour}, interlace {interlace}")
    raw, stride, bpp = zlib.decompress(b"".join(idat)), width * channels, channels
    if len(raw) != height * (stride + 1):
        raise ValueError(f"{len(raw)} bytes of image data for {width}x{height}x{channels}")
    rows, previous = [], bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = previous[i], previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif kind != 0:
            raise ValueError(f"row {y}: unknown filter type {kind}")
        rows.append(line)
        previous = line
    return width, height, bpp, rows


def distinct_pixels(rows, bpp, step=7):
    """Distinct pixel values in every `step`-th row and column."""
    seen = set()
    for line in rows[::step]:
        for x in range(0, len(line) - bpp + 1, bpp * step):
            seen.add(bytes(line[x:x + bpp]))
    return len(seen)


def expected_marks(report):
    """The marks the page should draw for `report`: Pareto points, size bars, operator-time bars."""
    metric = report.get("metric") or {}
    split = metric.get("split") or "validation"
    batches = (report.get("targets") or {}).get("batches") or []
    baseline = report.get("baseline") or {}
    if batches:
        batch = str(batches[0])
    else:  # as the page does: the baseline's smallest batch
        keys = sorted(baseline.get("latency_ms") or {}, key=float)
        batch = keys[0] if keys else ""
    models = ([baseline] if baseline else []) + [c for c in report.get("candidates") or []
                                                   if c.get("status") in (None, "measured")]

    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    points = sum(1 for m in models if number((m.get("latency_ms") or {}).get(batch)) and number(m.get(split)))
    sizes = sum(1 for m in models if number(m.get("file_bytes")))
    chosen = report.get("chosen") or {}
    ops = len(baseline.get("hot_spots") or []) + len(chosen.get("op_time_after") or [])
    return {"data-circles": points, "data-size-bars": sizes, "data-optime-bars": ops}


def check_page(chromium, page, report, work):
    failures = []
    source = page.read_text(encoding="utf-8")
    external = re.findall(r"""(?:src|href)\s*=\s*["']?(?!#)[^"'\s>]+|url\(|@import""", source)
    if external:
        failures.append(f"the page refers to outside resources: {external[:5]}")

    dom, stderr = run_chromium(chromium, page, ["--dump-dom"], work)
    reader = DomReader()
    reader.feed(dom)
    body = reader.body or {}
    checks = " ".join(f"{key}={value!r}" for key, value in body.items() if key.startswith("data-"))
    print(f"dumped DOM: {len(dom)} characters; <body> {checks}")
    if body.get("data-render-check") != "ok":
        failures.append(f"the page's check script reports {body.get('data-render-check')!r}: "
                        f"{body.get('data-failures') or '(did it run?)'}")
    if not reader.title.startswith("hone optimize"):
        failures.append(f"unexpected <title>: {reader.title!r}")
    if report is not None:
        subject = f"{report.get('architecture', '')} on {report.get('dataset', '')} ({report.get('device', '')})"
        if subject not in reader.title:
            failures.append(f"<title> {reader.title!r} does not name {subject!r}")
        for key, want in expected_marks(report).items():
            if body.get(key) != str(want):
                failures.append(f"{key}: the browser found {body.get(key)}, the report has {want}")
        for plot in ("pareto", "sizes", "optime"):
            if plot not in reader.svg_ids:
                failures.append(f"no <svg id={plot!r}> in the DOM (found {reader.svg_ids})")

    shot = pathlib.Path(work) / "screenshot.png"
    window = f"--window-size={WINDOW[0]},{WINDOW[1]}"
    _, shot_stderr = run_chromium(chromium, page, [f"--screenshot={shot}", window], work)
    problems = console_problems(stderr + shot_stderr, page)
    failures += [f"console: {line}" for line in problems]
    if not shot.is_file():
        failures.append("chromium wrote no screenshot")
    else:
        width, height, bpp, rows = png_rows(shot.read_bytes())
        distinct = distinct_pixels(rows, bpp)
        print(f"screenshot: {width}x{height}, {bpp} bytes per pixel, {distinct} distinct pixel values sampled")
        if (width, height) != WINDOW:
            failures.append(f"screenshot is {width}x{height}, expected {WINDOW[0]}x{WINDOW[1]}")
        if distinct <= MIN_DISTINCT_PIXELS:
            failures.append(f"screenshot has only {distinct} distinct pixel values: a blank page?")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--page", type=pathlib.Path, help="an HTML page written by render_report_html")
    source.add_argument("--render-with", type=pathlib.Path, help="render_report_main, to render --report first")
    parser.add_argument("--report", type=pathlib.Path, help="the report the page shows (checks the mark counts)")
    args = parser.parse_args()

    chromium = find_chromium()
    if chromium is None:
        print("SKIP: no chromium on PATH (Debian package chromium; `make setup` installs it)")
        return SKIP
    work = tempfile.mkdtemp(prefix="hone-report-page-")
    try:
        report_path = args.report or (HERE / "data/sample_report.json" if args.render_with else None)
        report = json.loads(report_path.read_text(encoding="utf-8")) if report_path else None
        page = args.page
        if args.render_with:
            page = pathlib.Path(work) / "report.html"
            done = subprocess.run([str(args.render_with), str(report_path), str(page)], capture_output=True, text=True,
                                  timeout=CHROMIUM_TIMEOUT_S)
            if done.returncode != 0:
                print(f"FAIL: {args.render_with} exited with {done.returncode}: {done.stderr.strip()}")
                return 1
        page = page.resolve()
        print(f"chromium: {chromium}; page: {page} ({page.stat().st_size} bytes)")
        failures = check_page(chromium, page, report, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for failure in failures:
        print("FAIL:", failure)
    if not failures:
        print("PASS: the page rendered, every plot mark was drawn, no console errors")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
