"""Playback tokens: what a signed URL grants, minted and checked with HMAC-SHA256.

Pure code (the standard library and manifests.layout), so that the origin, the command line and an app backend
(`sori.access`) share one definition of the format. signing/FORMAT.md describes it for
backends in other languages, with a test vector (tests/unit/test_signing.py checks it).
"""
