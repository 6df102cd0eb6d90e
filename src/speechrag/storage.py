"""Durable, atomic index folders: generations, manifests with checksums, publish, lock.

Layout of an index folder (``embeddings/`` by default)::

    CURRENT              one line naming the live generation, e.g. ``gen-20261129T030000Z-1a2b3c``
    settings.json        how the last build was asked for (corpus, model, dense): a plain
                         ``speechrag build --index X`` repeats it
    gen-.../             an immutable generation: its files + manifest.json
    cache/               embedding caches (embedcache.py)
    .lock                held by a running build

A build writes a new generation into ``.building-*``, fsyncs it, renames it to ``gen-*`` and
then atomically replaces ``CURRENT`` (write ``CURRENT.tmp``, fsync, rename). Until that last
rename every reader sees the old generation; after it, the new one. There is no moment without
a loadable index, and a build killed at any point leaves only leftovers that the next build
removes (under the lock). Generations are never modified after the rename, so a reader that
raced a build and found its generation deleted simply re-reads ``CURRENT``.

The manifest lists the size and sha256 of every file of its generation and a checksum of
itself; `verify` checks them by streaming before any byte reaches FAISS or bm25s, so a damaged
file is an `IndexCorruptError` naming the command that fixes it, never a segfault.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from speechrag.errors import IndexCorruptError, IndexLoadError, IndexLockedError

log = logging.getLogger(__name__)

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
SETTINGS = "settings.json"
LOCK = ".lock"
BUILDING = ".building-"
GEN_RE = re.compile(r"gen-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}")


def rebuild_hint(root: Path) -> str:
    """The command that rebuilds ``root`` with the settings it was built with (settings.json)."""
    return f"run `speechrag build --index {root} --force`"


# --- files -------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(f: Any) -> str:
    """sha256 of a file or open binary file, read in blocks (index files can be gigabytes)."""
    if isinstance(f, Path):
        with f.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    return hashlib.file_digest(f, "sha256").hexdigest()


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def write_durably(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to a sibling temporary file, fsync it and rename it over ``path``."""
    tmp = path.with_name(f"{path.name}.tmp-{secrets.token_hex(3)}")
    write_durably(tmp, data)
    os.replace(tmp, path)
    fsync_path(path.parent)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# --- generations -------------------------------------------------------------------------


def new_generation_name() -> str:
    return f"gen-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


def current_generation(root: str | Path) -> str | None:
    """The generation ``CURRENT`` names, or None if there is none (or it is unreadable)."""
    try:
        text = (Path(root) / CURRENT).read_text("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    name = text.strip()
    return name if GEN_RE.fullmatch(name) else None


def resolve(root: Path) -> Path:
    """The live generation folder of the index at ``root`` (or ``root`` itself if it is a bare
    generation); IndexLoadError / IndexCorruptError naming the fix otherwise."""
    if not root.exists():
        raise IndexLoadError(f"no index at {root}; run `speechrag build --index {root}`")
    if not root.is_dir():
        raise IndexLoadError(f"index path {root} is not a folder; give the index folder")
    pointer = root / CURRENT
    if not pointer.exists():
        if (root / MANIFEST).is_file():
            return root  # a bare generation directory
        if any(GEN_RE.fullmatch(p.name) for p in root.iterdir()):
            raise IndexCorruptError(f"index {root} has lost its {CURRENT} file; {rebuild_hint(root)}")
        raise IndexLoadError(f"no index at {root}; run `speechrag build --index {root}`")
    try:
        name = pointer.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{pointer} is unreadable ({exc}); {rebuild_hint(root)}") from None
    if not name.endswith("\n") or not GEN_RE.fullmatch(name[:-1]):
        raise IndexCorruptError(f"{pointer} is damaged; {rebuild_hint(root)}")
    gen = root / name[:-1]
    if not gen.is_dir():
        raise IndexCorruptError(f"{pointer} names {name[:-1]}, which is missing; {rebuild_hint(root)}")
    return gen


def resolve_quietly(root: Path) -> Path | None:
    try:
        return resolve(root)
    except IndexLoadError:
        return None


def read_manifest(gen: Path, root: Path, format_version: int) -> dict[str, Any]:
    """The manifest of ``gen``, its own checksum and format checked."""
    path = gen / MANIFEST
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
        stored = manifest.pop("checksum")
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} is missing; {rebuild_hint(root)}") from None
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{path} is damaged ({type(exc).__name__}); {rebuild_hint(root)}") from None
    except OSError as exc:
        raise IndexCorruptError(f"{path} is unreadable ({exc.strerror}); {rebuild_hint(root)}") from None
    if stored != sha256(canonical(manifest)):
        raise IndexCorruptError(f"{path} has been altered (checksum mismatch); {rebuild_hint(root)}")
    if manifest.get("format") != format_version:
        raise IndexLoadError(
            f"index {root} has format {manifest.get('format')!r}; this speechrag reads format "
            f"{format_version}; {rebuild_hint(root)}"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or any(Path(f).is_absolute() or ".." in Path(f).parts for f in files):
        raise IndexCorruptError(f"{path} lists a file outside the index; {rebuild_hint(root)}")
    return manifest


def verify(gen: Path, root: Path, manifest: Mapping[str, Any]) -> None:
    """Check every file the manifest lists: present, same size, same sha256. Hashed in blocks,
    so checking a multi-GB FAISS file does not hold a second copy of it in memory."""
    for name, expected in sorted(manifest["files"].items()):
        path = gen / name
        try:
            with path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size != expected["bytes"]:
                    raise IndexCorruptError(
                        f"{path} has {size} bytes, expected {expected['bytes']} (truncated or appended to); "
                        f"{rebuild_hint(root)}"
                    )
                digest = file_sha256(f)
        except FileNotFoundError:
            raise IndexCorruptError(f"{path} is missing; {rebuild_hint(root)}") from None
        except OSError as exc:
            raise IndexCorruptError(f"{path} is unreadable ({exc.strerror}); {rebuild_hint(root)}") from None
        if digest != expected["sha256"]:
            raise IndexCorruptError(f"{path} has been altered (checksum mismatch); {rebuild_hint(root)}")


def start_generation(root: Path, name: str) -> Path:
    """An empty folder to write generation ``name`` into; `finish_generation` makes it final."""
    tmp = root / f"{BUILDING}{name}"
    tmp.mkdir()
    return tmp


def finish_generation(tmp: Path, fields: Mapping[str, Any]) -> Path:
    """Fsync the files written into ``tmp``, add the manifest (``fields`` + checksums of every
    file) and rename the folder to its final ``gen-*`` name. Not yet live: see `publish`."""
    name = tmp.name.removeprefix(BUILDING)
    files = {}
    for f in sorted(p for p in tmp.rglob("*") if p.is_file()):
        fsync_path(f)
        files[f.relative_to(tmp).as_posix()] = {"sha256": file_sha256(f), "bytes": f.stat().st_size}
    for d in sorted((p for p in tmp.rglob("*") if p.is_dir()), reverse=True):
        fsync_path(d)
    manifest = {
        **fields,
        "generation": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": files,
    }
    manifest["checksum"] = sha256(canonical(manifest))
    text = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    write_durably(tmp / MANIFEST, text.encode("utf-8"))
    fsync_path(tmp)
    final = tmp.parent / name
    os.rename(tmp, final)
    fsync_path(tmp.parent)
    return final


def publish(root: Path, name: str) -> None:
    """Make generation ``name`` the live one: the one atomic step of a build."""
    replace_atomically(root / CURRENT, f"{name}\n".encode())


def cleanup(root: Path, keep: str | None) -> None:
    """Remove what killed or superseded builds left behind; call with the lock held."""
    for p in root.iterdir():
        doomed = (
            p.name.startswith(BUILDING)
            or ".tmp-" in p.name
            or (GEN_RE.fullmatch(p.name) is not None and p.name != keep)
        )
        if doomed:
            log.info("removing leftover %s", p)
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


@contextmanager
def locked(root: Path) -> Iterator[None]:
    """Hold the index's build lock, or fail at once with IndexLockedError."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(root / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise IndexLockedError(
            f"another `speechrag build` is writing {root} (lock {root / LOCK}); wait for it to finish"
        ) from None
    try:
        yield
    finally:
        lock.release()


# --- build settings ----------------------------------------------------------------------


def read_settings(root: Path) -> dict[str, Any]:
    """What the last build of ``root`` was asked for ({} if none); a file that is not a JSON
    object is an IndexCorruptError naming it and the fix."""
    path = root / SETTINGS
    try:
        raw = path.read_bytes()
    except OSError:
        return {}
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError too
        data = None
    if not isinstance(data, dict):
        raise IndexCorruptError(f"{path} is corrupt (not a JSON object): delete it and run "
                                f"`speechrag build --index {root} --corpus CORPUS` to write it afresh")
    return data


def write_settings(root: Path, settings: Mapping[str, Any]) -> None:
    replace_atomically(root / SETTINGS, (json.dumps(dict(settings), ensure_ascii=False, indent=2) + "\n").encode())
