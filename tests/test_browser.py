"""Reports in a real browser: the answer on the first screen, alt text, no console errors, no requests out.

Headless Chromium (Debian's ``chromium``; ``.ci/run`` installs it) loads the index and every report at a
1400x900 viewport. The checks run on the reports of the README's ``run --all`` command (what ``make reports``
builds), in tests/test_readme.py, which builds them once. The layout probe runs on a copy of each page without its Content-Security-Policy (the
reports themselves run no script); the page itself is loaded as written to catch console errors and any
blocked request.
"""

from __future__ import annotations

import html as html_lib
import re
import shutil
import subprocess
from pathlib import Path

import pytest

EXE = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(EXE is None, reason="headless Chromium is not installed: install Debian's "
                                                    "'chromium' (apt-get install chromium; .ci/run does it)")
PROBE = """<script>
window.addEventListener('load', () => {
  const v = document.querySelector('td.verdict');
  const imgs = [...document.querySelectorAll('img')];
  const r = v ? v.getBoundingClientRect() : null;
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({verdict_bottom: r ? r.bottom : null, viewport: window.innerHeight,
    images: imgs.length, missing_alt: imgs.filter(i => !(i.alt || '').trim()).length,
    bad_alt: imgs.filter(i => /No description/.test(i.alt)).length});
  document.body.appendChild(out);
});
</script>"""


def chromium(url: str, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--window-size=1400,900", "--virtual-time-budget=5000", "--enable-logging=stderr",
                           "--v=0", *extra, url], capture_output=True, text=True, timeout=180)


def pages(folder: Path) -> list[Path]:
    return [folder / "index.html", *sorted(folder.glob("*/report.html"))]


def check_first_screen_and_alt_text(reports: Path) -> None:
    """The first verdict shows without scrolling and every image has alt text, on the index and each report."""
    import json

    for page in pages(reports):
        probe = page.with_name(f"probe-{page.name}")
        text = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page.read_text(encoding="utf-8"))
        probe.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        dom = chromium(probe.as_uri(), "--dump-dom").stdout
        found = re.search(r'<pre id="probe">(.*?)</pre>', dom, flags=re.S)
        assert found, f"the layout probe did not run on {page}"
        facts = json.loads(found.group(1).replace("&quot;", '"'))
        assert facts["verdict_bottom"] is not None, f"no verdict in {page}"
        assert facts["verdict_bottom"] <= facts["viewport"], f"{page}: first verdict below the first screen {facts}"
        assert facts["missing_alt"] == 0 and facts["bad_alt"] == 0, f"{page}: images without alt text {facts}"


def check_console_and_requests(reports: Path) -> None:
    """Pages log no console error and request nothing outside."""
    for page in pages(reports):
        proc = chromium(page.as_uri(), "--dump-dom")
        assert "<body" in proc.stdout
        log = proc.stderr
        errors = [line for line in log.splitlines() if "CONSOLE" in line or "Refused to" in line
                  or "Content Security Policy" in line]
        assert not errors, f"{page}: {errors[:3]}"
        assert not re.search(r"(src|href)=\"(https?:)?//", proc.stdout), f"{page} points outside"


def test_the_report_page_has_no_script_and_a_strict_policy(tmp_path):
    import nbformat

    from cxresearch.report import CSP, render_report

    html = render_report(nbformat.v4.new_notebook(), {"title": "<b>T</b>", "status": "ok", "claims": [],
                                                       "provenance": {}, "parameters": {"x": "<script>"}})
    assert "<script" not in html and "&lt;b&gt;T&lt;/b&gt;" in html and "&lt;script&gt;" in html
    assert html_lib.unescape(re.search(r'Content-Security-Policy" content="([^"]*)"', html).group(1)) == CSP


def check_plain_words(reports: Path) -> None:
    """No raw column names or e-notation in a report."""
    from tests.plain_words import raw_words

    for page in sorted(reports.glob("*/report.html")):
        words = raw_words(page.read_text(encoding="utf-8"))
        assert not words, f"{page.parent.name}: a reader sees raw names or e-notation: {words[:8]}"
