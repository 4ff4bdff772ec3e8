"""Stable short content hashes, used to name checkpoint and cache folders."""
import hashlib


def stable_hash(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
