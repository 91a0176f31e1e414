"""Where media bytes come from: a local path (relative to the dataset file), a file:// URL or a data: URL.

Every read is bounded by a byte limit checked before the bytes are loaded. Content digests of files are
cached by (path, size, mtime), so handing the same file to the store G times hashes it once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes, urlparse

from omni_rl.media.types import MediaDecodeError, MediaNotFoundError, MediaPathError, MediaTooLargeError

_DIGEST_BYTES = 20
_REMOTE_SCHEMES = ("http", "https", "s3", "gs", "ftp")


@dataclass(frozen=True)
class Source:
    """A resolved media URL: either a local file or the payload of a data: URL."""

    url: str
    path: Path | None = None  # set for paths and file:// URLs
    mime: str | None = None  # set for data: URLs

    @property
    def label(self) -> str:
        """Short human-readable name for error messages (data: URLs are not echoed in full)."""
        if self.path is not None:
            return str(self.path)
        return f"data:{self.mime or ''} URL ({len(self.url)} chars)"


def resolve(url: str, base_dir: str | os.PathLike[str] | None = None, allow_outside: bool = True) -> Source:
    """Turn a dataset URL into a `Source`; raises MediaDecodeError for unsupported or malformed URLs.
    With ``allow_outside=False`` a local path must stay inside ``base_dir`` (MediaPathError otherwise)."""
    source = _resolve(url, base_dir)
    if not allow_outside and source.path is not None and base_dir is not None:
        check_inside(source, base_dir)
    return source


def check_inside(source: Source, base_dir: str | os.PathLike[str]) -> None:
    """Refuse a path that leaves ``base_dir``: judged on the normalised path, so ``..`` and absolute
    paths are caught while symlinks inside the folder (e.g. a hub cache's blobs) are followed as usual."""
    assert source.path is not None
    root = os.path.normpath(os.path.abspath(base_dir))
    path = os.path.normpath(os.path.abspath(source.path))
    if os.path.commonpath([root, path]) != root:
        raise MediaPathError(
            source.url, f"escapes the dataset's folder {root}; set media.allow_outside_paths=true to allow it"
        )


def _resolve(url: str, base_dir: str | os.PathLike[str] | None) -> Source:
    if not isinstance(url, str) or not url.strip():
        raise MediaDecodeError(repr(url), "media URL must be a non-empty string")
    if url.startswith("data:"):
        header, sep, _ = url.partition(",")
        if not sep:
            raise MediaDecodeError(_short(url), "malformed data: URL (no ',' after the header)")
        return Source(url=url, mime=header[5:].split(";")[0] or None)
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise MediaDecodeError(url, f"file:// URL with a remote host {parsed.netloc!r} is not supported")
        return Source(url=url, path=Path(unquote(parsed.path)))
    if parsed.scheme in _REMOTE_SCHEMES:
        raise MediaDecodeError(url, "remote URLs are not supported; download the media and use a local path")
    path = Path(url).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    return Source(url=url, path=path)


def check_exists(source: Source, max_bytes: int | None = None) -> None:
    """Cheap pre-flight check (no read): the file exists and is within `max_bytes`."""
    if source.path is None:
        if max_bytes is not None and _data_url_size(source) > max_bytes:
            raise MediaTooLargeError(
                source.label, f"about {_data_url_size(source)} bytes > max_bytes={max_bytes}"
            )
        return
    size = _file_size(source)
    if max_bytes is not None and size > max_bytes:
        raise MediaTooLargeError(source.label, f"{size} bytes > max_bytes={max_bytes}")


def read_bytes(source: Source, max_bytes: int) -> bytes:
    """The raw media bytes, refusing anything over `max_bytes` before loading it."""
    if source.path is not None:
        size = _file_size(source)
        if size > max_bytes:
            raise MediaTooLargeError(source.label, f"{size} bytes > max_bytes={max_bytes}")
        try:
            return source.path.read_bytes()
        except OSError as exc:
            raise MediaNotFoundError(source.label, f"cannot read: {exc.strerror or exc}") from exc
    if _data_url_size(source) > max_bytes:
        raise MediaTooLargeError(
            source.label, f"about {_data_url_size(source)} bytes > max_bytes={max_bytes}"
        )
    header, _, payload = source.url.partition(",")
    if header.endswith(";base64"):
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MediaDecodeError(source.label, f"invalid base64 payload: {exc}") from exc
    else:
        data = unquote_to_bytes(payload)
    if len(data) > max_bytes:
        raise MediaTooLargeError(source.label, f"{len(data)} bytes > max_bytes={max_bytes}")
    return data


def digest_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=_DIGEST_BYTES).hexdigest()


class _DigestCache:
    """(path, size, mtime_ns) -> content digest, bounded LRU, thread-safe."""

    def __init__(self, capacity: int = 65536) -> None:
        self._items: OrderedDict[tuple[str, int, int], str] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> str | None:
        with self._lock:
            digest = self._items.get(key)
            if digest is not None:
                self._items.move_to_end(key)
            return digest

    def set(self, key: tuple[str, int, int], digest: str) -> None:
        with self._lock:
            self._items[key] = digest
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)


_DIGESTS = _DigestCache()


def content_digest(source: Source, max_bytes: int) -> str:
    """blake2b of the media bytes; files are hashed once per (path, size, mtime)."""
    if source.path is None:
        return digest_bytes(read_bytes(source, max_bytes))
    stat = _stat(source)
    cache_key = (str(source.path.resolve()), stat.st_size, stat.st_mtime_ns)
    digest = _DIGESTS.get(cache_key)
    if digest is None:
        digest = digest_bytes(read_bytes(source, max_bytes))
        _DIGESTS.set(cache_key, digest)
    return digest


def _stat(source: Source) -> os.stat_result:
    assert source.path is not None
    try:
        stat = source.path.stat()
    except FileNotFoundError as exc:
        raise MediaNotFoundError(source.label, "no such file") from exc
    except OSError as exc:
        raise MediaNotFoundError(source.label, f"cannot stat: {exc.strerror or exc}") from exc
    if not source.path.is_file():
        raise MediaNotFoundError(source.label, "not a regular file")
    return stat


def _file_size(source: Source) -> int:
    return _stat(source).st_size


def _data_url_size(source: Source) -> int:
    header, _, payload = source.url.partition(",")
    return len(payload) * 3 // 4 if header.endswith(";base64") else len(payload)


def _short(url: str) -> str:
    return url if len(url) <= 48 else url[:45] + "..."
