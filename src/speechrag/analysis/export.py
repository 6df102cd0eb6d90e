"""Tables out: rows of flat records as CSV (UTF-8 with a BOM, so Excel reads the Chinese) or
XLSX (openpyxl, the analysis extra). Written to ``path + ".part"`` and renamed, so a failed
write leaves no half file under the name asked for."""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from speechrag.errors import ConfigError

Row = Mapping[str, Any]


def _columns(rows: Sequence[Row]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    return columns


def write_csv(rows: Sequence[Row], path: str | os.PathLike[str], columns: Sequence[str] | None = None) -> Path:
    target = Path(path)
    part = target.with_name(target.name + ".part")
    cols = list(columns or _columns(rows))
    with part.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(part, target)
    return target


def write_xlsx(rows: Sequence[Row], path: str | os.PathLike[str], columns: Sequence[str] | None = None,
               *, sheet: str = "concordance") -> Path:
    try:
        from openpyxl import Workbook
    except ImportError:
        raise ConfigError("writing XLSX needs openpyxl: pip install 'speechrag[analysis]'") from None
    target = Path(path)
    part = target.with_name(target.name + ".part")
    cols = list(columns or _columns(rows))
    book = Workbook(write_only=True)
    ws = book.create_sheet(sheet)
    ws.append(cols)
    for row in rows:
        ws.append([row.get(c, "") for c in cols])
    with part.open("wb") as fh:
        book.save(fh)
    os.replace(part, target)
    return target
