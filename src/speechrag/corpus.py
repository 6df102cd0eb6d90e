"""Turn raw speech files into clean, citable passages.

Scraped pages are messy, so ingestion is a short pipeline of small rules, each applied to one
line ("unit") at a time and each counted so ``speechrag corpus`` can show what it did:

1. decode strictly (UTF-8 with/without BOM, UTF-16 with BOM, GB18030); never guess silently;
2. normalise (NFC, control characters out, stray spaces between CJK characters out);
3. drop site boilerplate (rules in ``boilerplate.toml``, whole-line matches only);
4. classify each line: speech title, section heading, salutation, or body text;
5. rejoin paragraphs that a page break cut in two;
6. split speeches at titles and at a fresh salutation after a speech has already begun;
7. link near-duplicate paragraphs (MinHash LSH candidates, exact Jaccard check);
8. split paragraphs too long for the encoder at sentence boundaries.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import re
import tomllib
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path

from speechrag.errors import CorpusError
from speechrag.lexical import USERDICT_NAME
from speechrag.passage import CorpusReport, Passage, Speech
from speechrag.text import (
    CLOSERS,
    NUMERALS,
    display_width,
    ends_sentence,
    has_content,
    heading_level,
    normalise,
    split_sentences,
)

log = logging.getLogger(__name__)

SUFFIXES = (".md", ".txt")

# e5-small reads at most 512 tokens. Its tokenizer spends ~0.66 tokens per character on this
# corpus (the 601-character paragraph is 385 tokens), so 640 characters keeps every paragraph of
# the shipped corpus whole, leaves room for denser text (digits, Latin), and splits a longer one
# before the encoder would silently truncate it.
MAX_PASSAGE_CHARS = 640

# Near-duplicate threshold: Jaccard similarity of character 3-gram sets. Paragraphs that differ by
# a few characters (篇三 vs 篇五: 顺利/顺意) score above 0.85; merely similar prose scores below 0.5.
TWIN_JACCARD = 0.8
SHINGLE = 3

# --- headings ----------------------------------------------------------------------------

MAX_HEADING_CHARS = 40
_MD_HEADING = re.compile(r"^(#{1,6})\s*(.*?)\s*#*\s*$")
_SPEECH_WORDS = re.compile(r"讲话|致辞|发言|讲稿|演讲|报告|篇[一二三四五六七八九十]+$")
_SALUTATION = re.compile(
    r"^([^，。！？]{0,24}[、，,])?"
    r"(同志们|各位[^，。！？：:]{0,12}|女士们[、，,]?先生们|朋友们|大家好)[：:！!，,]?$"
)
_ORDINAL_TAIL = re.compile(r"篇[一二三四五六七八九十]+$")


# --- data-driven boilerplate rules ---------------------------------------------------------


@dataclass(frozen=True)
class BoilerplateRule:
    name: str
    pattern: re.Pattern[str]
    max_chars: int

    def matches(self, line: str) -> bool:
        return len(line) <= self.max_chars and self.pattern.search(line) is not None


@cache
def boilerplate_rules() -> tuple[BoilerplateRule, ...]:
    data = tomllib.loads(resources.files("speechrag").joinpath("boilerplate.toml").read_text("utf-8"))
    return tuple(
        BoilerplateRule(r["name"], re.compile(r["pattern"]), int(r.get("max_chars", 200)))
        for r in data["rule"]
    )


# --- decoding and normalisation ------------------------------------------------------------


def decode(data: bytes, name: str) -> str:
    """Decode a corpus file strictly; raise CorpusError naming the file if it cannot be done."""
    if not data.strip():
        raise CorpusError(f"{name}: file is empty; remove it from the corpus or add text to it")
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return _check_text(data.decode(codec), name)
            except UnicodeDecodeError as exc:
                raise CorpusError(
                    f"{name}: starts with a {codec} byte-order mark but is not valid {codec} "
                    f"(byte {exc.start}); re-save it as UTF-8"
                ) from None
    if b"\x00" in data[:8192]:
        raise CorpusError(f"{name}: looks like a binary file (NUL bytes); only .md/.txt text belongs in the corpus")
    try:
        return _check_text(data.decode("utf-8"), name)
    except UnicodeDecodeError as exc:
        # Valid multi-byte UTF-8 before the bad byte means a damaged UTF-8 file, not GBK: say so
        # rather than let GB18030 (which accepts most byte pairs) turn it into mojibake.
        if any(b >= 0x80 for b in data[: exc.start]):
            raise CorpusError(
                f"{name}: invalid UTF-8 at byte {exc.start} (the file is UTF-8 before it); "
                "repair that byte or re-save the file as UTF-8"
            ) from None
    try:
        return _check_text(data.decode("gb18030"), name)
    except UnicodeDecodeError:
        pass
    raise CorpusError(f"{name}: not valid UTF-8, UTF-16 (with BOM) or GB18030/GBK; re-save it as UTF-8")


def _check_text(text: str, name: str) -> str:
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if controls > max(8, len(text) // 50):
        raise CorpusError(
            f"{name}: looks like a binary file ({controls} control characters); only text belongs in the corpus"
        )
    if not text.strip():
        raise CorpusError(f"{name}: file is empty; remove it from the corpus or add text to it")
    return text


# --- line classification ------------------------------------------------------------------


@dataclass
class _Unit:
    kind: str  # "title" | "heading" | "salutation" | "body"
    text: str
    line: int
    level: int = 0
    after_gap: bool = False  # a blank line or dropped boilerplate line came before it


@dataclass
class _Counts:
    boilerplate: Counter[str] = field(default_factory=Counter)
    fragments: int = 0
    repaired: int = 0
    split: int = 0


def _classify(text: str, line: int, counts: _Counts) -> _Unit | None:
    for rule in boilerplate_rules():
        if rule.matches(text):
            counts.boilerplate[rule.name] += 1
            return None
    md = _MD_HEADING.match(text)
    if md and md.group(2):
        body = md.group(2)
        level = heading_level(body)
        if level:
            return _Unit("heading", body, line, level)
        if _SPEECH_WORDS.search(body):
            return _Unit("title", body, line)
        return _Unit("heading", body, line, 1)
    if not has_content(text):
        counts.fragments += 1  # a lone "；" or a rule line left by the scrape
        return None
    if _SALUTATION.match(text):
        return _Unit("salutation", text, line)
    level = heading_level(text)
    if level and len(text) <= MAX_HEADING_CHARS and not ends_sentence(text) and "。" not in text:
        return _Unit("heading", text, line, level)
    return _Unit("body", text, line)


def _units(text: str, counts: _Counts) -> Iterator[_Unit]:
    gap = True
    for number, raw in enumerate(text.splitlines(), start=1):
        clean = normalise(raw)
        if not clean:
            gap = True
            continue
        unit = _classify(clean, number, counts)
        if unit is None:
            gap = True
            continue
        unit.after_gap = gap
        gap = False
        yield unit


def _starts_new_paragraph(text: str) -> bool:
    return heading_level(text) > 0


def _repair(units: Iterable[_Unit], counts: _Counts) -> list[_Unit]:
    """Rejoin body text that a page break (or hard wrap) cut in two."""
    out: list[_Unit] = []
    for unit in units:
        prev = out[-1] if out else None
        if (
            unit.kind == "body"
            and prev is not None
            and prev.kind == "body"
            and not ends_sentence(prev.text)
            and not _starts_new_paragraph(unit.text)
        ):
            joiner = " " if prev.text[-1].isascii() and unit.text[0].isascii() else ""
            prev.text = prev.text + joiner + unit.text
            if unit.after_gap:
                counts.repaired += 1
            continue
        out.append(unit)
    return out


# --- speeches -------------------------------------------------------------------------------


@dataclass
class _RawSpeech:
    heading: str
    line: int
    paragraphs: list[tuple[str, str, int]] = field(default_factory=list)  # (section, text, line)


def _speeches(units: Sequence[_Unit], default_title: str) -> list[_RawSpeech]:
    speeches: list[_RawSpeech] = []
    current: _RawSpeech | None = None
    path: list[tuple[int, str]] = []
    for unit in units:
        if unit.kind == "title" or (unit.kind == "salutation" and current and current.paragraphs):
            # A fresh salutation after the speech already has paragraphs means a second speech
            # was pasted under the same title (篇五 holds 仙桃 then 商丘): it keeps that title.
            heading = unit.text if unit.kind == "title" else current.heading  # type: ignore[union-attr]
            current = _RawSpeech(heading, unit.line)
            speeches.append(current)
            path = []
            continue
        if current is None:
            current = _RawSpeech(default_title, unit.line)
            speeches.append(current)
        if unit.kind == "heading":
            path = [p for p in path if p[0] < unit.level] + [(unit.level, unit.text)]
        elif unit.kind == "body":
            current.paragraphs.append((" › ".join(t for _, t in path), unit.text, unit.line))
    return [s for s in speeches if s.paragraphs]


@cache
def _city_names() -> frozenset[str]:
    """City names from jieba's own dictionary: words tagged ns (place) that end in 市 or 县."""
    names: set[str] = set()
    with resources.files("jieba").joinpath("dict.txt").open(encoding="utf-8") as fh:
        for row in fh:
            parts = row.split()
            if len(parts) == 3 and parts[2] == "ns" and parts[0][-1] in "市县" and len(parts[0]) >= 3:
                stem = parts[0][:-1]
                if stem[0] not in "各全本我该每上下":
                    names.add(stem)
    return frozenset(names)


def detect_place(texts: Iterable[str]) -> str:
    """The city a speech is obviously about, or "".

    Candidates are the cities in jieba's dictionary; a candidate counts as obvious when it is
    named with its suffix (商丘市) or at least twice, since many city names are also ordinary
    words (新建, 惠民) that a speech may use once in passing. The most-named one wins.
    """
    import jieba

    jieba.setLogLevel(logging.WARNING)  # jieba logs its dictionary loading at DEBUG to stderr
    cities = _city_names()
    counts: Counter[str] = Counter()
    suffixed: set[str] = set()
    for text in texts:
        for token in jieba.cut(text):
            stem = token[:-1] if token[-1:] in "市县" else token
            if stem in cities:
                counts[stem] += 1
                if stem != token:
                    suffixed.add(stem)
    obvious = [(n, stem) for stem, n in counts.most_common() if n >= 2 or stem in suffixed]
    return obvious[0][1] if obvious else ""


def _starts_mid_sentence(text: str) -> bool:
    """True for a paragraph that begins inside a sentence: a closing quote before any opening."""
    if text[0] in CLOSERS + "，、；。：,;:":
        return True
    close, open_ = text.find("”"), text.find("“")
    return close != -1 and (open_ == -1 or close < open_)


def _titles(raw: Sequence[_RawSpeech], places: Sequence[str], truncated: Sequence[bool]) -> list[str]:
    """Meaningful titles: drop the page's shared prefix, then qualify by place or 节选."""
    headings = [s.heading for s in raw]
    prefix = ""
    if len(set(headings)) > 1:
        prefix = _common_prefix(headings)
        # Never cut inside an ordinal: keep 篇 in 篇五 rather than leave a bare 五.
        while prefix and prefix[-1] in "篇第卷章" and all(
            h[len(prefix) : len(prefix) + 1] in NUMERALS for h in headings
        ):
            prefix = prefix[:-1]
    titles = []
    for heading, place, cut in zip(headings, places, truncated, strict=True):
        short = heading[len(prefix) :].strip() if prefix and heading[len(prefix) :].strip() else heading
        notes = [p for p in (place if place and place not in short else "", "节选" if cut else "") if p]
        titles.append(f"{short}（{'，'.join(notes)}）" if notes else short)
    return titles


def _common_prefix(items: Sequence[str]) -> str:
    first, last = min(items), max(items)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


# --- passages -------------------------------------------------------------------------------

def split_long(text: str, limit: int = MAX_PASSAGE_CHARS) -> list[str]:
    """Pack whole sentences into parts of at most ``limit`` characters (hard-cut only a sentence
    that is itself longer than the limit, preferably after a comma)."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    for sentence in split_sentences(text):
        while len(sentence) > limit:
            cut = max(sentence.rfind(c, 0, limit) for c in "，,、 ")
            cut = cut + 1 if cut > limit // 2 else limit
            pieces.append(sentence[:cut])
            sentence = sentence[cut:]
        pieces.append(sentence)
    parts: list[str] = []
    for piece in pieces:
        if parts and len(parts[-1]) + len(piece) <= limit:
            parts[-1] += piece
        else:
            parts.append(piece)
    return parts


def _passage_id(text: str, seen: Counter[str]) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    seen[digest] += 1
    return digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"


def _shingles(text: str) -> set[str]:
    compact = re.sub(r"\s+", "", text)
    if len(compact) <= SHINGLE:
        return {compact}
    return {compact[i : i + SHINGLE] for i in range(len(compact) - SHINGLE + 1)}


def link_twins(passages: Sequence[Passage], threshold: float = TWIN_JACCARD) -> tuple[list[Passage], int]:
    """Fill ``duplicates``: MinHash LSH proposes candidate pairs, exact Jaccard confirms them."""
    from datasketch import MinHash, MinHashLSH

    shingles = [_shingles(p.text) for p in passages]
    lsh = MinHashLSH(threshold=threshold * 0.85, num_perm=128)  # looser, then verified exactly
    hashes = MinHash.bulk([[s.encode("utf-8") for s in sh] for sh in shingles], num_perm=128)
    for i, mh in enumerate(hashes):
        lsh.insert(str(i), mh)
    twins: dict[int, set[int]] = {}
    pairs = 0
    for i, mh in enumerate(hashes):
        for key in lsh.query(mh):
            j = int(key)
            if j <= i:
                continue
            union = len(shingles[i] | shingles[j])
            if union and len(shingles[i] & shingles[j]) / union >= threshold:
                twins.setdefault(i, set()).add(j)
                twins.setdefault(j, set()).add(i)
                pairs += 1
    linked = [
        replace(p, duplicates=tuple(passages[j].id for j in sorted(twins[i]))) if i in twins else p
        for i, p in enumerate(passages)
    ]
    return linked, pairs


# --- the pipeline ---------------------------------------------------------------------------


def corpus_files(path: str | Path) -> tuple[Path, list[Path]]:
    """The corpus root and its files (a single file, or every .md/.txt below a folder)."""
    root = Path(path)
    if not root.exists():
        raise CorpusError(f"corpus path not found: {root} (give a .md/.txt file or a folder of them)")
    if root.is_file():
        return root.parent, [root]
    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES and p.name != USERDICT_NAME
    )
    if not files:
        raise CorpusError(f"no .md or .txt files under {root}; add speeches there or pass another path")
    return root, files


def read_corpus(path: str | Path = "corpus") -> CorpusReport:
    """Read every speech file under ``path`` into passages, with a report of what was cleaned.

    All files are decoded before any is parsed, so a bad file fails the whole read (nothing is
    half-ingested) with a CorpusError that names it.
    """
    root, files = corpus_files(path)
    texts = []
    for file in files:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise CorpusError(f"{file}: cannot read ({exc.strerror}); check its permissions") from None
        texts.append((file.relative_to(root).as_posix(), decode(data, str(file))))

    counts = _Counts()
    passages: list[Passage] = []
    speeches: list[Speech] = []
    seen: Counter[str] = Counter()
    for source, text in texts:
        raw = _speeches(_repair(_units(text, counts), counts), Path(source).stem)
        places = [detect_place(t for _, t, _ in s.paragraphs) for s in raw]
        truncated = [_starts_mid_sentence(s.paragraphs[0][1]) for s in raw]
        stem = Path(source).with_suffix("").as_posix().replace("/", "-")
        for n, (speech, title, place, cut) in enumerate(
            zip(raw, _titles(raw, places, truncated), places, truncated, strict=True), start=1
        ):
            speech_id = f"{stem}-{n}" if len(raw) > 1 else stem
            chars = 0
            for number, (section, body, line) in enumerate(speech.paragraphs, start=1):
                parts = split_long(body)
                if len(parts) > 1:
                    counts.split += 1
                for k, part in enumerate(parts, start=1):
                    passages.append(
                        Passage(
                            id=_passage_id(part, seen),
                            speech_id=speech_id,
                            speech_title=title,
                            section=section,
                            paragraph=number,
                            text=part,
                            source=source,
                            line=line,
                            part=k if len(parts) > 1 else 0,
                        )
                    )
                chars += len(body)
            speeches.append(
                Speech(speech_id, title, source, speech.line, place, len(speech.paragraphs), chars, 0, cut)
            )

    passages, pairs = link_twins(passages)
    with_twins = Counter(p.speech_id for p in passages if p.duplicates)
    speeches = [replace(s, duplicates=with_twins.get(s.id, 0)) for s in speeches]
    log.info("read %d passages in %d speeches from %d files", len(passages), len(speeches), len(files))
    return CorpusReport(
        passages=tuple(passages),
        speeches=tuple(speeches),
        files=len(files),
        boilerplate_dropped=sum(counts.boilerplate.values()),
        fragments_dropped=counts.fragments,
        paragraphs_repaired=counts.repaired,
        paragraphs_split=counts.split,
        twin_pairs=pairs,
        boilerplate_by_rule=dict(counts.boilerplate),
    )


def load_corpus(path: str | Path = "corpus") -> list[Passage]:
    """The passages of every speech under ``path`` (a file, or a folder searched for .md/.txt)."""
    return list(read_corpus(path).passages)


def format_report(report: CorpusReport) -> str:
    """The table ``speechrag corpus`` prints."""
    headers = ("id", "title", "place", "paras", "chars", "twins")
    rows = [
        (s.id, s.title, s.place or "-", str(s.paragraphs), str(s.characters), str(s.duplicates))
        for s in report.speeches
    ]
    widths = [max(display_width(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    by_rule = ", ".join(f"{k} {v}" for k, v in sorted(report.boilerplate_by_rule.items()))
    lines += [
        "",
        f"{report.files} file(s), {len(report.speeches)} speeches, {len(report.passages)} passages",
        f"boilerplate lines dropped: {report.boilerplate_dropped}" + (f" ({by_rule})" if by_rule else ""),
        f"empty fragments dropped:   {report.fragments_dropped}",
        f"page breaks repaired:      {report.paragraphs_repaired}",
        f"long paragraphs split:     {report.paragraphs_split}",
        f"near-duplicate pairs:      {report.twin_pairs} (Jaccard ≥ {TWIN_JACCARD} on character {SHINGLE}-grams)",
    ]
    return "\n".join(lines)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))
