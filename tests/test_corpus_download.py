"""download_lmd against a local HTTP server (Range support) serving a tiny tarball built here."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loopgen.commands import corpus as corpus_command
from loopgen.data.corpus import DownloadError, download_lmd, safe_extract


def _tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


MEMBERS = {f"lmd_full/{c}/{c * 32}.mid": bytes([i]) * (3000 + 100 * i) for i, c in enumerate("0a5f")}
ARCHIVE = _tarball(MEMBERS)
MD5 = hashlib.md5(ARCHIVE).hexdigest()


class _Server:
    """Serves ARCHIVE at /lmd_full.tar.gz, honouring single ``bytes=N-`` ranges; counts requests."""

    def __init__(self, payload: bytes, ranges: bool = True):
        server = self
        self.payload, self.ranges, self.requests = payload, ranges, []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(self.headers.get("Range"))
                if self.path != "/lmd_full.tar.gz":
                    self.send_error(404)
                    return
                body, status = server.payload, 200
                match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
                if match and server.ranges:
                    start = int(match.group(1))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.end_headers()
                        return
                    body, status = body[start:], 206
                    self.send_response(status)
                    self.send_header(
                        "Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}"
                    )
                else:
                    self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/lmd_full.tar.gz"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _extracted(dest: Path) -> dict[str, bytes]:
    return {p.relative_to(dest).as_posix(): p.read_bytes() for p in dest.rglob("*.mid")}


def test_full_download_extracts_and_is_idempotent(tmp_path: Path) -> None:
    with _Server(ARCHIVE) as server:
        out = download_lmd(tmp_path, server.url, MD5, progress=False)
        assert out == tmp_path
        assert _extracted(tmp_path) == MEMBERS
        assert (tmp_path / "lmd_full.tar.gz").read_bytes() == ARCHIVE
        assert server.requests == [None]
        download_lmd(tmp_path, server.url, MD5, progress=False)  # done: no request
        assert len(server.requests) == 1


def test_resume_from_partial_file(tmp_path: Path) -> None:
    cut = len(ARCHIVE) // 3
    (tmp_path / "lmd_full.tar.gz.part").write_bytes(ARCHIVE[:cut])
    with _Server(ARCHIVE) as server:
        download_lmd(tmp_path, server.url, MD5.upper(), progress=False)
        assert server.requests == [f"bytes={cut}-"]
    assert (tmp_path / "lmd_full.tar.gz").read_bytes() == ARCHIVE
    assert _extracted(tmp_path) == MEMBERS
    assert not (tmp_path / "lmd_full.tar.gz.part").exists()


def test_resume_when_server_ignores_range_starts_over(tmp_path: Path) -> None:
    (tmp_path / "lmd_full.tar.gz.part").write_bytes(b"stale bytes")
    with _Server(ARCHIVE, ranges=False) as server:
        download_lmd(tmp_path, server.url, MD5, extract=False, progress=False)
    assert (tmp_path / "lmd_full.tar.gz").read_bytes() == ARCHIVE
    assert not _extracted(tmp_path)


def test_complete_partial_file_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "lmd_full.tar.gz.part").write_bytes(ARCHIVE)
    with _Server(ARCHIVE) as server:  # the server answers 416: nothing more to fetch
        download_lmd(tmp_path, server.url, MD5, progress=False)
    assert _extracted(tmp_path) == MEMBERS


def test_checksum_mismatch_is_a_clear_error_and_keeps_the_file(tmp_path: Path) -> None:
    with _Server(ARCHIVE) as server, pytest.raises(DownloadError, match="MD5 mismatch"):
        download_lmd(tmp_path, server.url, "0" * 32, progress=False)
    assert (tmp_path / "lmd_full.tar.gz.bad").read_bytes() == ARCHIVE
    assert not (tmp_path / "lmd_full.tar.gz").exists()
    assert not _extracted(tmp_path)


def test_md5_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MD5"):
        download_lmd(tmp_path, "http://127.0.0.1:9/lmd_full.tar.gz", None, progress=False)
    from loopgen.__main__ import main

    assert main(["corpus", "download-lmd", str(tmp_path / "lmd")]) == 2  # refused before anything is made
    assert not (tmp_path / "lmd").exists()


def test_http_error_is_a_download_error(tmp_path: Path) -> None:
    with _Server(ARCHIVE) as server, pytest.raises(DownloadError, match="404"):
        download_lmd(tmp_path, server.url.replace("lmd_full", "missing"), MD5, progress=False)


@pytest.mark.parametrize("name", ["../escape.mid", "/abs/escape.mid", "lmd_full/../../escape.mid"])
def test_safe_extract_refuses_path_traversal(tmp_path: Path, name: str) -> None:
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(_tarball({"lmd_full/ok.mid": b"x", name: b"evil"}))
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError, match="unsafe path"):
        safe_extract(archive, dest)
    assert not (tmp_path / "escape.mid").exists()
    assert not list(dest.rglob("*.mid"))


def test_safe_extract_refuses_links(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo("lmd_full/link.mid")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    archive = tmp_path / "links.tar.gz"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(DownloadError, match="link"):
        safe_extract(archive, tmp_path / "dest")


def test_cli_download(tmp_path: Path) -> None:
    with _Server(ARCHIVE) as server:
        assert corpus_command.main(["download-lmd", str(tmp_path), "--url", server.url, "--md5", MD5, "--quiet"]) == 0
    assert _extracted(tmp_path) == MEMBERS
