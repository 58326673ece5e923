"""Shared fixtures: where the repository's models live."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def models_dir() -> Path:
    return ROOT / "models"
