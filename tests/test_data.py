"""Tests of data/: checksum, refusal of bad files, the offline error, the download path.

No network: the downloader (data._fetch) is always replaced. The real cache is never touched:
every test passes its own cache path under tmp_path or an explicit path.
"""
import hashlib
from pathlib import Path

import pytest

import data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    monkeypatch.delenv(data.ENV_VAR, raising=False)

    def no_network(*a, **k):
        raise AssertionError("tests must not touch the network")

    monkeypatch.setattr(data, "_fetch", no_network)


@pytest.fixture
def real_bytes():
    for p in (data.CACHE_PATH, SHARED):
        if p.exists():
            raw = p.read_bytes()
            if hashlib.sha256(raw).hexdigest() == data.SHA256:
                return raw
    pytest.skip("tiny Shakespeare not available locally")


def test_good_file_accepted_by_path_and_env(tmp_path, monkeypatch, real_bytes):
    f = tmp_path / "ts.txt"
    f.write_bytes(real_bytes)
    text = data.load_text(f)
    assert len(text) == data.SIZE and len(set(text)) == 65
    monkeypatch.setenv(data.ENV_VAR, str(f))
    assert data.find_or_fetch(cache=tmp_path / "cache.txt") == f
    assert not (tmp_path / "cache.txt").exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty"])
def test_corrupt_or_truncated_refused(tmp_path, damage):
    raw = bytearray(b"x" * data.SIZE)
    if damage == "truncate":
        raw = raw[:-10]
    elif damage == "empty":
        raw = bytearray()
    f = tmp_path / "bad.txt"
    f.write_bytes(bytes(raw))
    with pytest.raises(data.DatasetError, match="truncated|corrupt"):
        data.load_text(f)


def test_corrupt_real_file_refused(tmp_path, real_bytes):
    raw = bytearray(real_bytes)
    raw[1000] ^= 1  # same size, one bit off
    f = tmp_path / "bad.txt"
    f.write_bytes(bytes(raw))
    with pytest.raises(data.DatasetError, match="sha256"):
        data.verify(f)
    # a corrupt cache is refused, not silently replaced or used
    with pytest.raises(data.DatasetError, match="corrupt"):
        data.find_or_fetch(cache=f)


def test_env_var_pointing_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "nope.txt"))
    with pytest.raises(data.DatasetError, match=data.ENV_VAR):
        data.find_or_fetch(cache=tmp_path / "cache.txt")


def test_offline_without_file_names_both_options(tmp_path, monkeypatch):
    def offline(*a, **k):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(data, "_fetch", offline)
    cache = tmp_path / "cache" / "tinyshakespeare.txt"
    with pytest.raises(data.DatasetError) as err:
        data.find_or_fetch(cache=cache)
    msg = str(err.value)
    assert str(cache) in msg and data.ENV_VAR in msg and "internet" in msg
    assert not cache.exists()


def test_download_verified_and_saved(tmp_path, monkeypatch, real_bytes):
    calls = []

    def fake_fetch(url=data.URL, timeout=data.TIMEOUT_S):
        calls.append((url, timeout))
        return real_bytes

    monkeypatch.setattr(data, "_fetch", fake_fetch)
    cache = tmp_path / "sub" / "tinyshakespeare.txt"
    assert data.find_or_fetch(cache=cache) == cache
    assert cache.read_bytes() == real_bytes
    assert calls and calls[0][1] <= 30
    assert [p.name for p in cache.parent.iterdir()] == [cache.name]  # no temp file left
    # second call uses the cache, no download
    data.find_or_fetch(cache=cache)
    assert len(calls) == 1


def test_bad_download_not_saved(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "_fetch", lambda *a, **k: b"<html>rate limited</html>")
    cache = tmp_path / "tinyshakespeare.txt"
    with pytest.raises(data.DatasetError, match="download"):
        data.find_or_fetch(cache=cache)
    assert not cache.exists()


def test_offline_failure_is_one_clear_message(tmp_path, monkeypatch):
    """A download that really fails (urllib, a refused connection) shows the student one clear error,
    not the urllib traceback chained before it (issue 26: ~80 lines before the one-line cause)."""
    import traceback
    import urllib.request

    def refused():  # urllib's own failure, on this machine only (port 9 is closed): no network touched
        with urllib.request.urlopen("http://127.0.0.1:9/tinyshakespeare.txt", timeout=5) as response:
            return response.read()

    monkeypatch.setattr(data, "_fetch", refused)
    with pytest.raises(data.DatasetError) as err:
        data.find_or_fetch(cache=tmp_path / "tinyshakespeare.txt")
    shown = "".join(traceback.format_exception(err.value))
    assert "urllib" not in shown and "During handling" not in shown and "direct cause" not in shown, shown
    assert len(shown.splitlines()) < 15, shown
    assert "URLError" in str(err.value) and data.ENV_VAR in str(err.value)
