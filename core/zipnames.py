"""The names of a zip's entries as text: UTF-8 flag, Info-ZIP Unicode Path, UTF-8, or one
guessed legacy code page for the whole zip.

The code page guess is our own on purpose: charset-normalizer (tried in 3.5.3 with
cp_isolation=["cp850", "cp1252", "cp932"]) scores the bytes of 'Käse' in cp850 read as cp850
('Käse') and as cp1252 ('K„se') alike (chaos 0.0) and prefers cp1252, so names zipped by Windows
Explorer (cp850/cp437) would come out wrong; see docs/dev-notes.md.
"""

from __future__ import annotations

import contextlib
import struct
import unicodedata
import zlib

from core.errors import DataError
from core.zipdir import ZipRecord

# Legacy code pages tried for names without the UTF-8 flag, in order of preference on a tie:
# DOS Western Europe (what Windows Explorer wrote there; its letters include cp437's), Windows
# Western Europe, Japanese Shift-JIS.
LEGACY_ENCODINGS = ("cp850", "cp1252", "cp932")
_GUESS_SAMPLE = 2000  # names scored when guessing (every name must still decode)

_UTF8_FLAG = 0x800


def _show(raw: bytes) -> str:
    return "'" + raw.decode("utf-8", "backslashreplace") + "'"


def _unicode_path(extra: bytes, raw: bytes) -> str | None:
    """The name in an Info-ZIP Unicode Path extra field (0x7075), when it is there and was
    written for this very raw name (its CRC-32 matches)."""
    at = 0
    while at + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, at)
        body = extra[at + 4 : at + 4 + size]
        if tag == 0x7075 and len(body) > 5 and body[0] == 1:
            if struct.unpack_from("<L", body, 1)[0] == zlib.crc32(raw):
                with contextlib.suppress(UnicodeDecodeError):
                    return body[5:].decode("utf-8")
            return None
        at += 4 + size
    return None


_EAST_ASIAN = {"CJK", "HIRAGANA", "KATAKANA", "KATAKANA-HIRAGANA", "HALFWIDTH", "FULLWIDTH", "IDEOGRAPHIC"}
_SCRIPTS = {"LATIN", "GREEK", "CYRILLIC", "HANGUL"}
_COMMON_LATIN = set("äöüßéèêëàáâçñíìîïóòôúùûøåæœ")
_COMMON_LATIN |= {c.upper() for c in _COMMON_LATIN if c != "ß"}


def _script(c: str) -> str | None:
    """'LATIN', 'GREEK', 'CYRILLIC', 'HANGUL', 'EAST' (Japanese/Chinese) or None (anything else)."""
    if c.isascii():
        return "LATIN" if c.isalpha() else None
    word = unicodedata.name(c, "").split(" ", 1)[0]
    if word in _EAST_ASIAN:
        return "EAST"
    return word if word in _SCRIPTS else None


def _plausibility(text: str, encoding: str) -> float:
    """How much `text` (a name decoded with `encoding`) reads like a name, per non-ASCII byte.

    A letter scores +1 per byte it took (+0.5 for an accented letter common in Western Europe);
    a symbol, box-drawing or control character -2 per byte; a letter where letters of that
    kind do not go -1 per byte: a capital after a lowercase letter or inside a lowercase word
    ('KÕse'), a lowercase accent before a capital, Greek or Cyrillic glued to Latin, a kanji
    between two Latin letters. Two accented Latin letters in a row score 0, like an East Asian
    letter next to one Latin letter and East Asian punctuation or full-width digits."""
    total = 0.0
    for i, c in enumerate(text):
        if c.isascii():
            continue
        width = len(c.encode(encoding))
        script = _script(c)
        if script is None or (script != "EAST" and not c.isalpha()):
            total -= 2 * width
            continue
        if not c.isalpha():
            continue
        prev = text[i - 1] if i > 0 else ""
        after = text[i + 1] if i + 1 < len(text) else ""
        latin_before = prev.isascii() and prev.isalpha()
        latin_after = after.isascii() and after.isalpha()
        if script == "EAST":
            total += -width if latin_before and latin_after else 0 if latin_before or latin_after else width
            continue
        odd = (c.isupper() and (prev.islower() or (prev.isalpha() and after.islower()))) or (
            c.islower() and after.isupper()
        )
        odd = odd or any(s.isalpha() and _script(s) not in (script, "EAST") for s in (prev, after))
        if odd:
            total -= width
        elif not (prev.isalpha() and not prev.isascii()) and not (after.isalpha() and not after.isascii()):
            total += width + (0.5 if c in _COMMON_LATIN else 0)
    return total


def legacy_encoding(raws: list[bytes]) -> str:
    """The encoding of names written without the UTF-8 flag (all non-ASCII): UTF-8 when every
    one of them is valid UTF-8, else whichever of LEGACY_ENCODINGS decodes all of them and scores
    best in `_plausibility` (summed over up to _GUESS_SAMPLE names); a tie goes to the earlier."""
    try:
        for raw in raws:
            raw.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    best, best_score = LEGACY_ENCODINGS[0], float("-inf")  # cp850 decodes any byte
    for encoding in LEGACY_ENCODINGS:
        try:
            texts = [raw.decode(encoding) for raw in raws]
        except UnicodeDecodeError:
            continue
        score = sum(_plausibility(t, encoding) for t in texts[:_GUESS_SAMPLE])
        if score > best_score:
            best, best_score = encoding, score
    return best


def decode_names(records: list[ZipRecord]) -> list[str]:
    """The entries' names as text, by this rule:

    1. UTF-8 flag (bit 11) set: UTF-8. A name that is not valid UTF-8 is refused: the zip's
       writer is broken, and a guess could put images in a wrong class.
    2. An Info-ZIP Unicode Path extra field (0x7075) written for this raw name: its UTF-8 name
       (WinZip, WinRAR, 7-Zip and Info-ZIP add it; the raw name may then be '?' for what the
       legacy code page could not hold).
    3. ASCII: as is.
    4. The rest (zipfile would read them as cp437) are decoded together: as UTF-8 when all of
       them are valid UTF-8 (macOS and many tools write UTF-8 without the flag), else with ONE
       legacy code page for the whole zip, guessed by `legacy_encoding` (cp850, cp1252, cp932).
    Then every name is NFC-normalised (macOS writes 'a' + combining accent). A NUL byte in a
    name is refused (zipfile would silently cut the name there).
    """
    names: list[str] = []
    legacy: list[int] = []
    for i, rec in enumerate(records):
        raw = rec.name
        if b"\0" in raw:
            raise DataError(f"the zip holds a name with a NUL byte ({_show(raw)}); nothing was extracted")
        if rec.flags & _UTF8_FLAG:
            try:
                names.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                raise DataError(
                    f"the zip's table of contents is damaged: the name {_show(raw)} is marked as UTF-8 "
                    "but is not valid UTF-8; zip the folder again with another tool. Nothing was extracted"
                ) from None
        elif (unicode := _unicode_path(rec.extra, raw)) is not None:
            names.append(unicode)
        elif raw.isascii():
            names.append(raw.decode("ascii"))
        else:
            names.append("")  # decided below, together with the other legacy names
            legacy.append(i)
    if legacy:
        encoding = legacy_encoding([records[i].name for i in legacy])
        for i in legacy:
            names[i] = records[i].name.decode(encoding)
    return [unicodedata.normalize("NFC", n) for n in names]
