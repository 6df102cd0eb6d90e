"""OCR for PDF pages without a text layer: scans in, lines with their place on the page out.

Used by ``pdf.py`` for the pages that have no text layer (a scan, a photographed page) or whose
text layer is codes, not characters (fonts without a Unicode map); the lines it returns go
through the same running-head and paragraph rules as a text page's. Optional: the engine is the
``ocr`` extra (``pip install 'speechrag[ocr]'``); without it such pages are skipped with a
reason naming the extra.

The engine is ``rapidocr-onnxruntime`` (Apache-2.0): PaddleOCR's PP-OCRv4 Chinese detection and
recognition models (Apache-2.0) as ONNX files inside its wheel, run by onnxruntime on the CPU, so
nothing is downloaded at run time (rapidocr 2.x and 3.x download their models on first use; a
test reads a page with sockets blocked). Pages are drawn by ``pypdfium2`` (PDFium, BSD-3/Apache),
which decodes every image filter a scanner writes (JPEG, JBIG2, CCITT G4, Flate) and applies the
page's /Rotate.

One page, in ``read_page``:

1. drawn in grey at ``RENDER_SIDE`` pixels on its long side (PP-OCR reads lines 48 pixels high,
   so more resolution only costs time: 300 dpi scans are drawn at ~170 dpi);
2. text boxes detected (DB); a page whose boxes mostly stand on end is turned a quarter and
   detected again: a page fed to the scanner sideways, or vertical (竖排) text, whose columns
   then read as lines (PP-OCRv4 reads characters lying on their side); a page whose long lines
   the direction classifier reads mostly upside down is turned half. A turned page that still
   reads poorly (mean confidence under ``UNREADABLE``) is skipped with a reason. Direction is
   decided for the page, never per line: per line, the classifier turned a correctly read line
   of a real speech upside down (and lost it);
3. each box recognised; lines under ``MIN_CONFIDENCE`` are dropped as noise (seals, stains,
   show-through), lines under ``LOW_CONFIDENCE`` kept and counted; look-alike punctuation
   (， read as ’, 、 as 丶, 。 as ·) put back between Chinese characters (``_MISREAD``);
4. boxes on one text line joined (a gap in a line can split it), the page's skew measured from
   the boxes and taken out of their coordinates, and each line given a font size measured from
   its character pitch, so indentation, line gaps and title sizes mean what they mean on a
   text page.

Pages run in parallel, one process per core, each onnxruntime session on one thread (two
threads in one process spent 1.8x the CPU for the same pages, `_engine`); pages are drawn in the
calling process and sent as arrays, and a file with one page to read is read there. A file's
pages are bounded by ``Limits.max_ocr_pages`` and ``Limits.ocr_seconds``; progress is reported
per page. An exception in the caller (Ctrl-C, a budget) terminates the workers at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import re
import statistics
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from speechrag.errors import DocumentError, OcrDeferred
from speechrag.progress import Progress

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

EXTRA = "pip install 'speechrag[ocr]'"
# Long side of a drawn page in pixels: rapidocr's own cap (it shrinks larger images to this).
RENDER_SIDE = 2000
MAX_SCALE = 400 / 72  # never above 400 dpi (a small page drawn at 2,000 pixels)
MIN_CONFIDENCE = 0.5  # rapidocr's own text_score: below it a line is noise
LOW_CONFIDENCE = 0.8  # kept, but counted: a reader should know the page read poorly
TALL = 1.5  # a box this much taller than wide stands on its side (rapidocr's own test)
UNREADABLE = 0.6  # mean confidence under which a turned page is not text we can read
# A line this long (in ems) gives its font size by its width. The detector pads a box by a
# fraction of its height at each end, which on a short line is a large part of its width: the
# date line 2019年6月12日 (6.5 ems) measured 1.3x the body size and read as a heading.
PITCH_EMS = 10
# Sizes this close to the page's body size are the body size: pdf.py starts a paragraph at a
# change of 15 % and calls 20 % larger a heading; titles are set 30 % and more above the body.
SAME_SIZE = 0.25



def missing() -> str:
    """Why OCR cannot run here ("" when it can): the extra's packages are not installed."""
    try:
        import pypdfium2  # noqa: F401
        import rapidocr_onnxruntime  # noqa: F401
    except ImportError as exc:
        return f"OCR needs the ocr extra ({EXTRA}; {exc.name} is missing)"
    return ""


@dataclass(frozen=True)
class OcrLine:
    """One line read from a page, in PDF points from the page's top-left corner as displayed;
    ``size`` is the font size measured from the character pitch."""

    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    confidence: float


@dataclass(frozen=True)
class OcrPage:
    """What OCR read from one page (``index`` 0-based): its lines in reading order, the turn
    that made it upright (degrees clockwise), the lines kept with a low confidence and dropped
    as noise, and ``skipped``, the reason when nothing could be read."""

    index: int
    lines: tuple[OcrLine, ...]
    rotation: int = 0
    low_confidence: int = 0
    noise: int = 0
    skipped: str = ""
    seconds: float = 0.0  # wall clock in the process that read it
    cpu: float = 0.0  # CPU seconds of that process: the cost of the page whatever else runs


# --- one page (runs in a worker process) ---------------------------------------------------------

_engines: dict[int, Any] = {}
# Pages read in this process, by (sha256 of the PDF, page): about 1 KB each.
MEMO_PAGES = 5000
_memo: dict[tuple[str, int], OcrPage] = {}


def _engine() -> Any:
    """The process's rapidocr engine, made once (0.2-0.5 s: three ONNX sessions), on one thread.

    Measured on two pages of the fixture speech scanned at 150 dpi: onnxruntime's own two threads
    spent 19.1 CPU seconds where one spent 10.5 (spinning), so parallelism comes from processes.
    Lines are recognised one at a time: batches of 6 padded to the longest cost 15.5 CPU seconds
    against 10.6, and recall moved by 0.001."""
    if not _engines:
        from rapidocr_onnxruntime import RapidOCR

        engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
        engine.text_rec.rec_batch_num = 1
        _engines[1] = engine
    return _engines[1]


def _crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The box's quadrilateral cut out and straightened (rapidocr's own crop, without its turn of
    tall crops: the page's direction is decided for the whole page)."""
    import cv2
    import numpy as np

    width = int(max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3])))
    height = int(max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2])))
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(box.astype(np.float32), target)
    return np.asarray(cv2.warpPerspective(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE,
                                          flags=cv2.INTER_CUBIC))


def _detect(engine: Any, image: np.ndarray) -> list[np.ndarray]:
    boxes, _ = engine.text_det(image)
    return [] if boxes is None else list(boxes)


def _tall(boxes: Sequence[np.ndarray]) -> bool:
    """Most boxes (by length) stand on their side: a page turned a quarter, or vertical text."""
    import numpy as np

    tall = wide = 0.0
    for b in boxes:
        w, h = float(np.linalg.norm(b[0] - b[1])), float(np.linalg.norm(b[0] - b[3]))
        if h >= TALL * w:
            tall += h
        elif w >= TALL * h:
            wide += w
    return tall > wide


def _upside_down(engine: Any, image: np.ndarray, boxes: Sequence[np.ndarray]) -> bool:
    """The direction classifier, asked about the page's longest lines, says most are upside down."""
    import numpy as np

    longest = sorted(boxes, key=lambda b: -float(np.linalg.norm(b[0] - b[1])))[:24]
    crops = [_crop(image, b) for b in longest]
    if not crops:
        return False
    _, labels, _ = engine.text_cls(crops)
    flipped = sum(1 for label, score in labels if "180" in label and score > 0.9)
    return flipped > len(crops) / 2


def _turn(image: np.ndarray, degrees: int) -> np.ndarray:
    import numpy as np

    return np.ascontiguousarray(np.rot90(image, k=-(degrees // 90)))  # clockwise


def _recognise(engine: Any, image: np.ndarray, boxes: Sequence[np.ndarray]) -> list[tuple[np.ndarray, str, float]]:
    crops = [_crop(image, b) for b in boxes]
    results, _ = engine.text_rec(crops)
    return [(b, str(r[0]), float(r[1])) for b, r in zip(boxes, results, strict=True)]


def read_page(index: int, gray: np.ndarray, scale: float) -> OcrPage:
    """OCR one page drawn in grey at ``scale`` pixels per PDF point: its lines in points."""
    import cv2

    started, cpu = time.perf_counter(), time.process_time()
    engine = _engine()
    image = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    boxes = _detect(engine, image)
    rotation = 0
    if boxes and _tall(boxes):
        rotation = 90
        image = _turn(image, 90)
        boxes = _detect(engine, image)
    if boxes and _upside_down(engine, image, boxes):
        rotation = (rotation + 180) % 360
        image = _turn(image, 180)
        boxes = _detect(engine, image)
    read = _recognise(engine, image, boxes) if boxes else []
    kept = [(b, t.strip(), c) for b, t, c in read if c >= MIN_CONFIDENCE and t.strip()]
    if read and (not kept or statistics.fmean(c for _, _, c in read) < UNREADABLE) and rotation in (90, 270):
        return OcrPage(index, (), rotation, skipped="OCR could not read it upright, turned or not (confidence "
                       f"{statistics.fmean(c for _, _, c in read):.2f})", seconds=time.perf_counter() - started,
                       cpu=time.process_time() - cpu)
    height, width = image.shape[:2]
    lines = _lines(kept, width, height, scale)
    return OcrPage(index, tuple(lines), rotation,
                   low_confidence=sum(1 for line in lines if line.confidence < LOW_CONFIDENCE),
                   noise=len(read) - len(kept), seconds=time.perf_counter() - started,
                   cpu=time.process_time() - cpu)


def _skew(boxes: Sequence[np.ndarray]) -> float:
    """The page's skew in radians: the median slope of the top edges of its wide boxes."""
    angles = [math.atan2(float(b[1][1] - b[0][1]), float(b[1][0] - b[0][0]))
              for b in boxes if float(b[1][0] - b[0][0]) > 3 * abs(float(b[3][1] - b[0][1]))]
    return statistics.median(angles) if angles else 0.0


@dataclass
class _Box:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    confidence: float


def _lines(read: Sequence[tuple[np.ndarray, str, float]], width: int, height: int, scale: float) -> list[OcrLine]:
    """Boxes -> lines in points: skew taken out, boxes on one text line joined left to right,
    sizes measured from the character pitch."""
    import numpy as np

    if not read:
        return []
    angle = _skew([b for b, _, _ in read])
    cos, sin = math.cos(-angle), math.sin(-angle)
    cx, cy = width / 2, height / 2
    boxes = []
    for quad, text, confidence in read:
        pts = np.asarray(quad, dtype=np.float64) - (cx, cy)
        xs = pts[:, 0] * cos - pts[:, 1] * sin + cx
        ys = pts[:, 0] * sin + pts[:, 1] * cos + cy
        boxes.append(_Box(text, float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max()), confidence))
    boxes.sort(key=lambda b: (b.top + b.bottom) / 2)
    rows: list[list[_Box]] = []
    for box in boxes:
        mid = (box.top + box.bottom) / 2
        if rows:
            ref = rows[-1][0]
            if abs(mid - (ref.top + ref.bottom) / 2) < 0.5 * min(ref.bottom - ref.top, box.bottom - box.top):
                rows[-1].append(box)
                continue
        rows.append([box])
    joined = []
    for row in rows:
        row.sort(key=lambda b: b.x0)
        text = ""
        for b in row:
            space = text and text[-1].isascii() and text[-1].isalnum() and b.text[0].isascii() and b.text[0].isalnum()
            text += (" " if space else "") + b.text
        conf = sum(b.confidence * len(b.text) for b in row) / max(1, sum(len(b.text) for b in row))
        joined.append(_Box(_punctuation(text), row[0].x0, max(b.x1 for b in row), min(b.top for b in row),
                           max(b.bottom for b in row), conf))
    # A CJK character is one em wide, so a line's font size is its width over its length in ems;
    # a short line's is its box height (DB boxes are padded) scaled by the page's median ratio of
    # the two. Box heights alone vary by a fifth within a paragraph (a bracket, a box joined a
    # little lower), which read as headings and paragraph breaks.
    pitches = [(b.x1 - b.x0) / _ems(b.text) if _ems(b.text) >= PITCH_EMS else 0.0 for b in joined]
    ratios = [p / (b.bottom - b.top) for p, b in zip(pitches, joined, strict=True) if p and b.bottom > b.top]
    ratio = statistics.median(ratios) if ratios else 0.8
    sizes = [p or (b.bottom - b.top) * ratio for p, b in zip(pitches, joined, strict=True)]
    body = statistics.median(sizes)
    out = []
    for b, size in zip(joined, sizes, strict=True):
        if abs(size - body) <= SAME_SIZE * body:
            size = body  # justification and the detector's jitter, not another font size
        out.append(OcrLine(b.text, b.x0 / scale, b.x1 / scale, b.top / scale, b.bottom / scale,
                           round(size / scale, 1), round(b.confidence, 3)))
    return out


_CJK = r"[\u3400-\u9fff\uf900-\ufaff]"
_MISREAD = (
    # PP-OCRv4 reads a few full-width punctuation marks as look-alikes. Measured on scans of the
    # fixture speech and the realdev speeches (150 and 300 dpi): ， as ’ (15 of 46 differences),
    # 、 as 丶 (13), 。 as · (10) or ° (1), ” as " (4), …… as dots. Each rule fires only
    # between Chinese characters, where the look-alike is never right.
    (re.compile("丶"), "、"),  # the radical 丶 is not written in running text
    (re.compile(rf"(?<={_CJK})[’′](?=[\u3400-\u9fff\d“（])"), "，"),
    # after a Chinese character, a percent sign or a closing quote or bracket (10%° was 10%。,
    # and left unfinished it joined the next paragraph); 30° after a digit stays
    (re.compile(rf"(?:(?<={_CJK})|(?<=[%％”’）》」』]))[·°](?=$|{_CJK}|[“（\d])"), "。"),
    (re.compile(r"\.{4,}|…\.+|\.+…"), "……"),
)


def _punctuation(text: str) -> str:
    """Undo the look-alike punctuation PP-OCR reads in Chinese text; straight double quotes
    become “ or ” by whether one is open."""
    for pattern, repl in _MISREAD:
        text = pattern.sub(repl, text)
    if '"' in text and re.search(_CJK, text):
        out, open_ = [], False
        for ch in text:
            if ch == "“":
                open_ = True
            elif ch == "”":
                open_ = False
            elif ch == '"':
                ch, open_ = ("”", False) if open_ else ("“", True)
            out.append(ch)
        text = "".join(out)
    return text


def _ems(text: str) -> float:
    """The width of ``text`` in ems, counting CJK characters and full-width punctuation as 1 and
    anything else as a little over half."""
    return sum(1.0 if ord(c) >= 0x2E80 else 0.55 for c in text)  # digits and Latin: about half


# --- many pages ------------------------------------------------------------------------------------


def render(data: bytes, indexes: Sequence[int]) -> Iterator[tuple[int, np.ndarray, float]]:
    """Draw the given pages (0-based) in grey: (index, pixels, pixels per point)."""
    import numpy as np
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    try:
        for index in indexes:
            page = pdf[index]
            try:
                w, h = page.get_size()
                scale = min(RENDER_SIDE / max(w, h, 1.0), MAX_SCALE)
                pixels = page.render(scale=scale, grayscale=True).to_numpy()
                yield index, np.array(pixels[:, :, 0] if pixels.ndim == 3 else pixels), scale
            finally:
                page.close()
    finally:
        pdf.close()


def _init_worker() -> None:
    import signal

    # Ctrl-C reaches the whole process group: the caller stops the workers, which stay quiet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _engine()


class OcrReader:
    """Reads pages by OCR for any number of files, in a pool of worker processes it starts on
    first use and keeps until ``close()`` (a context manager). ``progress(done, total)`` is
    called after every page, counted over the reader's life; ``total`` grows as files come.

    ``defer=True`` makes ``read`` raise ``OcrDeferred`` instead: a corpus read in a pool of
    file workers uses it to read scans afterwards in its own process, page-parallel and with
    progress, rather than one page at a time inside a file worker.
    """

    def __init__(self, workers: int | None = None, progress: Progress | None = None, *, defer: bool = False) -> None:
        from speechrag.lexical import available_cores

        self.workers = max(1, available_cores() if workers is None else workers)
        self.progress = progress
        self.defer = defer
        self.done = 0
        self.total = 0
        self.cpu = 0.0  # CPU seconds of the pages read, summed over the workers
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> OcrReader:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        self.close(kill=exc is not None)

    def close(self, *, kill: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if kill:
            # Python 3.11 has no terminate_workers(): a worker in the middle of a page would
            # otherwise hold the caller's exit for that page.
            for process in list(getattr(pool, "_processes", {}).values()):
                with contextlib.suppress(Exception):
                    process.terminate()
        pool.shutdown(wait=not kill, cancel_futures=True)

    def read(self, data: bytes, indexes: Sequence[int], *, seconds: float, what: str = "") -> list[OcrPage]:
        """OCR the given pages (0-based) of the PDF ``data``; raises DocumentError past
        ``seconds`` (the caller's whole budget for these pages). Pages read before in this
        process (the same bytes) come from memory: a server reads an upload to check it, then
        builds; a test suite reads one fixture in many builds."""
        if self.defer:
            raise OcrDeferred(f"{len(indexes)} page(s) to read by OCR")
        digest = hashlib.sha256(data).hexdigest()
        known = [_memo[(digest, i)] for i in indexes if (digest, i) in _memo]
        todo = [i for i in indexes if (digest, i) not in _memo]
        pages = self._read(data, todo, seconds=seconds, what=what) if todo else []
        for page in pages:
            _memo[(digest, page.index)] = page
        while len(_memo) > MEMO_PAGES:
            del _memo[next(iter(_memo))]
        return sorted(known + pages, key=lambda p: p.index)

    def _read(self, data: bytes, indexes: Sequence[int], *, seconds: float, what: str) -> list[OcrPage]:
        self.total += len(indexes)
        self._report()
        start = self.done
        try:
            return self._pages(data, indexes, time.monotonic() + seconds, seconds, what)
        except BaseException as exc:
            self.total -= len(indexes) - (self.done - start)  # the file's unread pages leave the count
            self._report()
            if isinstance(exc, Exception) and not isinstance(exc, DocumentError):
                # a worker that died (memory), an image the engine cannot take: skip the file, say why
                raise DocumentError(f"OCR failed ({type(exc).__name__}: {str(exc)[:80]})") from None
            raise

    def _pages(self, data: bytes, indexes: Sequence[int], deadline: float, seconds: float,
               what: str) -> list[OcrPage]:
        if self.workers == 1 or len(indexes) == 1:
            return [self._one(read_page(i, gray, scale), deadline, seconds, what, n)
                    for n, (i, gray, scale) in enumerate(render(data, indexes), start=1)]
        if self._pool is None:
            import multiprocessing

            # spawn: the caller may hold threads (an encoder loading, a server), which fork copies badly
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_init_worker)
        pages: list[OcrPage] = []
        pending: set[Future[OcrPage]] = set()
        try:
            for i, gray, scale in render(data, indexes):
                while len(pending) >= 2 * self.workers:  # bounded: a page's pixels are ~3 MB
                    pending = self._collect(pending, pages, deadline, seconds, what)
                pending.add(self._pool.submit(read_page, i, gray, scale))
            while pending:
                pending = self._collect(pending, pages, deadline, seconds, what)
        except BaseException:
            self.close(kill=True)
            raise
        return sorted(pages, key=lambda p: p.index)

    def _collect(self, pending: set[Future[OcrPage]], pages: list[OcrPage], deadline: float, seconds: float,
                 what: str) -> set[Future[OcrPage]]:
        done, rest = wait(pending, timeout=max(0.0, deadline - time.monotonic()), return_when=FIRST_COMPLETED)
        if not done:
            self._over(seconds, len(pages), what)
        for future in done:
            pages.append(self._one(future.result(), deadline, seconds, what, len(pages) + 1))
        return rest

    def _one(self, page: OcrPage, deadline: float, seconds: float, what: str, count: int) -> OcrPage:
        self.done += 1
        self.cpu += page.cpu
        self._report()
        log.debug("OCR page %d: %d lines, turned %d, %.2f s", page.index + 1, len(page.lines), page.rotation,
                  page.seconds)
        if time.monotonic() > deadline:
            self._over(seconds, count, what)
        return page

    def _over(self, seconds: float, at: int, what: str) -> None:
        raise DocumentError(f"OCR took over {seconds:g} s ({what or 'scanned PDF'}, {at} page(s) read); "
                            "a larger Limits.ocr_seconds reads it")

    def _report(self) -> None:
        if self.progress:
            self.progress(self.done, self.total)
