"""Adding speech documents to a corpus folder (``speechrag add``, the page's uploads): copies that
never overwrite a different file and never show a reader half a file."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from speechrag.corpus import corpus_files, printable
from speechrag.formats import SUFFIXES


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
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    out: list[AddedFile] = []
    for given in paths:
        path = Path(given)
        files = corpus_files(path)[1] if path.is_dir() else [path]
        for file in files:
            if file.suffix.lower() not in SUFFIXES:
                out.append(AddedFile(printable(str(file)), "", "skipped",
                                     f"not a speech document ({' '.join(SUFFIXES)})"))
                continue
            digest = _file_digest(file)
            name = printable(file.name)  # a GBK name from a Windows zip is stored as UTF-8
            dest = target / name
            n = 1
            while dest.exists() and _file_digest(dest) != digest:
                n += 1
                dest = target / f"{Path(name).stem}-{n}{Path(name).suffix}"
            if dest.exists():
                out.append(AddedFile(printable(str(file)), str(dest), "unchanged"))
                continue
            tmp = dest.with_name(f".{dest.name}.part")
            shutil.copyfile(file, tmp)
            os.replace(tmp, dest)
            out.append(AddedFile(printable(str(file)), str(dest), "added" if n == 1 else "renamed"))
    return out


def _file_digest(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
