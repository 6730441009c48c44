"""Config: the shipped file equals the code's defaults; overrides and validation name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sori import config

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_equals_defaults() -> None:
    assert config.load(ROOT / "config.toml", env={}) == config.Config().validate()


def test_defaults_without_file() -> None:
    cfg = config.load(None, env={})
    assert cfg.storage.backend == "local"
    assert cfg.storage.root == "var/media"
    assert cfg.origin.port == 8080
    assert cfg.packager.segment_duration == 4.0
    assert [r.id for r in cfg.packager.audio_ladder] == ["low", "medium", "high"]
    assert [(r.bitrate, r.sample_rate) for r in cfg.packager.audio_ladder] == [
        (64_000, 22_050), (128_000, 44_100), (320_000, 48_000)]


def test_env_overrides_every_type(tmp_path: Path) -> None:
    env = {
        "SORI_ORIGIN_PORT": "9090",
        "SORI_ORIGIN_PUBLIC_URL": "https://cdn.example.com",
        "SORI_STORAGE_SECURE": "true",
        "SORI_PACKAGER_SEGMENT_DURATION": "6",
        "SORI_SECURITY_API_KEYS": '["k1", "k2"]',
        "SORI_ORIGIN_CORS_ORIGINS": '["https://a.example"]',
        "SORI_PACKAGER_AUDIO_LADDER": '[{"id": "only", "bitrate": 96000, "sample_rate": 44100}]',
        "SORI_PACKAGER_DOWNLOAD_RENDITION": "only",
    }
    cfg = config.load(None, env=env)
    assert cfg.origin.port == 9090
    assert cfg.origin.public_url == "https://cdn.example.com"
    assert cfg.storage.secure is True
    assert cfg.packager.segment_duration == 6.0
    assert cfg.security.api_keys == ("k1", "k2")
    assert cfg.origin.cors_origins == ("https://a.example",)
    assert cfg.packager.audio_ladder == (config.AudioRung("only", 96000, 44100, 2),)


def test_file_then_env_precedence(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[origin]\nport = 7000\nhost = "127.0.0.1"\n')
    assert config.load(f, env={}).origin.port == 7000
    assert config.load(f, env={"SORI_ORIGIN_PORT": "7001"}).origin.port == 7001
    assert config.load(None, env={"SORI_CONFIG": str(f)}).origin.port == 7000


@pytest.mark.parametrize("text, key", [
    ("[origin]\nprot = 1\n", "origin.prot"),
    ("[nope]\nx = 1\n", "nope"),
    ("[origin]\nport = 'eighty'\n", "origin.port"),
    ("[origin]\nport = 70000\n", "origin.port"),
    ("[storage]\nbackend = 'ftp'\n", "storage.backend"),
    ("[packager]\nsegment_duration = 0.1\n", "packager.segment_duration"),
    ("[packager]\nloudness = 'yes'\n", "packager.loudness"),
    ("[packager]\naac_coder = 'best'\n", "packager.aac_coder"),
    ("[packager]\ndownload_rendition = 'ultra'\n", "packager.download_rendition"),
    ("[[packager.audio_ladder]]\nid = 'a'\nbitrate = 64000\nsample_rate = 22050\nextra = 1\n",
     "packager.audio_ladder[0].extra"),
    ("[[packager.audio_ladder]]\nid = 'medium'\nbitrate = 64000\nsample_rate = 12345\n",
     "packager.audio_ladder[0].sample_rate"),
    ("[origin]\npublic_url = 'cdn.example.com'\n", "origin.public_url"),
])
def test_bad_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(config.ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        config.load(f, env={})


@pytest.mark.parametrize("name, value, key", [
    ("SORI_ORIGIN_PORTT", "1", "SORI_ORIGIN_PORTT"),
    ("SORI_BOGUS_X", "1", "SORI_BOGUS_X"),
    ("SORI_ORIGIN_PORT", "abc", "SORI_ORIGIN_PORT"),
    ("SORI_ORIGIN_WORKERS", "-1", "origin.workers"),
])
def test_bad_env_names_the_variable(name: str, value: str, key: str) -> None:
    with pytest.raises(config.ConfigError, match=key):
        config.load(None, env={name: value})


def test_missing_and_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load(tmp_path / "missing.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[origin\n")
    with pytest.raises(config.ConfigError, match="bad.toml"):
        config.load(bad, env={})


def test_client_variables_are_not_settings() -> None:
    from sori.config import load

    cfg = load(None, {"SORI_API_KEY": "k", "SORI_LIVE_PART_DURATION": "0.5"})
    assert cfg.live.part_duration == 0.5
    with pytest.raises(config.ConfigError, match="SORI_LIVE_BOGUS"):
        load(None, {"SORI_LIVE_BOGUS": "1"})
