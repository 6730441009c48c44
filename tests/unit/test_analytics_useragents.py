"""OPAWG user-agents-v2 classification against OPAWG's own examples (tests/data/opawg)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.useragents import Agent, classify, js_to_python

DATA = Path(__file__).resolve().parents[1] / "data" / "opawg"
PACKAGE = Path(__file__).resolve().parents[2] / "analytics" / "data"


def examples(name: str) -> list[tuple[str, str]]:
    entries = json.loads((DATA / f"{name}.examples.json").read_text())["entries"]
    return [(e["name"], ex) for e in entries for ex in e["examples"]]


def categories(name: str) -> dict[str, str | None]:
    entries = json.loads((PACKAGE / f"opawg-{name}.json").read_text())["entries"]
    return {e["name"]: e.get("category") for e in entries}


@pytest.mark.parametrize(("name", "kind"), [("bots", "bot"), ("apps", "app"),
                                            ("libraries", "library"), ("browsers", "browser")])
def test_every_example_is_its_own_entry(name: str, kind: str) -> None:
    cats = categories(name)
    cases = examples(name)
    assert len(cases) > 10
    wrong = []
    for entry, ua in cases:
        got = classify(ua)
        want = "bot" if kind == "library" and cats[entry] == "bot" else kind
        if (got.kind, got.name) != (want, entry):
            wrong.append((entry, ua, got))
    assert not wrong, wrong[:5]


def test_devices_are_matched_separately() -> None:
    wrong = []
    for entry, ua in examples("devices"):
        if classify(ua).device != entry:
            wrong.append((entry, ua, classify(ua).device))
    # OPAWG's own order puts "Apple iPhone" (which matches CFNetwork) before "Apple Watch":
    # its Watch example is an iPhone by the list, as it is for every consumer of the list
    assert [w[0] for w in wrong] == ["Apple Watch"], wrong
    got = classify("AppleCoreMedia/1.0.0.20K71 (iPhone; U; CPU OS 16_1 like Mac OS X; en_us)")
    assert got == Agent("library", "AppleCoreMedia", "Apple iPhone", "mobile")


def test_kinds_and_exclusion() -> None:
    assert classify("okhttp/4.9.2").kind == "bot"  # a library OPAWG files as a bot
    assert not classify("okhttp/4.9.2").counts
    assert classify("Googlebot-News Audio") == Agent("bot", "Googlebot")
    assert classify("Overcast/3.0 (+http://overcast.fm/; iOS podcast app)").kind == "app"
    chrome = classify("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                      "Chrome/120.0.0.0 Safari/537.36")
    assert (chrome.kind, chrome.name, chrome.counts) == ("browser", "Chrome", True)
    assert classify("") == Agent("unknown", None)
    assert classify("zz-unknown-thing/1.0").kind == "unknown"
    assert classify("x" * 100_000).kind == "unknown"  # long input: bounded work


def test_js_regex_translation() -> None:
    assert js_to_python(r"^(?<app>Foo)/[^]") == r"^(?P<app>Foo)/[\s\S]"
    assert js_to_python(r"^Airr(%20Beta)?/") == r"^Airr(%20Beta)?/"
