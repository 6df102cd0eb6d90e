"""Turn speech documents into clean, citable passages with speech metadata.

Each file is read by its format's loader (``formats/``: docx, doc, pdf, html, text) into blocks,
then goes through the same short pipeline of small rules, each counted so ``speechrag corpus``
can show what it did:

1. the document's structure (``structure.py``): header and signature lines become the speech's
   metadata (``header.py``), never passages; boilerplate, cues and front matter are dropped;
   headings, salutations and paragraphs are told apart, page breaks repaired, and a file is split
   into speeches only where it clearly holds several;
2. each speech's metadata, with fallbacks from its text (a speaker's self-introduction, a year in
   its title) and its file (the publication date, a year in the file name);
3. each passage's year, the one it speaks about (``dates.about_year``: a section
   ``一、2013年工作回顾`` of the 2014 report speaks about 2013);
4. link near-duplicate paragraphs (MinHash LSH candidates, exact Jaccard check, the same figures);
5. split paragraphs too long for the encoder at sentence boundaries.

A file that cannot be read (unsupported, damaged, encrypted, empty, hostile) is skipped with its
reason in ``CorpusReport.skipped``; it never stops the others (``strict=True`` makes it an error).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from speechrag.dates import about_year, date_in_filename, parse_date, year_of, years_named
from speechrag.errors import CorpusError, DocumentError, OcrDeferred, one_line
from speechrag.formats import SUFFIXES, Document, Limits, read_document
from speechrag.formats.ocr import OcrReader
from speechrag.header import find_place
from speechrag.lexical import USERDICT_NAME
from speechrag.passage import CorpusReport, Passage, SkippedFile, Speech
from speechrag.people import self_introduction, speaker_label
from speechrag.places import body_place, mentions_place
from speechrag.progress import Progress
from speechrag.structure import Counts, RawSpeech, speeches_of
from speechrag.text import CLOSERS, NUMERALS, figure_values, is_broken_text, split_sentences

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



def detect_place(texts: Iterable[str]) -> str:
    """The place a speech's body shows it is given for, as a short name (商丘), or "".

    `speechrag.places.body_place`: a speech that speaks as a local body (全市, 我市, …) is given
    for the division of that level it names most (twice at least, twice as often as any other);
    any other speech only for a host or organiser named in its opening (向寻甸县…小学的各位领导).
    A place named in passing is not the speech's place.
    """
    return body_place(texts)


def _starts_mid_sentence(text: str) -> bool:
    """True for a paragraph that begins inside a sentence: a closing quote before any opening."""
    if text[0] in CLOSERS + "，、；。：,;:":
        return True
    close, open_ = text.find("”"), text.find("“")
    return close != -1 and (open_ == -1 or close < open_)


def page_range(pages: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """The first and last page of the characters ``start:end`` of a text with ``pages`` marks
    (``Block.pages``); (0, 0) for a text without pages."""
    if not pages:
        return 0, 0
    first = last = pages[0][1]
    for offset, page in pages:
        if offset <= start:
            first = page
        if offset < max(end, start + 1):
            last = page
    return first, max(first, last)


def _titles(raw: Sequence[RawSpeech], places: Sequence[str], truncated: Sequence[bool]) -> list[str]:
    """Meaningful titles: drop the page's shared prefix, then qualify by place (only among the
    several speeches of one file, which a place tells apart: 篇五（商丘）) or 节选. A title is
    otherwise kept as the document writes it."""
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
        named = place and (place in short or mentions_place(short, place))
        notes = [p for p in (place if len(raw) > 1 and place and not named else "", "节选" if cut else "") if p]
        titles.append(f"{short}（{'，'.join(notes)}）" if notes else short)
    return titles


def _common_prefix(items: Sequence[str]) -> str:
    first, last = min(items), max(items)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


@dataclass(frozen=True)
class _Meta:
    date: str
    speaker: str
    occasion: str
    place: str


def _metadata(raw: RawSpeech, doc: Document, filename: str, *, single: bool) -> _Meta:
    """A speech's metadata from its header, its signature, its own first paragraphs and, for
    the date, the year its title names, the page's publication date and the file's name.

    The text wins: the header's or signature's date, then a year the title names (2016年新年致辞),
    then the page's publication date, then a date in the file name (2019年政府工作报告.txt;
    only when the file holds one speech)."""
    h, t = raw.header, raw.trailer
    texts = [text for _, text, *_ in raw.paragraphs]
    speaker = (h.speaker or t.speaker or raw.labelled_speaker or speaker_label(texts[0])
               or next((n for n in map(self_introduction, texts[:3]) if n), ""))
    date = (h.date or t.date or parse_date(raw.heading)
            or (doc.published if single else "") or (date_in_filename(filename) if single else ""))
    place = h.place or (find_place([t.issuer]) if t.issuer else "") or detect_place(texts)
    return _Meta(date, speaker, h.occasion or t.occasion, place)


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


def printable(name: str) -> str:
    """A file name as text that prints and encodes everywhere. A name that is not UTF-8 (GBK
    names from a Windows zip) reaches Python as surrogate escapes (``surrogateescape``): its bytes
    are read as GB18030, else shown as ``\\xNN`` escapes. Only for display and ids: the file is
    opened by its own name."""
    if not is_broken_text(name):
        return name
    raw = os.fsencode(name)
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="backslashreplace")


def source_name(root: Path, file: Path) -> str:
    """A corpus file's source id: its path below the corpus root, printable (`printable`)."""
    return "/".join(printable(part) for part in file.relative_to(root).parts)


def source_path(root: Path, source: str) -> Path | None:
    """The corpus file whose `source_name` is ``source`` (None if there is none)."""
    direct = root / source
    if direct.is_file() and source_name(root, direct) == source:
        return direct
    return next((f for f in corpus_files(root)[1] if source_name(root, f) == source), None)


# Below this many files a process pool costs more (start-up) than it saves.
PARALLEL_FILES = 16


def _read_one(args: tuple[Path, Limits | None], ocr: OcrReader | None = None) -> Document | DocumentError:
    try:
        return read_document(args[0], limits=args[1], ocr=ocr or OcrReader(defer=True))
    except DocumentError as exc:
        return exc


def _documents(files: Sequence[Path], limits: Limits | None,
               workers: int | None, ocr: OcrReader) -> Iterator[Document | DocumentError]:
    """Each file's Document (or why it is skipped), in order. Loading is most of a corpus read
    (pdfminer alone was 60 % of it on a mixed folder), so it runs in one forked process per
    core; the structure rules after it stay in this process. A scan is read again here, by
    ``ocr``: its pages in parallel, with progress per page."""
    from speechrag.lexical import available_cores

    workers = available_cores() if workers is None else workers
    jobs = [(f, limits) for f in files]
    if workers <= 1 or len(files) < PARALLEL_FILES or os.name != "posix":
        yield from (_read_one(job, ocr) for job in jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for job, doc in zip(jobs, pool.map(_read_one, jobs, chunksize=4), strict=True):
            yield _read_one(job, ocr) if isinstance(doc, OcrDeferred) else doc


def read_corpus(path: str | Path = "corpus", *, strict: bool = False, progress: Progress | None = None,
                limits: Limits | None = None, workers: int | None = None,
                ocr_progress: Progress | None = None) -> CorpusReport:
    """Read every speech document under ``path`` into passages, with a report of what was
    cleaned and which files were skipped (and why).

    A file that cannot be read is skipped and listed in ``CorpusReport.skipped``; with
    ``strict`` it is a CorpusError instead. Documents are loaded in ``workers`` processes
    (default: one per core, from 16 files on) and handled one at a time, so memory grows with
    the largest document and the passages, not with the corpus files. ``progress(done, total)``
    is called after each file, ``ocr_progress(done, total)`` after each page read by OCR.
    """
    with OcrReader(progress=ocr_progress) as ocr:
        return _read_corpus(path, strict, progress, limits, workers, ocr)


def _read_corpus(path: str | Path, strict: bool, progress: Progress | None, limits: Limits | None,
                 workers: int | None, ocr: OcrReader) -> CorpusReport:
    root, files = corpus_files(path)
    counts = Counts()
    passages: list[Passage] = []
    speeches: list[Speech] = []
    skipped: list[SkippedFile] = []
    unread: list[SkippedFile] = []
    read_by_ocr: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for done, (file, doc) in enumerate(zip(files, _documents(files, limits, workers, ocr), strict=True), start=1):
        source = source_name(root, file)
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
        if doc.ocr:
            read_by_ocr.update(dict(doc.ocr), files=1)
        unread += [SkippedFile(source, note) for note in doc.notes]
        raw = speeches_of(doc, counts, filename=file.name)
        metas = [_metadata(s, doc, file.name, single=len(raw) == 1) for s in raw]
        truncated = [_starts_mid_sentence(s.paragraphs[0][1]) for s in raw]
        titles = _titles(raw, [m.place for m in metas], truncated)
        stem = Path(source).with_suffix("").as_posix().replace("/", "-")
        for n, (speech, title, meta, cut) in enumerate(zip(raw, titles, metas, truncated, strict=True), start=1):
            speech_id = f"{stem}-{n}" if len(raw) > 1 else stem
            chars, years = 0, set()
            titled = years_named(speech.heading)
            for number, (section, body, line, marks) in enumerate(speech.paragraphs, start=1):
                about = about_year(section, body, year_of(meta.date), titled[0] if len(titled) == 1 else None)
                years.add(about)
                parts = split_long(body)
                if len(parts) > 1:
                    counts.split += 1
                at = 0
                for k, part in enumerate(parts, start=1):
                    at = max(at, body.find(part, at))
                    page, last_page = page_range(marks, at, at + len(part))
                    at += len(part)
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
                            speech_date=meta.date,
                            about_year=about,
                            page=page,
                            last_page=last_page,
                        )
                    )
                chars += len(body)
            speeches.append(Speech(
                speech_id, title, source, speech.line, meta.place, len(speech.paragraphs), chars, 0, cut,
                date=meta.date, speaker=meta.speaker, occasion=meta.occasion, format=doc.format,
                years=tuple(sorted(y for y in years if y)), ocr=bool(doc.ocr),
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
        fragments_dropped=counts.fragments + counts.cues + counts.front_matter,
        paragraphs_repaired=counts.repaired,
        signatures_dropped=counts.signatures,
        paragraphs_split=counts.split,
        twin_pairs=pairs,
        boilerplate_by_rule=dict(counts.boilerplate),
        skipped=tuple(skipped),
        ocr=dict(read_by_ocr),
        unread_pages=tuple(unread),
    )


def load_corpus(path: str | Path = "corpus") -> list[Passage]:
    """The passages of every speech under ``path`` (a file, or a folder of documents)."""
    return list(read_corpus(path).passages)
