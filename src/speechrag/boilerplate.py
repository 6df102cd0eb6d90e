"""Site boilerplate rules (``boilerplate.toml``): whole-line patterns that drop the chrome a
scraped or saved page leaves around a speech. Rules are data, not code: add them to the TOML.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class BoilerplateRule:
    name: str
    pattern: re.Pattern[str]
    max_chars: int

    def matches(self, line: str) -> bool:
        return len(line) <= self.max_chars and self.pattern.search(line) is not None


@cache
def boilerplate_rules() -> tuple[BoilerplateRule, ...]:
    data = tomllib.loads(resources.files("speechrag").joinpath("boilerplate.toml").read_text("utf-8"))
    return tuple(
        BoilerplateRule(r["name"], re.compile(r["pattern"]), int(r.get("max_chars", 200)))
        for r in data["rule"]
    )


def matching_rule(line: str) -> str | None:
    """The name of the first rule that drops ``line``, or None to keep it."""
    for rule in boilerplate_rules():
        if rule.matches(line):
            return rule.name
    return None
