"""Make the in-repo Python SDK importable as ``byourside`` without installing it."""

import sys
from pathlib import Path

_SDK_DIR = str(Path(__file__).resolve().parents[2] / "sdks" / "python")
if not sys.path or sys.path[0] != _SDK_DIR:
    sys.path.insert(0, _SDK_DIR)
