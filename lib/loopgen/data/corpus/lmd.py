"""Download and unpack LMD-full, the Lakh MIDI Dataset v0.1 (Raffel, 2016; CC-BY 4.0).

Resumable (HTTP Range), verified (MD5) and safe to unpack (no member may land outside ``dest``).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from loopgen.store.atomic import write_text

# The official address given on https://colinraffel.com/projects/lmd/ ("LMD-full").
LMD_FULL_URL = "http://hog.ee.columbia.edu/craffel/lmd/lmd_full.tar.gz"
# The LMD page publishes no checksum, so there is no default: pass the MD5 you trust.
LMD_FULL_MD5: str | None = None

_CHUNK = 1 << 20
_DONE_MARK = ".extracted"


class DownloadError(RuntimeError):
    """A download failed, or its checksum does not match."""


def file_md5(path: Path | str) -> str:
    """Hex MD5 of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read(response, url: str) -> bytes:
    try:
        return response.read(_CHUNK)
    except (OSError, http.client.HTTPException) as err:
        raise DownloadError(f"download of {url} was interrupted ({err}); run again to resume") from err


def _fetch(url: str, part: Path, progress: bool, timeout: float) -> None:
    """Download ``url`` into ``part``, continuing from its current size when the server allows it."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # asked for bytes past the end: the partial file is complete
            return
        raise DownloadError(f"downloading {url} failed: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"downloading {url} failed: {err}") from err
    with response:
        resumed = have and response.status == 206
        if have and not resumed:  # the server ignored the Range header: start again
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        done = have
        next_report = done + 50 * _CHUNK
        with open(part, "ab" if resumed else "wb") as out:
            while chunk := _read(response, url):
                out.write(chunk)
                done += len(chunk)
                if progress and done >= next_report:
                    shown = f"{done / 1e6:.0f} MB" + (f" of {total / 1e6:.0f} MB" if total else "")
                    print(f"  {shown}", file=sys.stderr)
                    next_report = done + 50 * _CHUNK
    if total is not None and part.stat().st_size < total:
        raise DownloadError(
            f"download of {url} stopped at {part.stat().st_size} of {total} bytes; run again to resume"
        )


def safe_extract(archive: Path | str, dest: Path | str) -> list[Path]:
    """Unpack a tar archive into ``dest``, refusing members that would land outside it or are links."""
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for m in members:
            target = (dest / m.name).resolve()
            if target != dest and dest not in target.parents:
                raise DownloadError(f"unsafe path in {archive}: {m.name!r} would be written outside {dest}")
            if m.issym() or m.islnk() or m.isdev() or m.isfifo():
                raise DownloadError(f"refusing link or special file in {archive}: {m.name!r}")
        for m in members:
            tar.extract(
                m, dest, set_attrs=False, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {})
            )
            if m.isfile():
                written.append(dest / m.name)
    return written


def download_lmd(
    dest: Path | str,
    url: str = LMD_FULL_URL,
    md5: str | None = LMD_FULL_MD5,
    *,
    extract: bool = True,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download LMD-full (or any ``.tar.gz`` at ``url``) into ``dest`` and unpack it there.

    Resumes a partial download (``<name>.part``), checks the MD5, then unpacks safely. Idempotent:
    a verified archive is not downloaded again, an unpacked one not unpacked again. Returns ``dest``
    (the MIDI files are below it, e.g. ``dest/lmd_full/0/...mid``). A checksum mismatch raises
    :class:`DownloadError` and keeps the file (renamed ``<name>.bad``) for inspection.
    """
    if not md5:
        raise ValueError(
            "download_lmd needs the archive's MD5 (md5=...): the LMD page publishes none, so compute it "
            "from a copy you trust (md5sum lmd_full.tar.gz) and pass it, e.g. "
            "`python -m loopgen corpus download-lmd DEST --md5 <hex>`."
        )
    md5 = md5.lower().strip()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    name = url.rstrip("/").rsplit("/", 1)[-1] or "download.tar.gz"
    archive = dest / name
    part = dest / (name + ".part")
    done_mark = dest / (name + _DONE_MARK)
    if extract and done_mark.exists() and done_mark.read_text().strip() == md5:
        return dest
    if not archive.exists():
        if progress:
            print(f"downloading {url} -> {archive}", file=sys.stderr)
        _fetch(url, part, progress, timeout)
        got = file_md5(part)
        if got != md5:
            bad = dest / (name + ".bad")
            os.replace(part, bad)
            raise DownloadError(
                f"MD5 mismatch for {url}: expected {md5}, got {got}. The download was kept as {bad} "
                "(delete it to start over)."
            )
        os.replace(part, archive)
    else:
        got = file_md5(archive)
        if got != md5:
            raise DownloadError(
                f"{archive} exists but its MD5 is {got}, not {md5}; delete it to download again."
            )
    if extract:
        if progress:
            print(f"unpacking {archive} into {dest}", file=sys.stderr)
        safe_extract(archive, dest)
        write_text(done_mark, md5 + "\n")
    return dest


__all__ = ["LMD_FULL_MD5", "LMD_FULL_URL", "DownloadError", "download_lmd", "file_md5", "safe_extract"]
