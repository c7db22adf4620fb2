"""``bench`` runs as ``python -m bench`` from the repository's root and is not installed: its
tests import it from there."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[2])
if REPO not in sys.path:
    sys.path.insert(0, REPO)
