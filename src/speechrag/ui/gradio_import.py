"""Import Gradio without its import-time stub writer: about a third of ``import gradio``.

Every Gradio component class, as it is defined, re-reads its own source file, parses it and
renders a ``.pyi`` type stub through Jinja into Gradio's package folder
(``gradio.component_meta.create_or_modify_pyi``). The stubs serve editors of custom
components; a server never reads them. On this project's 2-core machine that work was 0.9 s of
the 2.7 s ``import gradio`` and of the 4 s `python app.py` takes to its first answer
(`bench/cold_start.py`). `load` replaces that one function with a no-op just after its module
runs and before any component is defined; every other line of Gradio runs as shipped. If a
Gradio release renames it, nothing is replaced and the import is only slower.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_MODULE = "gradio.component_meta"
_WRITER = "create_or_modify_pyi"


def _no_stub(*args: Any, **kwargs: Any) -> None:
    """The stub writer's stand-in: writes nothing."""


class _SkipStubs(importlib.abc.MetaPathFinder):
    """Finds `gradio.component_meta` once, as the normal path finder would, and swaps its stub
    writer out after the module body has run."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> Any:
        if name != _MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            if callable(getattr(module, _WRITER, None)):
                setattr(module, _WRITER, _no_stub)

        loader.exec_module = exec_module
        return spec


def load() -> ModuleType:
    """``import gradio``, skipping the stub writer when Gradio is not imported yet."""
    if "gradio" not in sys.modules:
        finder = _SkipStubs()
        sys.meta_path.insert(0, finder)
        try:
            import gradio
        finally:
            if finder in sys.meta_path:
                sys.meta_path.remove(finder)
    import gradio

    return gradio
