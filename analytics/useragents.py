"""User-Agent -> who is asking, by the OPAWG user-agents-v2 lists (data/opawg-*.json, MIT).

The lists are tried in OPAWG's order, bots, apps, libraries, browsers: the first list with
a matching entry decides the kind, and within a list the first matching entry its name.
A library OPAWG marks `"category": "bot"` (HTTP clients, download tools: okhttp, curl's
kin, aria2, ffmpeg) is kind "bot"; the other libraries are the media stacks real players
stream through (AppleCoreMedia, ExoPlayer, stagefright, GStreamer) and stay "library":
they are listeners whose app cannot be told. A
device (and its category: mobile, smart_speaker, ...) is matched separately from the
devices list. Patterns are JavaScript regular expressions; the few constructs Python's
`re` spells differently are translated when the lists are compiled (once, at first use).
User-Agents repeat a lot, so answers are cached.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

KINDS = ("bot", "app", "library", "browser")
_FILES = {"bot": "opawg-bots.json", "app": "opawg-apps.json", "library": "opawg-libraries.json",
          "browser": "opawg-browsers.json"}
MAX_UA = 1024  # longer User-Agents are classified on their first MAX_UA characters


@dataclass(frozen=True, slots=True)
class Agent:
    kind: str  # "bot" | "app" | "library" | "browser" | "unknown" (see the module doc)
    name: str | None  # the OPAWG entry's name
    device: str | None = None
    device_category: str | None = None

    @property
    def counts(self) -> bool:
        """IAB: bots (and bot-like libraries, which are kind "bot") are no listeners."""
        return self.kind != "bot"


_Entry = tuple[re.Pattern[str], str, str | None]


def js_to_python(pattern: str) -> str:
    """A JavaScript regex source in Python's syntax: named groups `(?<n>` -> `(?P<n>`,
    `[^]` (any character) -> `[\\s\\S]`, `\\cX` and `\\u{...}` do not occur in the lists;
    `\\/` is valid in both."""
    out = re.sub(r"\(\?<([A-Za-z_][A-Za-z0-9_]*)>", r"(?P<\1>", pattern)
    return out.replace("[^]", r"[\s\S]")


def _load(name: str) -> list[_Entry]:
    text = resources.files("analytics").joinpath("data", name).read_text(encoding="utf-8")
    entries: list[_Entry] = []
    for item in json.loads(text)["entries"]:
        try:
            compiled = re.compile(js_to_python(item["pattern"]))
        except re.error:  # a pattern Python cannot take is skipped, not fatal
            continue
        entries.append((compiled, item["name"], item.get("category")))
    return entries


@lru_cache(maxsize=1)
def _tables() -> tuple[list[tuple[str, list[_Entry]]], list[_Entry]]:
    lists = [(kind, _load(_FILES[kind])) for kind in KINDS]
    return lists, _load("opawg-devices.json")


def _first(entries: list[_Entry], ua: str) -> _Entry | None:
    for entry in entries:
        if entry[0].search(ua):
            return entry
    return None


@lru_cache(maxsize=8192)
def classify(ua: str) -> Agent:
    ua = (ua or "")[:MAX_UA]
    lists, devices = _tables()
    device = _first(devices, ua) if ua else None
    dev_name, dev_cat = (device[1], device[2]) if device else (None, None)
    if ua:
        for kind, entries in lists:
            found = _first(entries, ua)
            if found is not None:
                real_kind = "bot" if kind == "library" and found[2] == "bot" else kind
                return Agent(real_kind, found[1], dev_name, dev_cat)
    return Agent("unknown", None, dev_name, dev_cat)
