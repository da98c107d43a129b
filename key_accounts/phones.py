"""Phone numbers as people type them -> the digits we index and search (R8, R24).

A number is reduced to its national digits: separators go, an international prefix for China
(+86, 0086, 86 before an 11-digit mobile) goes, an extension after "ext"/"转"/"x" goes. Landline
numbers keep their trunk "0" and area code when given (010 8888 6666 -> 01088886666); a caller-ID
look-up then matches by suffix, so "88886666" finds it as well.
"""
import re

SEPARATORS = re.compile(r"[,;，；、/\n]+")
EXTENSION = re.compile(r"(?:ext\.?|x|转|分机)\s*\d+\s*$", re.IGNORECASE)
MOBILE = re.compile(r"^1[3-9]\d{9}$")
MIN_DIGITS = 3  # shorter fragments match too much to be a search
MAX_DIGITS = 20


def normalize(raw):
    """National digits of one number ("" when it has none)."""
    text = EXTENSION.sub("", (raw or "").strip())
    # Full-width digits (１３８...) are common in pasted Chinese text.
    text = text.translate({ord("０") + i: str(i) for i in range(10)}).replace("＋", "+")
    digits = re.sub(r"\D", "", text)
    if text.startswith("+86") or digits.startswith("0086"):
        digits = digits[4:] if digits.startswith("0086") else digits[2:]
        if digits and not MOBILE.match(digits):
            digits = "0" + digits  # +86 10 8888 6666 -> 010 8888 6666 (Beijing's area code starts with 1)
    elif len(digits) == 13 and digits.startswith("861"):
        digits = digits[2:]
    return digits[:MAX_DIGITS]


def split(text):
    """Every number in a list as typed ("138 0013 8000, 010-88886666")."""
    return [part.strip() for part in SEPARATORS.split(text or "") if part.strip()]


def digits_of(text):
    """The distinct national numbers in ``text``, in order."""
    seen = []
    for part in split(text):
        digits = normalize(part)
        if len(digits) >= MIN_DIGITS and digits not in seen:
            seen.append(digits)
    return seen


def search_key(raw):
    """The reversed digits a suffix search looks up ("" when too short to search)."""
    digits = normalize(raw)
    return digits[::-1] if len(digits) >= MIN_DIGITS else ""
