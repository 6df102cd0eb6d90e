"""Start the web chat: ``python app.py [--host HOST] [--port PORT] [--api-key KEY] [--mcp]``, same
as ``speechrag serve`` (the chat, the OpenAI-compatible API at /v1, with --mcp the MCP tools).

The corpus and index default to the folders beside this file, so it runs from any directory;
``--corpus``/``--index`` (or $SPEECHRAG_CORPUS/$SPEECHRAG_INDEX) and $SPEECHRAG_HOST/$SPEECHRAG_PORT
still apply.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent

try:
    from speechrag.cli import cli
except ImportError:  # not pip-installed: use the source tree beside this file
    sys.path.insert(0, str(ROOT / "src"))
    from speechrag.cli import cli

if __name__ == "__main__":
    # Later flags win in click, so the user's own --corpus/--index override these defaults.
    defaults = []
    if not os.environ.get("SPEECHRAG_CORPUS"):
        defaults += ["--corpus", str(ROOT / "corpus")]
    if not os.environ.get("SPEECHRAG_INDEX"):
        defaults += ["--index", str(ROOT / "embeddings")]
    cli(["serve", *defaults, *sys.argv[1:]], prog_name="python app.py")
