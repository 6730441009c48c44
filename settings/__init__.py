"""The settings every layer reads: frozen dataclasses with their defaults and validation.

A leaf: standard library only, imported by storage/, packager/, origin/ and sori/ alike
(`sori.config` loads the TOML file and the SORI_* overrides into these classes).
`config.toml` at the repository root mirrors the defaults, checked by a test.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from typing import Any

_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_QUEUE_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_MIN_SECRET = 16


class ConfigError(Exception):
    """A setting is unknown or has a bad value; the message names the key."""


@dataclass(frozen=True)
class AudioRung:
    id: str
    bitrate: int  # bits per second
    sample_rate: int  # Hz
    channels: int = 2


@dataclass(frozen=True)
class VideoRung:
    id: str
    height: int
    bitrate: int  # bits per second
    profile: str = "high"  # baseline | main | high
    maxrate_factor: float = 1.5


@dataclass(frozen=True)
class StorageConfig:
    backend: str = "local"
    root: str = "var/media"
    endpoint: str = "127.0.0.1:9000"
    bucket: str = "media"
    access_key: str = ""
    secret_key: str = ""
    secure: bool = False
    region: str = "us-east-1"
    multipart_threshold: int = 16 * 1024 * 1024
    timeout: float = 10.0

    def validate(self) -> None:
        _choice("storage.backend", self.backend, ("local", "s3"))
        if self.backend == "local" and not self.root:
            raise ConfigError("storage.root: must not be empty with the local backend")
        if self.backend == "s3" and not self.bucket:
            raise ConfigError("storage.bucket: must not be empty with the s3 backend")
        _positive("storage.multipart_threshold", self.multipart_threshold)
        if self.multipart_threshold < 5 * 1024 * 1024:
            raise ConfigError("storage.multipart_threshold: S3 parts must be at least 5 MiB")
        _positive("storage.timeout", self.timeout)


@dataclass(frozen=True)
class OriginConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""
    cors_origins: tuple[str, ...] = ("*",)
    workers: int = 0  # processes sharing the port; 0 = one per CPU core (worker_count())
    manifest_max_age: int = 60
    error_max_age: int = 5
    cache_bytes: int = 256 * 1024 * 1024
    cache_object_max: int = 4 * 1024 * 1024
    max_upload_bytes: int = 2 * 1024 * 1024 * 1024
    job_concurrency: int = 1
    upload_dir: str = "var/uploads"
    access_log: bool = True
    # Peers (addresses or networks) whose X-Forwarded-For names the client: the edge.
    trusted_proxies: tuple[str, ...] = ()
    # Live streams across workers and replicas (origin/live/peers.py): each worker also
    # listens here, on an ephemeral port, and a worker that does not own a live stream
    # proxies its requests to the owner's address. "" = 127.0.0.1 (one machine); set the
    # address other machines reach this one at when replicas run on several machines.
    peer_host: str = ""
    offline_max_assets: int = 50  # assets one GET /v1/offline bundle may name

    def worker_count(self) -> int:
        """`workers`, with 0 resolved to one per CPU core."""
        return self.workers or os.cpu_count() or 1

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"origin.port: {self.port} is not a TCP port")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError("origin.public_url: must start with http:// or https:// (or be empty)")
        _non_negative("origin.workers", self.workers)
        if self.peer_host and any(c in self.peer_host for c in "/ []@?#"):
            raise ConfigError(f"origin.peer_host: {self.peer_host!r} is not a host name or "
                              "IPv4 address")
        _non_negative("origin.manifest_max_age", self.manifest_max_age)
        _non_negative("origin.error_max_age", self.error_max_age)
        _non_negative("origin.cache_bytes", self.cache_bytes)
        _non_negative("origin.cache_object_max", self.cache_object_max)
        _positive("origin.max_upload_bytes", self.max_upload_bytes)
        _positive("origin.job_concurrency", self.job_concurrency)
        if not 1 <= self.offline_max_assets <= 1000:
            raise ConfigError("origin.offline_max_assets: must be between 1 and 1000")
        for i, net in enumerate(self.trusted_proxies):
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ConfigError(f"origin.trusted_proxies[{i}]: {net!r} is not an address "
                                  "or network") from None


@dataclass(frozen=True)
class PackagerConfig:
    segment_duration: float = 4.0
    max_duration: float = 4 * 3600.0
    loudness: bool = True
    loudness_target: float = -16.0
    true_peak: float = -1.0
    aac_coder: str = "fast"
    workers: int = 0  # ffmpeg processes in parallel; 0 = one per CPU core
    download_rendition: str = "medium"
    keep_versions: int = 2
    audio_ladder: tuple[AudioRung, ...] = (
        AudioRung("low", 64_000, 22_050),
        AudioRung("medium", 128_000, 44_100),
        AudioRung("high", 320_000, 48_000),
    )
    video_ladder: tuple[VideoRung, ...] = (
        VideoRung("1080p", 1080, 5_000_000, "high"),
        VideoRung("720p", 720, 2_800_000, "high"),
        VideoRung("480p", 480, 1_400_000, "main"),
        VideoRung("360p", 360, 800_000, "main"),
        VideoRung("240p", 240, 400_000, "baseline"),
    )
    # The data-saver rung (issue 14): one more audio rendition, Opus in CMAF, mono, for
    # phones on poor networks; players that cannot decode Opus skip it (CODECS="opus").
    data_saver: bool = True
    data_saver_bitrate: int = 32_000
    video_audio_bitrate: int = 128_000
    x264_preset: str = "veryfast"
    thumbnail_interval: float = 5.0
    thumbnail_width: int = 160

    def validate(self) -> None:
        if not 1.0 <= self.segment_duration <= 30.0:
            raise ConfigError("packager.segment_duration: must be between 1 and 30 seconds")
        _positive("packager.max_duration", self.max_duration)
        if not -70.0 <= self.loudness_target <= -5.0:
            raise ConfigError("packager.loudness_target: must be between -70 and -5 LUFS")
        if not -9.0 <= self.true_peak <= 0.0:
            raise ConfigError("packager.true_peak: must be between -9 and 0 dBTP")
        _choice("packager.aac_coder", self.aac_coder, ("fast", "twoloop", "anmr"))
        _non_negative("packager.workers", self.workers)
        _positive("packager.keep_versions", self.keep_versions)
        if not self.audio_ladder:
            raise ConfigError("packager.audio_ladder: needs at least one rung")
        ids = [r.id for r in self.audio_ladder]
        if len(set(ids)) != len(ids):
            raise ConfigError("packager.audio_ladder: rung ids must be unique")
        for i, r in enumerate(self.audio_ladder):
            key = f"packager.audio_ladder[{i}]"
            _rung_id(f"{key}.id", r.id)
            if not 8_000 <= r.bitrate <= 512_000:
                raise ConfigError(f"{key}.bitrate: must be between 8000 and 512000")
            _choice(f"{key}.sample_rate", r.sample_rate,
                    (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000))
            _choice(f"{key}.channels", r.channels, (1, 2))
        if self.download_rendition not in ids:
            raise ConfigError(
                f"packager.download_rendition: {self.download_rendition!r} is not an audio_ladder id"
            )
        vids = [r.id for r in self.video_ladder]
        if len(set(vids)) != len(vids):
            raise ConfigError("packager.video_ladder: rung ids must be unique")
        for i, v in enumerate(self.video_ladder):
            key = f"packager.video_ladder[{i}]"
            _rung_id(f"{key}.id", v.id)
            if not 90 <= v.height <= 4320:
                raise ConfigError(f"{key}.height: must be between 90 and 4320")
            _positive(f"{key}.bitrate", v.bitrate)
            _choice(f"{key}.profile", v.profile, ("baseline", "main", "high"))
        if not 6_000 <= self.data_saver_bitrate <= 128_000:
            raise ConfigError("packager.data_saver_bitrate: must be between 6000 and 128000")
        _positive("packager.video_audio_bitrate", self.video_audio_bitrate)
        _positive("packager.thumbnail_interval", self.thumbnail_interval)
        _positive("packager.thumbnail_width", self.thumbnail_width)


@dataclass(frozen=True)
class SecurityConfig:
    api_keys: tuple[str, ...] = ()
    presign_expiry: int = 3600
    # {"key-id": "secret"}: playback tokens (signing/); the first signs, every one verifies.
    signing_keys: dict[str, str] = field(default_factory=dict)
    playback_ttl: int = 3600  # seconds a signed playback URL lasts unless asked otherwise
    max_playback_ttl: int = 7 * 24 * 3600
    token_failures_per_minute: int = 60  # per client address; 0 = no limit

    def validate(self) -> None:
        if any(not k.strip() for k in self.api_keys):
            raise ConfigError("security.api_keys: keys must not be blank")
        if not 1 <= self.presign_expiry <= 7 * 24 * 3600:
            raise ConfigError("security.presign_expiry: must be between 1 s and 7 days")
        for kid, secret in self.signing_keys.items():
            if not _KEY_ID.fullmatch(kid):
                raise ConfigError(f"security.signing_keys: key id {kid!r} must be 1-64 "
                                  "letters, digits, '.', '_' or '-'")
            if len(secret) < _MIN_SECRET:
                raise ConfigError(f"security.signing_keys.{kid}: a secret needs at least "
                                  f"{_MIN_SECRET} characters (try: openssl rand -base64 32)")
        _positive("security.playback_ttl", self.playback_ttl)
        if self.max_playback_ttl < self.playback_ttl:
            raise ConfigError("security.max_playback_ttl: must be at least playback_ttl")
        _non_negative("security.token_failures_per_minute", self.token_failures_per_minute)


@dataclass(frozen=True)
class LiveConfig:
    part_duration: float = 0.25
    segment_duration: float = 2.0
    producer_timeout: float = 30.0
    silence_after: float = 0.15
    max_chunk_bytes: int = 8 * 1024 * 1024
    loudness: bool = True

    def validate(self) -> None:
        if not 0.1 <= self.part_duration <= 2.0:
            raise ConfigError("live.part_duration: must be between 0.1 and 2 seconds")
        if not 3 * self.part_duration <= self.segment_duration <= 10.0:
            raise ConfigError("live.segment_duration: must be at least 3 parts and at most "
                              "10 seconds")
        _positive("live.producer_timeout", self.producer_timeout)
        if not 0.02 <= self.silence_after <= 5.0:
            raise ConfigError("live.silence_after: must be between 0.02 and 5 seconds")
        _positive("live.max_chunk_bytes", self.max_chunk_bytes)


@dataclass(frozen=True)
class JobsConfig:
    """Where upload packaging jobs run: in `sori serve` ("local") or on a queue engine over
    Redis ("redis": SAQ, taken by `sori worker` processes). See jobqueue/."""

    backend: str = "local"
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue: str = "sori"  # SAQ queue name: its keys are saq:{queue}:*
    concurrency: int = 1  # jobs one `sori worker` process runs at once
    timeout: int = 0  # seconds a job may run; 0 = 2 x packager.max_duration + 10 minutes
    heartbeat: int = 10  # seconds without a heartbeat before a job's worker counts as dead
    attempts: int = 3  # runs of a job whose worker died (or failed unexpectedly), the first included
    sweep_interval: int = 5  # seconds between looks for the jobs of dead workers
    shutdown_grace: int = 30  # on SIGTERM: seconds to finish running jobs before handing them back
    keep_finished: int = 86400  # seconds a finished job stays readable (GET /v1/jobs/{id})

    def validate(self) -> None:
        _choice("jobs.backend", self.backend, ("local", "redis"))
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("jobs.redis_url: must start with redis://, rediss:// or unix://")
        if not _QUEUE_NAME.fullmatch(self.queue):
            raise ConfigError("jobs.queue: must be 1-64 letters, digits, '.', '_' or '-'")
        _positive("jobs.concurrency", self.concurrency)
        _non_negative("jobs.timeout", self.timeout)
        if self.heartbeat < 2:
            raise ConfigError("jobs.heartbeat: must be at least 2 seconds")
        _positive("jobs.attempts", self.attempts)
        _positive("jobs.sweep_interval", self.sweep_interval)
        _non_negative("jobs.shutdown_grace", self.shutdown_grace)
        _positive("jobs.keep_finished", self.keep_finished)

    def job_timeout(self, max_duration: float) -> int:
        """The timeout a job gets: `timeout`, or derived from the longest accepted input."""
        return self.timeout or int(2 * max_duration) + 600


@dataclass(frozen=True)
class AnalyticsConfig:
    """Listening analytics (analytics/): events from the origin's requests, CMCD reports and
    imported edge logs, counted per IAB v2.3; see analytics/README.md."""

    enabled: bool = True
    database: str = "var/analytics.sqlite3"  # a path (SQLite, WAL) or a postgresql:// URL
    retention_days: int = 90  # raw events kept this long; daily roll-ups are kept for good
    queue_size: int = 65536  # events waiting for the writer; beyond it they are dropped (counted)
    batch_size: int = 1000  # events per insert transaction at most

    def validate(self) -> None:
        if not self.database.strip():
            raise ConfigError("analytics.database: must be a path or a postgresql:// URL")
        if "://" in self.database and not self.database.startswith(("postgresql://",
                                                                    "postgres://")):
            raise ConfigError("analytics.database: a URL must start with postgresql://")
        if not 1 <= self.retention_days <= 3650:
            raise ConfigError("analytics.retention_days: must be between 1 and 3650")
        if not 100 <= self.queue_size <= 10_000_000:
            raise ConfigError("analytics.queue_size: must be between 100 and 10000000")
        if not 1 <= self.batch_size <= 100_000:
            raise ConfigError("analytics.batch_size: must be between 1 and 100000")


@dataclass(frozen=True)
class Config:
    storage: StorageConfig = field(default_factory=StorageConfig)
    origin: OriginConfig = field(default_factory=OriginConfig)
    packager: PackagerConfig = field(default_factory=PackagerConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    live: LiveConfig = field(default_factory=LiveConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)
    analytics: AnalyticsConfig = field(default_factory=AnalyticsConfig)

    def validate(self) -> Config:
        self.storage.validate()
        self.origin.validate()
        self.packager.validate()
        self.security.validate()
        self.live.validate()
        self.jobs.validate()
        self.analytics.validate()
        return self


def _choice(key: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, allowed))}")


def _positive(key: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{key}: must be greater than 0 (got {value!r})")


def _non_negative(key: str, value: float) -> None:
    if value < 0:
        raise ConfigError(f"{key}: must not be negative (got {value!r})")


def _rung_id(key: str, value: str) -> None:
    if not value or not all(c.isalnum() or c in "_-" for c in value) or len(value) > 32:
        raise ConfigError(f"{key}: {value!r} must be 1-32 letters, digits, '_' or '-'")
