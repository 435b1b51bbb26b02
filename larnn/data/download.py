"""HTTP download to a file: streamed, with progress, checked, and written atomically."""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from larnn.errors import DownloadError

ProgressCallback = Callable[[int, int | None], None]
"""Called as ``callback(bytes_done, bytes_total)``; `bytes_total` is None when unknown."""

_CHUNK = 1 << 16


def download_file(
    url: str,
    dest: Path,
    *,
    progress: bool = True,
    expected_size: int | None = None,
    expected_sha256: str | None = None,
    progress_callback: ProgressCallback | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download `url` to `dest` and return `dest`.

    The body streams to a temporary file beside `dest`, which replaces `dest` only once
    the byte count matches the server's Content-Length (and `expected_size` and
    `expected_sha256`, when given). On any failure the temporary file is removed and
    DownloadError says why.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            done, total, digest = _stream(url, out, progress, progress_callback, timeout)
        if total is not None and done != total:
            raise DownloadError(
                f"Download of {url} was cut off: received {done:,} of {total:,} bytes. Try again."
            )
        if expected_size is not None and done != expected_size:
            raise DownloadError(
                f"Download of {url} has {done:,} bytes, expected {expected_size:,}."
            )
        if expected_sha256 is not None and digest != expected_sha256.lower():
            raise DownloadError(
                f"Download of {url} has sha256 {digest}, expected {expected_sha256.lower()}."
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _stream(
    url: str,
    out: BinaryIO,
    progress: bool,
    progress_callback: ProgressCallback | None,
    timeout: float,
) -> tuple[int, int | None, str]:
    """Copy the body of `url` into `out`; return (bytes read, Content-Length, sha256 hex)."""
    digest = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None and length.isdigit() else None
            label = url.rstrip("/").rsplit("/", 1)[-1][:40]
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=label, disable=not progress
            ) as bar:
                if progress_callback is not None:
                    progress_callback(0, total)
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
                    if progress_callback is not None:
                        progress_callback(done, total)
    except urllib.error.HTTPError as err:
        raise DownloadError(f"Download of {url} failed: HTTP {err.code} {err.reason}.") from err
    except urllib.error.URLError as err:
        raise DownloadError(
            f"Could not reach {url} ({err.reason}); is this machine offline?"
        ) from err
    except http.client.IncompleteRead as err:
        raise DownloadError(
            f"Download of {url} was cut off after {done + len(err.partial):,} bytes. Try again."
        ) from err
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError(f"Download of {url} failed after {done:,} bytes: {err}") from err
    return done, total, digest.hexdigest()
