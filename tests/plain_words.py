"""What a stakeholder reads in a report, checked for raw names and unreadable numbers.

``raw_words(html)`` lists variable names (``perc_call_centre``), model terms (``plan[annual]``) and
scientific notation (``4.45e+03``) in the visible text and alt texts of a report, outside the
"How this report was made" appendix (parameters, inputs and versions are named as the analyst types them).
Run ``python tests/plain_words.py reports/*/report.html`` to see them with their context.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bs4 import BeautifulSoup

RAW = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b|\b\w+\[(?:T\.)?[^\]\s]+\]|\b\d(?:\.\d+)?e[+-]?\d+\b")


def stakeholder_text(html: str) -> list[tuple[str, str]]:
    """(element name, text) of every visible text block and alt text before the provenance appendix."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["style", "script", "head"]):
        tag.decompose()
    appendix = soup.find(id="provenance")
    if appendix is not None:
        for sibling in list(appendix.find_next_siblings()):
            sibling.decompose()
        appendix.decompose()
    out = [("img", img.get("alt", "")) for img in soup.find_all("img")]
    for el in soup.find_all(["p", "li", "td", "th", "h1", "h2", "h3", "figcaption", "caption", "summary", "pre"]):
        if el.find(["p", "li", "td", "table"]) is None:
            out.append((el.name, el.get_text(" ", strip=True)))
    return out


def raw_words(html: str) -> list[tuple[str, str, str]]:
    """(element, raw word, context) for every raw name or e-notation number a reader would see."""
    found = []
    for name, text in stakeholder_text(html):
        for word in RAW.findall(text):
            found.append((name, word, text[:120]))
    return found


if __name__ == "__main__":
    for path in sys.argv[1:]:
        words = raw_words(Path(path).read_text(encoding="utf-8"))
        print(f"== {path}: {len(words)} raw word(s)")
        for name, word, context in words:
            print(f"  {name:4} {word:28} | {context}")
