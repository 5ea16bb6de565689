"""Report text -> label per finding (positive / negative / uncertain) and the deciding phrase.

A rule labeller (NegEx-style) rather than a model: it must be explainable to a quality officer
("decided by: 'no evidence of intracranial hemorrhage'"), run at feed speed, and be tuned by
editing a TOML list. Sections are preferred in the order the labeller file gives (an addendum,
then the impression), then the whole text. Within a clause, uncertainty cues are checked before
negation cues, because "cannot exclude" contains a negation but means uncertain.
"""

from __future__ import annotations

import bisect
import itertools
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from connectors.errors import ProfileError

_MISS = object()
# where a clause ends (``m.end()``): after . ; ! ? followed by white space, after a line break,
# or in "a.B". Each branch starts with its literal so that the regex engine skips ahead to the
# next candidate character instead of trying every position (3x faster; same ends as the
# zero-width form ``(?<=[.;!?])(?=\s)|\n|(?<=[a-z]\.)(?=[A-Z])``).
_CLAUSE_END = re.compile(r"\.(?=\s)|;(?=\s)|!(?=\s)|\?(?=\s)|\n|\.(?<=[a-z]\.)(?=[A-Z])")


@dataclass(frozen=True, slots=True)
class TextLabel:
    label: str  # positive / negative / uncertain
    phrase: str  # the clause that decided it (caller scrubs identifiers)


def _phrase_alternatives(phrases: list[str] | tuple[str, ...]) -> list[str]:
    """The phrases as the labeller matches them: stripped, lower case, longest first."""
    return sorted({p.strip().lower() for p in phrases if p.strip()}, key=len, reverse=True)


def _phrase_re(phrases: list[str] | tuple[str, ...]) -> re.Pattern[str]:
    """The reference pattern: any phrase, whole (not inside a word or hyphenated word), any case,
    a space matching any run of white space. :class:`Phrases` must find exactly what it finds."""
    body = "|".join(re.escape(a).replace(r"\ ", r"\s+") for a in _phrase_alternatives(phrases))
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE)


def _trie(alternatives: list[str]) -> str:
    """Alternatives as one prefix tree (``h(?:aem|em)orrhage``), the longer branch tried first.

    Python's regex engine tries an alternation's branches one by one at every position; as a
    tree, a position costs one look-up per character that could still match. Two phrases can
    only both match at one position when one is a prefix of the other, and there the longer one
    is tried first, as in the longest-first list: the same match.
    """
    root: dict[str, dict] = {}
    for alt in alternatives:
        node = root
        for ch in alt:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, dict]) -> str:
        parts = [
            (r"\s+" if ch == " " else re.escape(ch)) + emit(child)
            for ch, child in sorted(node.items())
            if ch
        ]
        if "" in node:
            parts.append("")  # this phrase ends here: after every longer one
        return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"

    return emit(root)


_WORDISH = re.compile(r"[\w-]")


class Phrases:
    """A phrase list compiled for speed, finding exactly what :func:`_phrase_re` finds.

    Report text is nearly always ASCII: then the text is lower-cased (same length, so the same
    offsets) and searched with a case-sensitive prefix tree that starts with a literal, which
    lets the regex engine skip ahead in C; the look-behind (not inside a word) is checked on
    each candidate instead. 4-6x faster than the reference pattern on the simulator's reports.
    Other text goes to the reference pattern.
    """

    __slots__ = ("fast", "reference")

    def __init__(self, phrases: list[str] | tuple[str, ...]) -> None:
        alts = _phrase_alternatives(phrases)
        self.reference = _phrase_re(alts)
        ascii_only = all(a.isascii() for a in alts)
        self.fast = re.compile(rf"(?:{_trie(alts)})(?![\w-])") if ascii_only else None

    def finditer(self, text: str) -> list[re.Match[str]]:
        """Every match, left to right, not overlapping (as ``reference.finditer``)."""
        fast = self.fast
        if fast is None or not text.isascii():
            return list(self.reference.finditer(text))
        low = text.lower()
        out: list[re.Match[str]] = []
        m = _next_whole(fast, low, 0)
        while m is not None:
            out.append(m)
            m = _next_whole(fast, low, m.end())
        return out

    def search(self, text: str) -> re.Match[str] | None:
        """The first match (as ``reference.search``)."""
        fast = self.fast
        if fast is None or not text.isascii():
            return self.reference.search(text)
        return _next_whole(fast, text.lower(), 0)


def _next_whole(fast: re.Pattern[str], low: str, pos: int) -> re.Match[str] | None:
    """The first match at or after ``pos`` that does not start inside a word (the reference's
    look-behind): a candidate that does is skipped, and the search goes on one position later."""
    while True:
        m = fast.search(low, pos)
        if m is None:
            return None
        start = m.start()
        if not start or not _WORDISH.match(low, start - 1):
            return m
        pos = start + 1


class Labeller:
    """Compiled phrases and cues from one labeller TOML (plus a profile's extra synonyms)."""

    def __init__(self, path: Path, extra_synonyms: dict[str, tuple[str, ...]] | None = None):
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ProfileError(
                str(path),
                "-",
                f"labeller file unreadable ({exc})",
                "fix the TOML syntax or the path",
            ) from exc
        cues = data.get("cues", {})
        try:
            self.neg_before = Phrases(cues["negation_before"])
            self.neg_after = Phrases(cues["negation_after"])
            self.uncertain = Phrases(cues["uncertain"])
            breaks = cues.get("clause_breaks", [])
            sections = cues.get("sections", ["IMPRESSION"])
            ignored = cues.get("ignore_sections", [])
        except KeyError as exc:
            raise ProfileError(
                str(path),
                f"cues.{exc.args[0]}",
                "is required",
                "copy the [cues] table of connectors/profiles/labeller/default.toml",
            ) from None
        self.breaks = Phrases(breaks) if breaks else None
        self.sections = [s.upper() for s in sections]
        self.ignored = {s.upper() for s in ignored}
        names = sorted(
            {*self.sections, *self.ignored, "FINDINGS", "RECOMMENDATION", "RECOMMENDATIONS"},
            key=len,
            reverse=True,
        )
        heads = "|".join(re.escape(s) for s in names)
        self._heading = re.compile(rf"(?:^|\n|(?<=[.:]\s))\s*({heads})\s*:", re.IGNORECASE)
        self._cache: dict[tuple[str, str], TextLabel | None] = {}
        self.findings: dict[str, Phrases] = {}
        extra = extra_synonyms or {}
        fnames = set(data.get("findings", {})) | set(extra)
        for name in fnames:
            syn = list(data.get("findings", {}).get(name, {}).get("synonyms", []))
            syn += list(extra.get(name, ()))
            if not syn:
                raise ProfileError(
                    str(path),
                    f"findings.{name}.synonyms",
                    "is empty",
                    "list the phrases that name this finding",
                )
            self.findings[name] = Phrases(syn)

    # -- text structure ---------------------------------------------------------------------------

    def sections_of(self, text: str) -> dict[str, str]:
        """Heading (upper case) -> its text, for the headings the labeller knows."""
        return self._split(text, list(self._heading.finditer(text)))

    @staticmethod
    def clauses(text: str) -> list[str]:
        """The text cut at sentence ends (. ; ! ? before a space), line breaks and 'a.B'."""
        cuts = [0, *(m.end() for m in _CLAUSE_END.finditer(text)), len(text)]
        parts = (text[a:b].strip() for a, b in itertools.pairwise(cuts))
        return [p for p in parts if p]

    # -- labelling --------------------------------------------------------------------------------

    def label(self, text: str, finding: str) -> TextLabel | None:
        """Label one finding in a report; None when the report never names it.

        Cached by text: a final report often repeats its preliminary word for word.
        """
        key = (finding, text)
        hit = self._cache.get(key, _MISS)
        if hit is not _MISS:
            return hit  # type: ignore[return-value]
        out = self._label(text, finding)
        if len(self._cache) >= 4096:
            self._cache.clear()
        self._cache[key] = out
        return out

    def _label(self, text: str, finding: str) -> TextLabel | None:
        pat = self.findings.get(finding)
        if pat is None:
            return None
        if not pat.search(text):
            return None
        marks = list(self._heading.finditer(text))
        if not marks:
            return self._decide(text, pat)
        secs = self._split(text, marks)
        for name in self.sections:
            body = secs.get(name)
            if body:
                matches = pat.finditer(body)  # one pass: found, and where
                if matches:
                    return self._decide(body, pat, matches)
        # the whole report, less history/indication/technique (why it was ordered, how)
        kept = [text[: marks[0].start()]]
        for i, m in enumerate(marks):
            if m.group(1).upper() not in self.ignored:
                end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
                kept.append(text[m.end() : end])
        rest = "\n".join(kept)
        matches = pat.finditer(rest)
        if matches:
            return self._decide(rest, pat, matches)
        return None

    @staticmethod
    def _split(text: str, marks: list[re.Match[str]]) -> dict[str, str]:
        out: dict[str, str] = {}
        for i, m in enumerate(marks):
            end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
            name = m.group(1).upper()
            out[name] = out.get(name, "") + " " + text[m.end() : end]
        return out

    def _decide(
        self, text: str, pat: Phrases, matches: list[re.Match[str]] | None = None
    ) -> TextLabel:
        seen: dict[str, str] = {}
        if matches is None:
            matches = pat.finditer(text)
        # clause boundaries only around the mentions (same cuts as clauses())
        cuts = [0, *(m.end() for m in _CLAUSE_END.finditer(text)), len(text)]
        for m in matches:
            i = bisect.bisect_right(cuts, m.start()) - 1
            lo, hi = cuts[i], cuts[min(i + 1, len(cuts) - 1)]
            raw = text[lo:hi]
            clause = raw.strip()
            if not clause:
                continue
            off = lo + (len(raw) - len(raw.lstrip()))
            state, a, b = self._state(clause, m.start() - off, m.end() - off)
            # keep only the decisive span (cue .. mention), not the whole clause: a clause may
            # carry a name or date ("discussed with Dr X at 14:05") that must never be stored
            seen.setdefault(state, clause[a:b])
        for state in ("positive", "uncertain", "negative"):
            if state in seen:
                return TextLabel(state, _trim(seen[state]))
        raise AssertionError("a matched pattern yields a state")

    def _state(self, clause: str, start: int, end: int) -> tuple[str, int, int]:
        """The mention's state and the decisive span: from the deciding cue to the mention."""
        # the scope of a cue stops at a clause break ("no fracture, but a hematoma")
        left = clause[:start]
        right = clause[end:]
        left_off = 0
        if self.breaks is not None:
            cut = [m.end() for m in self.breaks.finditer(left)]
            if cut:
                left_off = cut[-1]
                left = left[left_off:]
            m = self.breaks.search(right)
            if m:
                right = right[: m.start()]
        for state, before, after in (
            ("uncertain", self.uncertain, self.uncertain),
            ("negative", self.neg_before, self.neg_after),
        ):
            cue = before.search(left)
            if cue:
                return state, left_off + cue.start(), end
            cue = after.search(right)
            if cue:
                return state, start, end + cue.end()
        return "positive", start, end


def _trim(clause: str, limit: int = 160) -> str:
    clause = " ".join(clause.split())
    return clause if len(clause) <= limit else clause[: limit - 1] + "…"


@lru_cache(maxsize=32)
def labeller_for(path: Path, extra: tuple[tuple[str, tuple[str, ...]], ...] = ()) -> Labeller:
    """One compiled labeller per file and synonym set (profiles share the default)."""
    return Labeller(path, dict(extra))
