"""Confidentiality: personal data in free text and in labels, and small groups.

* :func:`scrub` removes e-mail addresses, phone numbers and names from free text (quotes, open answers).
* :func:`looks_personal` / :func:`pseudonymise_labels` replace category labels that are personal data
  (a segment called "Ivan Petrov +7 912 345-67-89", a unit named by an e-mail) with neutral pseudonyms,
  so that they never reach a report or ``results.json``.
* :func:`merge_small_groups` folds groups smaller than the threshold into one "Other" group that is itself
  at least the threshold, so that no small group can be recovered by subtracting shown counts from a total.
"""

from __future__ import annotations

import re

import pandas as pd

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
PHONE = re.compile(r"(?<!\w)\+?\d[\d\s().-]{6,}\d(?!\w)")
# a self-introduction followed by a capitalised name; only the introduction is case-insensitive
NAME_INTRO = re.compile(r"\b((?i:my name is|i am|i'm|меня зовут))\s+([A-ZА-ЯЁ][\w-]+(?:\s+[A-ZА-ЯЁ][\w-]+)?)")
# Person names in labels: two or three words where one is a common given name ("John Smith", "ПЕТРОВ ИВАН"),
# or Cyrillic words with a surname/patronymic ending ("Иванова Мария"), or a surname with initials
# ("Иванов И.И.", "Petrov I."). Words of places and business units ("Region", "Street", "Проспект") keep
# a label ordinary ("Pushkin Street", "Невский Проспект", "Kirov Branch").
_NAME_WORD = r"[A-Za-zА-Яа-яЁё]+(?:-[A-Za-zА-Яа-яЁё]+)?"
PERSON = re.compile(rf"^{_NAME_WORD}(?:\s+{_NAME_WORD}){{1,2}}$")
INITIALS = re.compile(r"^(?:[A-ZА-ЯЁ][a-zа-яё]+(?:-[A-ZА-ЯЁ][a-zа-яё]+)?\s+[A-ZА-ЯЁ]\.\s?(?:[A-ZА-ЯЁ]\.)?"
                      r"|[A-ZА-ЯЁ]\.\s?(?:[A-ZА-ЯЁ]\.)?\s*[A-ZА-ЯЁ][a-zа-яё]+)$")
SURNAME_END = re.compile(r"(ов|ова|ев|ева|ёв|ёва|ин|ина|ын|ына|ский|ская|цкий|цкая|енко|ович|евич|овна|евна|ична)$")
GIVEN_NAMES = frozenset("""
aleksandr alexander alexey aleksei alex andrey andrei anna anton boris dmitry dmitri elena ekaterina
evgeny igor ilya irina ivan kirill konstantin maria mariya marina mikhail natalia natalya nikolai nikolay
oleg olga pavel roman sergey sergei svetlana tatiana tatyana vladimir yulia yury
john james robert michael william david richard joseph thomas charles mary patricia jennifer linda
elizabeth barbara susan jessica sarah karen maria jose juan carlos luis ana jean pierre marie anne
hans peter klaus michael ali mohamed mohammed fatima wei li emma olivia noah liam sophia paul mark
александр алексей андрей анна антон борис дмитрий елена екатерина евгений игорь илья ирина иван кирилл
константин мария марина михаил наталья николай олег ольга павел роман сергей светлана татьяна
владимир юлия юрий
""".split())
PLACE_WORDS = frozenset("""
region street office store branch airport oblast district city town area zone north south east west central
center centre team panel issues payment plus premium standard basic line park square avenue prospect
mall shop department division unit group segment channel online offline
область район улица проспект магазин филиал отдел регион город центр север юг запад восток округ край
""".split())
DATE_LIKE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2})?)?|\d{1,2}[-./]\d{1,2}[-./]\d{4}"
                       r"|\d{1,2}:\d{2}(:\d{2})?")
# a year and month ("2024-01", a cohort's name), removed before phones are looked for in a label
YEAR_MONTH = re.compile(r"(?<![\d.-])(?:19|20)\d{2}[-./](?:0?[1-9]|1[0-2])(?![\d./-])")
OTHER = "Other (small groups)"


def scrub(text: str, names: list[str] | tuple[str, ...] = ()) -> str:
    """Remove e-mail addresses, phone numbers and names (given ones, and self-introductions)."""
    if not isinstance(text, str):
        return ""
    out = EMAIL.sub("[e-mail]", text)
    out = PHONE.sub(lambda m: "[phone]" if _phone_in_text(m.group(0)) else m.group(0), out)
    for name in sorted({n for n in names if n}, key=len, reverse=True):
        for part in (name, *name.split()):
            if len(part) > 2:
                out = re.sub(rf"\b{re.escape(part)}\b", "[name]", out)
    out = NAME_INTRO.sub(lambda m: f"{m.group(1)} [name]", out)
    return out


def looks_personal(label: object) -> bool:
    """Whether a category label looks like personal data: an e-mail, a phone number or a person's name.

    A heuristic tuned to stay quiet on ordinary labels (regions, plans, products, dates, codes); see the
    patterns above. Labels it flags are pseudonymised, never published.
    """
    if not isinstance(label, str):
        return False
    text = label.strip()
    if EMAIL.search(text) or _has_phone(text):
        return True
    if INITIALS.match(text):
        return True
    if PERSON.match(text):
        words = [w.lower() for w in text.split()]
        if any(w in PLACE_WORDS for w in words):
            return False
        given = [any(part in GIVEN_NAMES for part in w.split("-")) for w in words]
        if any(given):
            return True
        cyrillic = all(re.fullmatch(r"[а-яё-]+", w) for w in words)
        return cyrillic and sum(bool(SURNAME_END.search(w)) for w in words) >= 2  # "Иванова Петровна"
    return False


def _phone_in_text(token: str) -> bool:
    """A digit run in free text that is a phone number, not a date, a time, an amount or a decimal."""
    token = token.strip()
    digits = re.sub(r"\D", "", token)
    if not 7 <= len(digits) <= 15 or DATE_LIKE.search(token) or re.fullmatch(r"\d+[.,]\d+", token):
        return False
    return not re.fullmatch(r"\d{1,3}(?:[ \u00a0]\d{3})+", token)  # 1 500 000 is an amount


def _has_phone(text: str) -> bool:
    """An international number (+…), a Russian 8/7 9xx number, or digits in parentheses: not dates, IPs, SKUs."""
    text = YEAR_MONTH.sub(" ", DATE_LIKE.sub(" ", text))
    for m in PHONE.finditer(text):
        token = m.group(0).strip()
        digits = re.sub(r"\D", "", token)
        if "." in token or not 7 <= len(digits) <= 15:
            continue
        if token.startswith("+") or "(" in token or (len(digits) == 11 and digits[0] in "78" and digits[1] == "9") \
                or (len(digits) == 10 and digits[0] == "9" and re.search(r"\d[\s-]\d", token)):
            return True
    return False


def pseudonymise_labels(values: pd.Series, prefix: str = "label",
                        mapping: dict[str, str] | None = None) -> tuple[pd.Series, int]:
    """Replace labels that look personal with ``"<prefix> 1 (personal data hidden)"`` and so on.

    New pseudonyms are numbered in the sorted order of the hidden labels, so the same data gives the same
    names. Pass one ``mapping`` (label -> pseudonym, updated in place) for every table of a run, so that
    the same label gets the same pseudonym in every table and can still be joined. Returns the new series
    and how many distinct labels of ``values`` were hidden.
    """
    mapping = {} if mapping is None else mapping
    distinct = pd.Series(values.dropna().unique())
    hidden = sorted(str(v) for v in distinct if looks_personal(v))
    if not hidden:
        return values, 0
    for h in hidden:
        if h not in mapping:
            mapping[h] = f"{prefix} {len(mapping) + 1} (personal data hidden)"
    return values.map(lambda v: mapping.get(v, v) if isinstance(v, str) else v), len(hidden)


def merge_small_groups(groups: pd.Series, min_n: int = 5, other: str = OTHER) -> tuple[pd.Series, list[str]]:
    """Fold groups with fewer than ``min_n`` members into one ``other`` group.

    When the folded group would itself be smaller than ``min_n``, the next-smallest groups are folded in
    too, until it reaches ``min_n`` (or everything is folded). So every shown group, "Other" included,
    has at least ``min_n`` members and no count can be recovered by subtraction. Missing values stay
    missing. Returns the recoded series and the sorted labels that were folded.
    """
    counts = groups.value_counts(dropna=True)
    # smallest first; ties broken by label so that the result never depends on hash order
    order = sorted(counts.index, key=lambda g: (int(counts[g]), str(g)))
    small = [g for g in order if counts[g] < min_n]
    if not small:
        return groups, []
    folded = list(small)
    rest = [g for g in order if g not in folded]
    while sum(int(counts[g]) for g in folded) < min_n and rest:
        folded.append(rest.pop(0))
    name = other
    while name in set(map(str, counts.index)) - set(map(str, folded)):
        name += " "
    out = groups.astype(object).where(~groups.isin(folded), name)
    return out, sorted(map(str, folded))


def fold_groups(groups: pd.Series, min_n: int = 5) -> tuple[pd.Series, list[str]]:
    """:func:`merge_small_groups`, and when even everything folded together stays below ``min_n`` the folded
    rows become missing (shown nowhere). Returns the recoded series and the folded labels."""
    recoded, folded = merge_small_groups(groups, min_n)
    if folded:
        mask = groups.notna() & groups.astype(str).isin(folded)
        if int(mask.sum()) < min_n:
            recoded = recoded.astype(object).where(~mask, None)
    return recoded, folded
