"""The storage seam: what retrieval and answering need from an index, whatever holds it.

A `Store` is one published generation, read-only: passages addressed by row (0..size-1, the
same numbering in the dense and the keyword index), the speeches they belong to, a dense and a
keyword search, and the manifest that says how it was built. Retrieval and answering see only
this protocol, so a second engine (Milvus) plugs in without touching them.

A `Filter` narrows a search to speeches by id and by their metadata; each store applies it its
own way (a row mask over FAISS results locally, a filter expression in Milvus).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Protocol, runtime_checkable

import numpy as np

from speechrag.errors import BuildError
from speechrag.passage import Passage, Speech
from speechrag.text import place_key

# HNSW graph settings, the same in every engine (the folder's FAISS, Milvus) so they answer
# alike. bench/scale.py on 1M synthetic vectors (efConstruction 200): recall@10 against exact
# search 0.89 / 0.950 / 0.98 at efSearch 200 / 400 / 800, ~1.1 / 2 / 3.4 ms per search. 600
# leaves a margin over the 0.95 goal, since graph construction is not deterministic across runs.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 600


@dataclass(frozen=True)
class Filter:
    """Which speeches a search may return. ``None`` in a field means no condition on it;
    conditions combine with AND, the values within one field with OR. Places match with or
    without their administrative suffix (商丘 = 商丘市)."""

    speeches: frozenset[str] | None = None
    speakers: frozenset[str] | None = None
    places: frozenset[str] | None = None
    years: tuple[int, int] | None = None  # inclusive; a speech without a date never matches

    @property
    def empty(self) -> bool:
        return self.speeches is None and self.speakers is None and self.places is None and self.years is None

    def allows(self, speech: Speech) -> bool:
        if self.speeches is not None and speech.id not in self.speeches:
            return False
        if self.speakers is not None and speech.speaker not in self.speakers:
            return False
        if self.places is not None and place_key(speech.place) not in {place_key(p) for p in self.places}:
            return False
        if self.years is not None:
            year = speech.year
            if year is None or not self.years[0] <= year <= self.years[1]:
                return False
        return True


@runtime_checkable
class Store(Protocol):
    """One loaded generation of an index (see the module docstring)."""

    @property
    def location(self) -> str:
        """Where it lives, as the user gave it: a folder, a ``.db`` file or a URI."""

    @property
    def manifest(self) -> Mapping[str, Any]:
        """How it was built: format, encoder name/fingerprint/dim, corpus fingerprint, counts,
        build settings, calibration."""

    @property
    def generation(self) -> str: ...

    @property
    def size(self) -> int:
        """Number of passages (rows)."""

    @property
    def speeches(self) -> tuple[Speech, ...]:
        """Every speech, in corpus order."""

    def passages(self, rows: Sequence[int]) -> list[Passage]:
        """The passages at ``rows``, in that order."""

    def passages_by_id(self, ids: Sequence[str]) -> dict[str, Passage]:
        """The passages with these ids (unknown ids are left out)."""

    def passages_of(self, speech_id: str) -> list[Passage]:
        """Every passage of one speech, in reading order ([] for an unknown id)."""

    def search_dense(
        self, vector: np.ndarray, k: int, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows (int64) and cosine scores (float32) of the ``k`` nearest allowed passages,
        best first. ``vector`` is one unit-length query vector of the manifest's dimension."""

    def search_keyword(
        self, query: str, k: int, where: Filter | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and scores of up to ``k`` allowed passages sharing a keyword with ``query``,
        best first. Scores are only comparable within one result (fuse by rank)."""

    def tokenize(self, text: str) -> list[str]:
        """Keyword tokens of ``text``, cut as the passages were."""

    def document_frequency(self, term: str) -> int:
        """How many passages contain ``term`` as a substring (for IDF weights)."""

    def sentence_vectors(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Build-time unit vectors of these sentences (float32, a zero row where not found) and
        which were found (`speechrag.sentencevectors`); a store without them finds none."""

    def is_current(self) -> bool:
        """False once a newer generation has been published at ``location`` (cheap)."""

    def close(self) -> None:
        """Release what the store holds open (files, connections)."""


@runtime_checkable
class StoreWriter(Protocol):
    """A new generation being written; nothing of it is live until `publish`.

    An engine begins one (`stores.local.LocalWriter`, `stores.milvus.MilvusWriter`); the build
    (`index.build_index`, the same steps for every engine) `add`s the passages, their speeches,
    one unit vector per passage and the sentence vectors answers read, then `publish`es it with
    its manifest fields (the generation's name is returned), or `abort`s, leaving the live
    generation as it was.
    """

    def add(self, passages: Sequence[Passage], speeches: Sequence[Speech], vectors: np.ndarray,
            sentences: Any = None) -> None: ...

    def publish(self, manifest: Mapping[str, Any]) -> str: ...

    def abort(self) -> None: ...


class HeldWriter:
    """What a writer that writes everything at `publish` shares: `add` holds the data, `abort`
    drops it (nothing was written); `held()` gives it to `publish`."""

    def __init__(self) -> None:
        self._data: tuple[Sequence[Passage], Sequence[Speech], np.ndarray, Any] | None = None

    def add(self, passages: Sequence[Passage], speeches: Sequence[Speech], vectors: np.ndarray,
            sentences: Any = None) -> None:
        self._data = (passages, speeches, vectors, sentences)

    def held(self) -> tuple[Sequence[Passage], Sequence[Speech], np.ndarray, Any]:
        if self._data is None:
            raise BuildError("nothing to publish: add the passages first")
        return self._data

    def abort(self) -> None:
        self._data = None


# --- what every store's writer checks and records ----------------------------------------


def check_vectors(vectors: np.ndarray, n: int, dim: int, encoder: str = "") -> np.ndarray:
    """``vectors`` as contiguous float32 once they are one unit-length ``dim``-wide row per
    passage (``n`` rows), else a BuildError saying what to pass."""
    v = np.asarray(vectors)
    if v.ndim != 2 or v.shape[0] != n:
        raise BuildError(f"vectors have shape {v.shape}; pass one row per passage ({n} rows)")
    if v.shape[1] != dim:
        made_by = f"encoder {encoder} makes {dim}" if encoder else f"the index holds {dim}"
        raise BuildError(f"vectors have {v.shape[1]} dimensions but {made_by}; pass the encoder that made them")
    v = np.ascontiguousarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)
    if not np.all(np.isfinite(norms)) or np.abs(norms - 1).max(initial=0) > 1e-3:
        raise BuildError("vectors are not all unit length; L2-normalise them (cosine = inner product)")
    return v


def version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "unknown"


def versions(packages: Sequence[str] = ("speechrag", "faiss-cpu", "bm25s", "jieba", "rjieba", "numpy"),
             ) -> dict[str, str]:
    """The installed version of each of ``packages`` ("unknown" when it is not installed),
    recorded in a manifest."""
    return {pkg: version(pkg) for pkg in packages}
