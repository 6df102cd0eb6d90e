"""Turn speech documents into clean, citable passages with speech metadata.

Each file is read by its format's loader (``formats/``: docx, doc, pdf, html, text) into blocks,
then goes through the same short pipeline of small rules, each counted so ``speechrag corpus``
can show what it did:

1. header lines (title, date, occasion, speaker, source) become the speech's metadata
   (``header.py``), never passages;
2. drop site boilerplate (rules in ``boilerplate.toml``, whole-line matches only);
3. classify each block: speech title, section heading, salutation, or body text;
4. rejoin paragraphs that a page break cut in two;
5. split a file into several speeches only where it clearly holds several: at a new title,
   or at a fresh ``同志们：`` right after a speech closed (``…拜个年…！``); a salutation
   repeated inside a speech never splits it;
6. link near-duplicate paragraphs (MinHash LSH candidates, exact Jaccard check, the same figures);
7. split paragraphs too long for the encoder at sentence boundaries.

A file that cannot be read (unsupported, damaged, encrypted, empty, hostile) is skipped with its
reason in ``CorpusReport.skipped``; it never stops the others (``strict=True`` makes it an error).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

import numpy as np

from speechrag.boilerplate import matching_rule
from speechrag.errors import CorpusError, DocumentError, one_line
from speechrag.formats import SUFFIXES, Block, Document, Limits, read_document
from speechrag.header import MAX_HEADER_LINES, Header, parse_header, place_words
from speechrag.lexical import USERDICT_NAME, Tokenizer
from speechrag.passage import CorpusReport, Passage, SkippedFile, Speech
from speechrag.text import (
    CLOSERS,
    NUMERALS,
    SALUTATION,
    display_width,
    ends_sentence,
    figure_values,
    has_content,
    heading_level,
    split_sentences,
)

log = logging.getLogger(__name__)


# e5-small reads at most 512 tokens. Its tokenizer spends ~0.66 tokens per character on this
# corpus (the 601-character paragraph is 385 tokens), so 640 characters keeps every paragraph of
# the shipped corpus whole, leaves room for denser text (digits, Latin), and splits a longer one
# before the encoder would silently truncate it.
MAX_PASSAGE_CHARS = 640

# Near-duplicate threshold: Jaccard similarity of character 3-gram sets. Paragraphs that differ by
# a few characters (篇三 vs 篇五: 顺利/顺意) score above 0.85; merely similar prose scores below 0.5.
# Paragraphs whose figures differ are never twins, however alike (`link_twins`).
TWIN_JACCARD = 0.8
SHINGLE = 3

# --- headings ----------------------------------------------------------------------------

MAX_HEADING_CHARS = 40
_MD_HEADING = re.compile(r"^(#{1,6})\s*(.*?)\s*#*\s*$")
_SPEECH_WORDS = re.compile(r"讲话|致辞|发言|讲稿|演讲|报告|篇[一二三四五六七八九十]+$")
_ORDINAL_TAIL = re.compile(r"篇[一二三四五六七八九十]+$")


# --- line classification ------------------------------------------------------------------


@dataclass
class _Unit:
    kind: str  # "title" | "heading" | "salutation" | "body"
    text: str
    line: int
    level: int = 0
    after_gap: bool = False  # a blank line or dropped boilerplate line came before it
    header: Header | None = None  # a title's metadata, read from the lines under it


@dataclass
class _Counts:
    boilerplate: Counter[str] = field(default_factory=Counter)
    fragments: int = 0
    repaired: int = 0
    split: int = 0


def _classify(block: Block, line: int, counts: _Counts) -> _Unit | None:
    text = block.text
    rule = matching_rule(text)
    if rule is not None:
        counts.boilerplate[rule] += 1
        return None
    if not has_content(text):
        counts.fragments += 1  # a lone "；" or a rule line left by the scrape
        return None
    level = heading_level(text)
    if block.kind != "paragraph":
        # A heading the container declares (``##``, a Heading style): its enumerator decides
        # the level; without one, a speech word makes it a speech title (``…讲话稿篇二``).
        if level:
            return _Unit("heading", text, line, level)
        if block.kind == "title" or _SPEECH_WORDS.search(text):
            return _Unit("title", text, line)
        return _Unit("heading", text, line, block.level or 1)
    if SALUTATION.match(text):
        return _Unit("salutation", text, line)
    if level and len(text) <= MAX_HEADING_CHARS and not ends_sentence(text) and "。" not in text:
        return _Unit("heading", text, line, level)
    return _Unit("body", text, line)


def _units(doc: Document, counts: _Counts, *, filename: str) -> Iterator[_Unit]:
    """The document's units; header lines (at the start, and under each speech title) are read
    by `parse_header` into the title unit and never become units themselves."""
    lines = doc.lines
    first = parse_header(lines, title_hint=doc.title, filename=filename)
    yield _Unit("title", first.title, _line(doc.blocks[0], 0), header=first)
    skip_to = first.consumed
    gap, previous_line = True, 0
    for i, block in enumerate(doc.blocks):
        if i < skip_to:
            continue
        line = _line(block, i)
        unit = _classify(block, line, counts)
        if unit is None:
            gap = True
            continue
        if unit.kind == "title":
            unit.header = parse_header(lines[i : i + MAX_HEADER_LINES], filename=filename)
            unit.text = unit.header.title or unit.text
            skip_to = i + max(1, unit.header.consumed)
        # Text files say where blank lines were; other formats' blocks are paragraphs already.
        unit.after_gap = gap or not block.line or line > previous_line + 1
        gap, previous_line = False, line
        yield unit


def _line(block: Block, index: int) -> int:
    """The block's line in its file (text formats), else its position."""
    return block.line or index + 1


# In a format with explicit paragraphs (docx, html, pdf), an unfinished short paragraph is a
# caption or label (``专栏：2017年完成情况``), not half of a paragraph a page break cut: those
# halves are long. Text files are hard-wrapped at any width, so there any unfinished line joins.
_CUT_MIN_CHARS = 40
_TEXT_FORMATS = ("txt", "md")


def _repair(units: Iterable[_Unit], counts: _Counts, *, min_chars: int = 0) -> list[_Unit]:
    """Rejoin body text that a page break (or hard wrap) cut in two."""
    out: list[_Unit] = []
    for unit in units:
        prev = out[-1] if out else None
        if (
            unit.kind == "body"
            and prev is not None
            and prev.kind == "body"
            and len(prev.text) >= min_chars
            and not ends_sentence(prev.text)
            and not heading_level(unit.text)
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
    header: Header
    paragraphs: list[tuple[str, str, int]] = field(default_factory=list)  # (section, text, line)


# The end of a speech: thanks, greetings or wishes, ending with an exclamation mark.
_CLOSING = re.compile(
    r"(谢谢|拜个?年|恭祝|祝愿|祝大家|祝各位|致以|新春|春节|节日|身体健康|万事如意|再见)[^。？]*[！!]$"
)


def _speeches(units: Sequence[_Unit]) -> list[_RawSpeech]:
    speeches: list[_RawSpeech] = []
    current: _RawSpeech | None = None
    path: list[tuple[int, str]] = []
    for unit in units:
        if unit.kind == "title":
            assert unit.header is not None
            current = _RawSpeech(unit.text, unit.line, unit.header)
            speeches.append(current)  # a title with no paragraphs under it is dropped below
            path = []
        elif unit.kind == "salutation":
            # A fresh 同志们： right after a speech closed starts a second speech pasted under
            # the same title (the shipped page's 篇五 holds 仙桃, then 商丘). Any other
            # salutation (同志们、朋友们！ between parts, 各位代表： in a report) is only skipped.
            if current and current.paragraphs and unit.text[-1] in "：:" and _CLOSING.search(current.paragraphs[-1][1]):
                current = _RawSpeech(current.heading, unit.line, Header(current.heading))
                speeches.append(current)
                path = []
        elif current is None:
            continue  # not reached: _units starts with the document's title unit
        elif unit.kind == "heading":
            path = [p for p in path if p[0] < unit.level] + [(unit.level, unit.text)]
        else:
            current.paragraphs.append((" › ".join(t for _, t in path), unit.text, unit.line))
    return [s for s in speeches if s.paragraphs]


@cache
def _city_names() -> frozenset[str]:
    """City stems from jieba's place words that end in 市 or 县 (商丘市 -> 商丘)."""
    return frozenset(w[:-1] for w in place_words() if w[-1] in "市县" and w[0] not in "各全本我该每上下")


def detect_place(texts: Iterable[str]) -> str:
    """The city a speech is obviously about, or "".

    Candidates are the cities in jieba's dictionary; a candidate counts as obvious when it is
    named with its suffix (商丘市) or at least twice, since many city names are also ordinary
    words (新建, 惠民) that a speech may use once in passing. The most-named one wins. Words are
    jieba's default-mode cut with its own dictionary (no user dictionary), as jieba-rs gives it.
    """
    cutter = Tokenizer().cutter()
    cities = _city_names()
    counts: Counter[str] = Counter()
    suffixed: set[str] = set()
    for text in texts:
        for token in cutter.cut(text):
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


# MinHash LSH with 128 permutations in 16 bands of 8 rows: the banding datasketch chooses for a
# candidate threshold of 0.68 (looser than TWIN_JACCARD; every candidate is then checked exactly).
_PERMUTATIONS = 128
_BANDS, _ROWS = 16, 8
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _shingle_hashes(text: str) -> np.ndarray:
    """Sorted unique 64-bit hashes of the character 3-grams of ``text`` (whitespace ignored).

    Computed with numpy over the code points: hashing each 3-gram in Python (datasketch's
    sha1 per shingle) was two thirds of a corpus read.
    """
    compact = re.sub(r"\s+", "", text)
    cp = np.frombuffer(compact.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(cp) < SHINGLE:
        cp = np.concatenate([cp, np.zeros(SHINGLE - len(cp), np.uint64)])
    with np.errstate(over="ignore"):  # wrapping uint64 arithmetic is the point
        h = (cp[:-2] << np.uint64(42)) ^ (cp[1:-1] << np.uint64(21)) ^ cp[2:]
        h = (h ^ (h >> np.uint64(31))) * _MIX
    return np.unique(h)


def _minhash(hashes: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The 128 minimum values of ``hashes`` under 128 seeded mixing functions."""
    with np.errstate(over="ignore"):
        x = (hashes[:, None] ^ seeds[None, :]) * _MIX
        x ^= x >> np.uint64(29)
    return np.asarray(x.min(axis=0))


def link_twins(passages: Sequence[Passage], threshold: float = TWIN_JACCARD) -> tuple[list[Passage], int]:
    """Fill ``duplicates``: MinHash LSH proposes candidate pairs, exact Jaccard confirms them,
    and a pair whose figures differ (`text.figure_values`: 2013 vs 2014, 7.5% vs 8%, 一年来 vs
    五年来) is never linked.

    Twins are shown as one hit, and yearly reports repeat paragraphs with only the numbers
    changed: collapsed, one year's targets hid another's. (Of the 2,889 pairs in 52 national
    reports, 1954-2025, 8 are no longer linked: 一年来 beside 五年来, the 2025 targets beside
    another year's; the 2,760 pairs of identical paragraphs all stay.)
    """
    shingles = [_shingle_hashes(p.text) for p in passages]
    seeds = np.random.default_rng(20261129).integers(0, 2**63, _PERMUTATIONS, dtype=np.uint64)
    buckets: dict[bytes, list[int]] = {}
    for i, sh in enumerate(shingles):
        signature = _minhash(sh, seeds)
        for band in range(_BANDS):
            key = band.to_bytes(1, "little") + signature[band * _ROWS : (band + 1) * _ROWS].tobytes()
            buckets.setdefault(key, []).append(i)
    candidates = {(a, b) for members in buckets.values() if len(members) > 1
                  for x, a in enumerate(members) for b in members[x + 1 :]}
    twins: dict[int, set[int]] = {}
    figures: dict[int, tuple[str, ...]] = {}

    def same_figures(i: int, j: int) -> bool:
        if passages[i].text == passages[j].text:
            return True
        for n in (i, j):
            if n not in figures:
                figures[n] = figure_values(passages[n].text)
        return figures[i] == figures[j]

    pairs = 0
    for i, j in sorted(candidates):
        common = len(np.intersect1d(shingles[i], shingles[j], assume_unique=True))
        union = len(shingles[i]) + len(shingles[j]) - common
        if union and common / union >= threshold and same_figures(i, j):
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
    """The corpus root and its documents: a single file, or every file with a readable suffix
    below a folder (symlinked folders followed once; jieba's user dictionary left out)."""
    root = Path(path)
    if not root.exists():
        raise CorpusError(f"corpus path not found: {root} (give a speech file or a folder of them)")
    if root.is_file():
        return root.parent, [root]
    files: list[Path] = []
    seen: set[str] = set()
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a symlink loop, or a folder linked twice: read it once
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort()
        files += [Path(folder) / n for n in names if Path(n).suffix.lower() in SUFFIXES and n != USERDICT_NAME]
    files.sort()
    if not files:
        raise CorpusError(f"no speech documents ({', '.join(SUFFIXES)}) under {root}; add speeches there "
                          "or pass another path")
    return root, files


Progress = Callable[[int, int], None]
# Below this many files a process pool costs more (start-up) than it saves.
PARALLEL_FILES = 16


def _read_one(args: tuple[Path, Limits | None]) -> Document | DocumentError:
    try:
        return read_document(args[0], limits=args[1])
    except DocumentError as exc:
        return exc


def _documents(files: Sequence[Path], limits: Limits | None,
               workers: int | None) -> Iterator[Document | DocumentError]:
    """Each file's Document (or why it is skipped), in order. Loading is most of a corpus read
    (pdfminer alone was 60 % of it on a mixed folder), so it runs in one forked process per
    core; the structure rules after it stay in this process."""
    from speechrag.lexical import available_cores

    workers = available_cores() if workers is None else workers
    jobs = [(f, limits) for f in files]
    if workers <= 1 or len(files) < PARALLEL_FILES or os.name != "posix":
        yield from map(_read_one, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        yield from pool.map(_read_one, jobs, chunksize=4)


def read_corpus(path: str | Path = "corpus", *, strict: bool = False, progress: Progress | None = None,
                limits: Limits | None = None, workers: int | None = None) -> CorpusReport:
    """Read every speech document under ``path`` into passages, with a report of what was
    cleaned and which files were skipped (and why).

    A file that cannot be read is skipped and listed in ``CorpusReport.skipped``; with
    ``strict`` it is a CorpusError instead. Documents are loaded in ``workers`` processes
    (default: one per core, from 16 files on) and handled one at a time, so memory grows with
    the largest document and the passages, not with the corpus files. ``progress(done, total)``
    is called after each file.
    """
    root, files = corpus_files(path)
    counts = _Counts()
    passages: list[Passage] = []
    speeches: list[Speech] = []
    skipped: list[SkippedFile] = []
    seen: Counter[str] = Counter()
    for done, (file, doc) in enumerate(zip(files, _documents(files, limits, workers), strict=True), start=1):
        source = file.relative_to(root).as_posix()
        if isinstance(doc, DocumentError):
            exc = doc
            if strict:
                raise CorpusError(f"{source}: {one_line(exc)} (skip it by leaving out --strict)") from None
            log.info("skipping %s: %s", source, one_line(exc))
            skipped.append(SkippedFile(source, one_line(exc)))
            if progress:
                progress(done, len(files))
            continue
        for rule, n in doc.dropped:
            counts.boilerplate[rule] += n
        min_chars = 0 if doc.format in _TEXT_FORMATS else _CUT_MIN_CHARS
        raw = _speeches(_repair(_units(doc, counts, filename=file.name), counts, min_chars=min_chars))
        places = [s.header.place or detect_place(t for _, t, _ in s.paragraphs) for s in raw]
        truncated = [_starts_mid_sentence(s.paragraphs[0][1]) for s in raw]
        stem = Path(source).with_suffix("").as_posix().replace("/", "-")
        for n, (speech, title, place, cut) in enumerate(
            zip(raw, _titles(raw, places, truncated), places, truncated, strict=True), start=1
        ):
            speech_id = f"{stem}-{n}" if len(raw) > 1 else stem
            h = speech.header
            date = h.date or (doc.published if len(raw) == 1 else "")
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
                            speech_date=date,
                        )
                    )
                chars += len(body)
            speeches.append(Speech(
                speech_id, title, source, speech.line, place, len(speech.paragraphs), chars, 0, cut,
                date=date, speaker=h.speaker, occasion=h.occasion, format=doc.format,
            ))
        if progress:
            progress(done, len(files))
    if not speeches:
        why = f"; {len(skipped)} skipped, e.g. {skipped[0].source}: {skipped[0].reason}" if skipped else ""
        raise CorpusError(f"no speech could be read under {path}{why}")

    passages, pairs = link_twins(passages)
    with_twins = Counter(p.speech_id for p in passages if p.duplicates)
    speeches = [replace(s, duplicates=with_twins.get(s.id, 0)) for s in speeches]
    log.info("read %d passages in %d speeches from %d files (%d skipped)", len(passages), len(speeches),
             len(files), len(skipped))
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
        skipped=tuple(skipped),
    )


@dataclass(frozen=True)
class AddedFile:
    """What `add_documents` did with one file: ``added``, ``renamed`` (a different file had its
    name), ``unchanged`` (the same file is already there) or ``skipped``."""

    source: str
    dest: str
    status: str
    reason: str = ""

    def __str__(self) -> str:
        if self.status == "skipped":
            return f"skipped {self.source}: {self.reason}"
        if self.status == "unchanged":
            return f"unchanged {self.dest} (already in the corpus)"
        return f"{self.status} {self.source} -> {self.dest}"


def add_documents(paths: Iterable[str | Path], folder: str | Path) -> list[AddedFile]:
    """Copy speech documents (files, or every document under a folder) into the corpus
    ``folder``. A file never overwrites a different one of the same name: it is stored as
    ``name-2.docx`` (``-3``, …); the same content already there is left alone. Copies are
    written to a temporary name and renamed, so a reader never sees half a file."""
    import shutil

    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    out: list[AddedFile] = []
    for given in paths:
        path = Path(given)
        files = corpus_files(path)[1] if path.is_dir() else [path]
        for file in files:
            if file.suffix.lower() not in SUFFIXES:
                out.append(AddedFile(str(file), "", "skipped", f"not a speech document ({' '.join(SUFFIXES)})"))
                continue
            digest = _file_digest(file)
            dest = target / file.name
            n = 1
            while dest.exists() and _file_digest(dest) != digest:
                n += 1
                dest = target / f"{file.stem}-{n}{file.suffix}"
            if dest.exists():
                out.append(AddedFile(str(file), str(dest), "unchanged"))
                continue
            tmp = dest.with_name(f".{dest.name}.part")
            shutil.copyfile(file, tmp)
            os.replace(tmp, dest)
            out.append(AddedFile(str(file), str(dest), "added" if n == 1 else "renamed"))
    return out


def _file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def load_corpus(path: str | Path = "corpus") -> list[Passage]:
    """The passages of every speech under ``path`` (a file, or a folder of documents)."""
    return list(read_corpus(path).passages)


def format_report(report: CorpusReport) -> str:
    """The table ``speechrag corpus`` prints."""
    headers = ("id", "title", "date", "speaker", "place", "format", "paras", "chars", "twins")
    rows = [
        (s.id, s.title, s.date or "-", s.speaker or "-", s.place or "-", s.format or "-", str(s.paragraphs),
         str(s.characters), str(s.duplicates))
        for s in report.speeches
    ]
    widths = [max(display_width(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = ["  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [headers, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    by_rule = ", ".join(f"{k} {v}" for k, v in sorted(report.boilerplate_by_rule.items()))
    lines += [
        "",
        f"{report.files} file(s), {len(report.speeches)} speeches, {len(report.passages)} passages"
        + (f", {len(report.skipped)} file(s) skipped" if report.skipped else ""),
        f"boilerplate lines dropped: {report.boilerplate_dropped}" + (f" ({by_rule})" if by_rule else ""),
        f"empty fragments dropped:   {report.fragments_dropped}",
        f"page breaks repaired:      {report.paragraphs_repaired}",
        f"long paragraphs split:     {report.paragraphs_split}",
        f"near-duplicate pairs:      {report.twin_pairs} "
        f"(Jaccard ≥ {TWIN_JACCARD} on character {SHINGLE}-grams, the same figures)",
    ]
    lines += [f"skipped {s.source}: {s.reason}" for s in report.skipped]
    return "\n".join(lines)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))
