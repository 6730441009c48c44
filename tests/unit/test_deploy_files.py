"""The deployment files agree with the code: the image copies every package setup.cfg
installs (an image missing one fails at its first import, which no test here would see
because Docker does not run on these machines)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_copies_every_package() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    packages = {line.strip().rstrip("*") for line in
                cfg["options.packages.find"]["include"].split() if line.strip()}
    copied = set(re.findall(r"^COPY (\w+) \1$", (ROOT / "Dockerfile").read_text(), re.M))
    assert packages <= copied, sorted(packages - copied)
    for name in packages:
        assert (ROOT / name / "__init__.py").exists(), name
