"""Harness of the bad-input corpus: run a notebook or a function on hostile input, assert the outcome.

Every case ends in one of two outcomes and asserts it:

* **refused** — the run fails with ONE clear message of our own (``InputError``, ``ParameterError``,
  ``FitError``, ``NotEstimable``) that names what is wrong (file, column, rows) and the fix; the failed
  report shows the same message and no raw traceback;
* **handled** — the run succeeds and the report shows how the input was handled (rows excluded and
  counted, a claim "not testable", a label pseudonymised, ...).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import markupsafe
import pytest

OWN_ERRORS = {"InputError", "ParameterError", "FitError", "NotEstimable"}


@dataclass
class Outcome:
    results: dict[str, Any]
    html: str
    folder: Path

    @property
    def message(self) -> str:
        err = self.results.get("error") or {}
        return f"{err.get('ename', '')}: {err.get('evalue', '')}"


def run_case(notebook: str, parameters: dict[str, Any], tmp_path: Path, name: str | None = None) -> Outcome:
    """Run ``notebook`` with ``parameters`` through the real runner into ``tmp_path/out``."""
    from cxresearch.report import write_index
    from cxresearch.runner import RunSpec, run_notebook

    out = tmp_path / "out"
    spec = RunSpec(notebook, name=name, parameters=parameters)
    results = run_notebook(spec, out, base=tmp_path)
    write_index(out)
    folder = out / spec.run_name
    saved = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert saved["status"] == results["status"]
    # figures' base64 pixels are not text a reader sees (and may contain any digits): checks read the rest
    page = re.sub(r"data:image/[a-z+]+;base64,[A-Za-z0-9+/=\s]+", "data:image/png;base64,(pixels)",
                  (folder / "report.html").read_text(encoding="utf-8"))
    return Outcome(saved, page, folder)


def assert_refused(outcome: Outcome, *fragments: str) -> None:
    """The run failed with one of our own clear errors that contains every fragment."""
    import html as _html

    res = outcome.results
    assert res["status"] == "failed", f"expected a refusal, the run said ok: {res.get('claims')}"
    err = res["error"] or {}
    assert err.get("ename") in OWN_ERRORS, f"raw library error reached the user: {outcome.message}"
    text = err.get("evalue", "")
    for f in fragments:
        assert f in text, f"{f!r} not in the message: {text}"
    assert "Traceback" not in text
    first = text.splitlines()[0]
    # the report's templates escape with markupsafe (' as &#39;), html.escape writes &#x27;
    assert any(form in outcome.html for form in (_html.escape(first), str(markupsafe.escape(first)), first))


def assert_handled(outcome: Outcome, *fragments: str) -> None:
    """The run succeeded and the report shows every fragment (how the input was handled)."""
    res = outcome.results
    assert res["status"] == "ok", f"the run failed: {outcome.message}"
    for f in fragments:
        assert f in outcome.html or f in json.dumps(res, ensure_ascii=False), f"{f!r} not shown in the report"
    for c in res["claims"]:
        if c["verdict"] in ("supported", "not supported", "inconclusive"):
            assert c["estimate"] is not None and c["ci_low"] is not None and c["ci_high"] is not None, c
            assert c["ci_low"] <= c["estimate"] <= c["ci_high"], c
            assert c.get("n") is not None and c["n"] >= res["parameters"].get("min_group_size", 5), c


@pytest.fixture()
def case(tmp_path):
    """``case(notebook, **parameters)`` runs one case in its own folder."""
    def _run(notebook: str, **parameters: Any) -> Outcome:
        return run_case(notebook, parameters, tmp_path)
    return _run


PWNED = "data-pwned"  # hostile payloads in the corpus set this attribute on <body> if they ever run


def browser_dom(page: Path) -> str:
    """The DOM of ``page`` after headless Chromium has run it (skips when Chromium is not installed)."""
    import shutil
    import subprocess

    exe = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if exe is None:
        pytest.skip("headless Chromium is not installed: install Debian's 'chromium' (apt-get install chromium; "
                    ".ci/run does it) to run the browser checks")
    proc = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--virtual-time-budget=3000", "--dump-dom", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def assert_inert_in_browser(page: Path) -> None:
    """No script from the data ran when Chromium loaded ``page`` — even without the page's CSP.

    The reports carry a Content-Security-Policy that forbids every script; it would hide an escaping bug.
    So a copy without the policy is loaded too, and the DOM must hold no element or handler from the data.
    """
    import re

    text = page.read_text(encoding="utf-8")
    bare = page.with_name(f"nocsp-{page.name}")
    bare.write_text(re.sub(r"<meta http-equiv=[\"']Content-Security-Policy[^>]*>", "", text), encoding="utf-8")
    assert "Content-Security-Policy" not in bare.read_text(encoding="utf-8")
    for candidate in (page, bare):
        dom = browser_dom(candidate)
        assert "<body" in dom, "Chromium returned no page"
        assert f'{PWNED}="' not in dom, f"a hostile payload executed in {candidate}"
        live = _live_elements(dom)
        assert not live, f"elements from the data are live in the DOM of {candidate}: {live[:3]}"


def _live_elements(dom: str) -> list[str]:
    """Script elements, event-handler attributes, javascript: links and images of the payloads, as parsed."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Walk(HTMLParser):
        def handle_starttag(self, tag, attrs):
            for name, value in attrs:
                if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                    found.append(f"<{tag} {name}={value!r}>")
            if tag == "script" or (tag == "img" and dict(attrs).get("src") == "x") or tag == "svg" and attrs:
                found.append(f"<{tag} {attrs}>")

    Walk().feed(dom)
    return found
