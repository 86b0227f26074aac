"""Tiny Shakespeare for gpt-lab: find it, verify it, or download it once.

    from data import load_text
    text = load_text()          # str, 1,115,394 characters

Where the file is looked for, in order:
  1. an explicit ``path`` argument,
  2. the environment variable ``GPTLAB_DATA`` (path to the file),
  3. ``data/tinyshakespeare.txt`` next to this package (a git-ignored cache).
If none exists, the file is downloaded into the cache (short timeout). Every file
is checked against its size and SHA-256 before use; a corrupt or truncated file is
refused, never used.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

__all__ = ["load_text", "find_or_fetch", "verify", "DatasetError",
           "URL", "SHA256", "SIZE", "CACHE_PATH", "ENV_VAR"]

URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SIZE = 1_115_394
ENV_VAR = "GPTLAB_DATA"
CACHE_PATH = Path(__file__).resolve().parent / "tinyshakespeare.txt"
TIMEOUT_S = 10.0


class DatasetError(RuntimeError):
    """The dataset is missing, corrupt, or could not be downloaded."""


def _check_bytes(raw: bytes, where: str) -> None:
    if len(raw) != SIZE:
        raise DatasetError(
            f"{where}: size {len(raw):,} bytes, expected {SIZE:,}: the file is truncated or "
            f"not tiny Shakespeare; delete it and try again.")
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        raise DatasetError(
            f"{where}: sha256 {digest} does not match the expected {SHA256}: the file is "
            f"corrupt; delete it and try again.")


def verify(path: str | os.PathLike) -> bytes:
    """Return the bytes of the file at ``path`` if its size and sha256 are right, else raise DatasetError."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"{path}: cannot read the dataset ({e})") from e
    _check_bytes(raw, str(path))
    return raw


def _fetch(url: str = URL, timeout: float = TIMEOUT_S) -> bytes:
    """Download ``url`` (the one network call of this module; tests replace it)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def _save_atomically(raw: bytes, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tinyshakespeare.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def find_or_fetch(path: str | os.PathLike | None = None, cache: str | os.PathLike | None = None) -> Path:
    """Return the path of a verified copy of tiny Shakespeare, downloading it into ``cache`` if needed.

    An explicit ``path`` or ``$GPTLAB_DATA`` that is given but missing or corrupt is an error
    (we never silently fall back past a file the user pointed us to).
    """
    if path is not None:
        verify(path)
        return Path(path)
    env = os.environ.get(ENV_VAR)
    if env:
        if not Path(env).exists():
            raise DatasetError(f"${ENV_VAR} is set to {env!r}, but no file is there.")
        verify(env)
        return Path(env)
    cache = Path(cache) if cache is not None else CACHE_PATH
    if cache.exists():
        verify(cache)  # a corrupt cache is refused with a message saying to delete it
        return cache
    try:
        raw = _fetch()
    except Exception as e:  # noqa: BLE001 - any failure to download (URLError, timeout, socket errors) is this one message
        raise DatasetError(
            "tiny Shakespeare is not available and could not be downloaded "
            f"({type(e).__name__}: {e}).\n"
            "Either (1) copy tinyshakespeare.txt (1,115,394 bytes) to "
            f"{cache} or set the environment variable {ENV_VAR}=/path/to/tinyshakespeare.txt, "
            f"or (2) connect to the internet so it can be downloaded from {URL}."
        ) from None  # the cause is in the message: the urllib traceback (~80 lines) would bury it
    _check_bytes(raw, f"download from {URL}")
    _save_atomically(raw, cache)
    return cache


def load_text(path: str | os.PathLike | None = None) -> str:
    """Return tiny Shakespeare as a str (1,115,394 characters), verified by size and sha256."""
    return verify(find_or_fetch(path)).decode("utf-8")
