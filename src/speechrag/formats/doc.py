"""Word 97-2003 (.doc, OLE2): text through antiword, or catdoc when antiword is missing.

Both are small C programs from Debian (``apt-get install antiword``); running them in a
subprocess gives the hard time bound that a pure-Python parser could not, and their output is
read with a cap. Neither reports styles, so every line is a paragraph block; corpus.py finds the
``一、`` headings and the header lines from the text as it does for plain text.

antiword: ``-w 0`` writes each paragraph on one line (no re-wrapping) and ``-m UTF-8.txt``
selects UTF-8 output; without it antiword writes Latin-1 and drops every Chinese character.
catdoc: ``-d utf-8`` for UTF-8 output, ``-w`` for no wrapping. Tables come out as cells
separated by ``|`` (antiword) or tabs (catdoc): each cell's text stays on its row's line.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from speechrag.formats import Block, Deadline, Document, DocumentError, Limits
from speechrag.text import normalise

log = logging.getLogger(__name__)

_TOOLS = (
    ("antiword", ["-w", "0", "-m", "UTF-8.txt"]),
    ("catdoc", ["-d", "utf-8", "-w"]),
)


def _command(file: Path) -> tuple[str, list[str]]:
    for tool, args in _TOOLS:
        exe = shutil.which(tool)
        if exe:
            return tool, [exe, *args, str(file)]
    raise DocumentError("antiword/catdoc not installed: apt-get install antiword")


def _run(tool: str, argv: list[str], limits: Limits, deadline: Deadline, name: str) -> str:
    cap = limits.max_chars * 4  # UTF-8 bytes
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            # Output goes to a file, not a pipe, so a runaway tool cannot fill memory; its size
            # is checked after. LC_ALL=C.UTF-8 keeps catdoc's charset guessing away from the locale.
            proc = subprocess.run(
                argv,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                timeout=max(1.0, deadline.left()),
                env={**os.environ, "LC_ALL": "C.UTF-8"},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise DocumentError(f"{tool} took over {deadline.seconds:g} s; damaged or pathological .doc") from None
        size = out.tell()
        if size > cap:
            raise DocumentError(f"{tool} produced over {cap // (1024 * 1024)} MB of text")
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
        err.seek(0)
        message = err.read(400).decode("utf-8", errors="replace").strip()
    if proc.returncode != 0:
        first = message.splitlines()[0].replace(argv[-1], name) if message else f"exit status {proc.returncode}"
        if "encrypt" in message.lower() or "password" in message.lower():
            raise DocumentError("encrypted .doc")
        if "not a word document" in message.lower():
            raise DocumentError("not a Word document (an OLE2 file: Excel, PowerPoint, or damaged)")
        raise DocumentError(f"{tool} cannot read it: {first}")
    return text


# An encrypted .docx is an OLE2 container holding a stream of this name (MS-OFFCRYPTO).
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")


def load(data: bytes, path: Path, limits: Limits, deadline: Deadline) -> Document:
    if _ENCRYPTED_PACKAGE in data:
        raise DocumentError("encrypted Word document (password-protected docx)")
    # The tools need a file; the bytes already read are written to a private temporary copy so
    # the loader reads exactly what was sniffed (and works for paths with odd characters).
    with tempfile.TemporaryDirectory(prefix="speechrag-doc-") as tmp:
        copy = Path(tmp) / "document.doc"
        copy.write_bytes(data)
        tool, argv = _command(copy)
        text = _run(tool, argv, limits, deadline, path.name)
    blocks = []
    for raw in text.splitlines():
        # antiword marks an image as "[pic]" and a table cell border as "|".
        line = normalise(raw.replace("[pic]", "").strip().strip("|"))
        if line:
            blocks.append(Block(line, "paragraph"))
    log.debug("%s: %s gave %d lines", path.name, tool, len(blocks))
    return Document(blocks=tuple(blocks), format="doc")
