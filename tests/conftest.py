"""Shared fixtures: the corpus manifest and a cache of scans (each corpus binary is analysed once per session)."""
from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Every test analyses for real: no result cache (a hit would skip the code under test, e.g. --max-memory isolation).
# tests/test_cache.py and tests/test_batch.py turn it back on, each with a private $XDG_CACHE_HOME.
os.environ.setdefault("SYSSCAN_NO_CACHE", "1")
CORPUS = ROOT / "corpus"


def manifest() -> dict:
    return json.loads((CORPUS / "manifest.json").read_text())


def manifest_entries() -> list[dict]:
    return manifest()["binaries"]


@lru_cache(maxsize=None)
def scanned(relpath: str):
    from analyzer.run.pipeline import scan_file

    return scan_file(str(CORPUS / relpath))


@pytest.fixture
def corpus_dir() -> Path:
    return CORPUS
