"""``clothparse data --download ccp`` without the network: a small archive shaped like GitHub's zip of CCP
(top folder ``clothing-co-parsing-<commit>/``) served from 127.0.0.1 by a handler that honours ``Range`` — or
ignores it, or drops the connection half way. Covered: a download unpacks into the reader's layout and is not
redone; a broken transfer resumes with only the missing bytes; a server answering 200 to a range restarts
cleanly; a content mismatch installs nothing; offline, an HTTP error, a foreign target folder and a path
escaping the archive are one clear message; the CLI path."""
import functools
import hashlib
import http.server
import io
import json
import re
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_ccp import write_ccp

from clothparse import cli
from clothparse.datasets import download
from clothparse.datasets.ccp import CCP, input_stamps

COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOP = f"clothing-co-parsing-{COMMIT}"
ETAG = '"test-archive-v1"'


# --- the archive -----------------------------------------------------------------------------------------------
def make_tree(root: Path) -> Path:
    """A CCP-shaped folder: 3 annotated photos, 1 photo with image-level tags only, the files the reader skips."""
    rng = np.random.default_rng(0)
    items = {f"000{k}": (rng.choice(np.array([0, 1, 4, 5], np.uint8), size=(6, 4)), (6, 4)) for k in (1, 2, 3)}
    write_ccp(root, items=items)
    (root / "annotations" / "image-level").mkdir()
    (root / "annotations" / "image-level" / "0004.mat").write_bytes(b"tags")
    (root / "photos" / "0004.jpg").write_bytes((root / "photos" / "0001.jpg").read_bytes())
    (root / "README.md").write_text("CCP test copy\n")
    return root


def expected_digest(root: Path) -> tuple[str, int]:
    """The pinned format written out again independently: sorted ``"<path> <sha256>"`` lines of the reader's
    files (photos/*.jpg, annotations/pixel-level/*.mat, label_list.mat), hashed."""
    files = [*root.glob("photos/*.jpg"), *root.glob("annotations/pixel-level/*.mat"), root / "label_list.mat"]
    lines = sorted(f"{p.relative_to(root).as_posix()} {hashlib.sha256(p.read_bytes()).hexdigest()}\n" for p in files)
    return hashlib.sha256("".join(lines).encode()).hexdigest(), len(lines)


def zip_tree(root: Path, top: str = TOP) -> bytes:
    """GitHub's layout: a directory entry for the top folder and each subfolder, the files below it."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/", b"")
        for path in sorted(root.rglob("*")):
            name = f"{top}/{path.relative_to(root).as_posix()}"
            if path.is_dir():
                zf.writestr(name + "/", b"")
            else:
                zf.writestr(name, path.read_bytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> tuple[bytes, str, int]:
    tree = make_tree(tmp_path_factory.mktemp("tree") / "ccp")
    return (zip_tree(tree), *expected_digest(tree))


# --- the server --------------------------------------------------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.payload`` at ``/archive.zip``. ``server.mode``: ``"ok"`` (Range honoured, ``If-Range``
    checked against the ETag), ``"ignore-range"`` (always 200), ``"break"`` (send half, then drop the connection;
    once, then ``"ok"``). Every request's Range/If-Range and the bytes sent are recorded."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        rng, if_range = self.headers.get("Range"), self.headers.get("If-Range")
        server.seen.append({"range": rng, "if_range": if_range, "sent": 0})
        if self.path != "/archive.zip":
            self.send_error(404, "Not Found")
            return
        payload, start = server.payload, 0
        match = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if match and server.mode != "ignore-range" and if_range in (None, ETAG):
            start = int(match.group(1))
        if start >= len(payload) > 0:
            self.send_error(416, "Range Not Satisfiable")
            return
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
        self.send_header("Content-Length", str(len(payload) - start))
        self.send_header("ETag", ETAG)
        self.end_headers()
        body = payload[start:]
        if server.mode == "break":
            server.mode = "ok"
            body = body[: len(body) // 2]
            self.close_connection = True
        self.wfile.write(body)
        server.seen[-1]["sent"] = len(body)


@pytest.fixture
def server(archive):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.payload, httpd.mode, httpd.seen = archive[0], "ok", []
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/archive.zip"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def fetch_ccp(dest: Path, server, archive, **kw) -> download.Downloaded:
    _, digest, n_files = archive
    return download.download_ccp(dest, url=kw.pop("url", server.url), digest=kw.pop("digest", digest),
                                 n_files=n_files, progress=False, timeout=10, **kw)


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


# --- tests -------------------------------------------------------------------------------------------------------
def test_pinned_constants_agree():
    assert re.fullmatch(r"[0-9a-f]{40}", download.CCP_COMMIT)
    assert download.CCP_URL == f"https://codeload.github.com/bearpaw/clothing-co-parsing/zip/{download.CCP_COMMIT}"
    assert re.fullmatch(r"[0-9a-f]{64}", download.CCP_DIGEST)
    assert download.CCP_FILES == 2098 + 1004 + 1


def test_download_unpacks_the_reader_layout_once(tmp_path, server, archive):
    dest = tmp_path / "data" / "ccp"
    done = fetch_ccp(dest, server, archive)
    assert done == download.Downloaded(dest, archive[2], archive[1], fetched=True)
    assert (dest / "label_list.mat").is_file() and (dest / "README.md").is_file()
    assert sorted(p.name for p in (dest / "photos").iterdir()) == ["0001.jpg", "0002.jpg", "0003.jpg", "0004.jpg"]
    assert not (dest / TOP).exists()
    assert download.content_digest(dest) == archive[1:]
    ccp = CCP(dest)
    assert ccp.image_ids == ["0001.jpg", "0002.jpg", "0003.jpg"] and ccp[0].image.shape == (6, 4, 3)
    assert json.loads((dest / download.MARKER).read_text())["digest"] == archive[1]
    assert leftovers(dest.parent) == []  # no archive, no .part, no half-unpacked folder

    probe = tmp_path / "probe"
    probe.mkdir()
    assert dest.stat().st_mode & 0o777 == probe.stat().st_mode & 0o777  # the umask's mode, not a temp dir's 0700

    again = fetch_ccp(dest, server, archive)
    assert again.fetched is False and len(server.seen) == 1  # complete: the server is not asked again
    stamps = input_stamps(dest)
    forced = fetch_ccp(dest, server, archive, force=True)
    assert forced.fetched is True and len(server.seen) == 2 and CCP(dest).image_ids == ccp.image_ids
    assert input_stamps(dest) == stamps  # the archive's dates: a store built from the folder stays valid


def test_broken_transfer_resumes_with_the_missing_bytes(tmp_path, server, archive):
    dest = tmp_path / "ccp"
    server.mode = "break"
    with pytest.raises(download.DownloadError, match=r"broke off after \d+ bytes.*run the same command again"):
        fetch_ccp(dest, server, archive)
    half = server.seen[0]["sent"]
    part = tmp_path / f".ccp-{archive[1][:16]}.zip.part"
    assert 0 < half < len(archive[0]) and part.stat().st_size == half and not dest.exists()

    done = fetch_ccp(dest, server, archive)
    assert done.fetched and download.content_digest(dest) == archive[1:]
    second = server.seen[1]
    assert second["range"] == f"bytes={half}-" and second["if_range"] == ETAG
    assert second["sent"] == len(archive[0]) - half
    assert leftovers(tmp_path) == []


def test_server_ignoring_range_restarts_cleanly(tmp_path, server, archive):
    dest = tmp_path / "ccp"
    server.mode = "break"
    with pytest.raises(download.DownloadError):
        fetch_ccp(dest, server, archive)
    server.mode = "ignore-range"
    done = fetch_ccp(dest, server, archive)
    assert server.seen[1]["range"] is not None and server.seen[1]["sent"] == len(archive[0])  # a 200: all of it
    assert done.fetched and download.content_digest(dest) == archive[1:]


def test_a_part_longer_than_the_file_starts_again(tmp_path, server, archive):
    dest = tmp_path / "ccp"
    (tmp_path / f".ccp-{archive[1][:16]}.zip.part").write_bytes(b"x" * (len(archive[0]) + 5))
    fetch_ccp(dest, server, archive)  # 416 → the part is dropped and fetched whole
    assert [s["range"] for s in server.seen] == [f"bytes={len(archive[0]) + 5}-", None]
    assert download.content_digest(dest) == archive[1:]


def test_checksum_mismatch_installs_nothing(tmp_path, server, archive):
    dest = tmp_path / "ccp"
    wrong = "0" * 64
    with pytest.raises(download.ChecksumError) as err:
        fetch_ccp(dest, server, archive, digest=wrong)
    message = str(err.value)
    assert f"expected sha256 {wrong} over {archive[2]} files, got {archive[1]} over {archive[2]} files" in message
    assert str(dest) in message and server.url in message and "\n" not in message
    assert not dest.exists() and leftovers(tmp_path) == []  # nothing half-unpacked, the archive dropped

    fetch_ccp(dest, server, archive)  # the right digest: fetched anew and installed
    assert len(server.seen) == 2 and download.content_digest(dest) == archive[1:]


def test_damaged_archive_is_dropped(tmp_path, server, archive):
    server.payload = archive[0][: len(archive[0]) // 2] + b"\0" * 100
    with pytest.raises(download.DownloadError, match="is not a whole zip archive"):
        fetch_ccp(tmp_path / "ccp", server, archive)
    assert leftovers(tmp_path) == [] and not (tmp_path / "ccp").exists()


def test_member_escaping_the_folder_is_refused(tmp_path, server, archive):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{TOP}/../../evil.txt", b"x")
    server.payload = buf.getvalue()
    with pytest.raises(download.DownloadError, match="points outside the target folder"):
        fetch_ccp(tmp_path / "a" / "ccp", server, archive)
    assert not list(tmp_path.rglob("evil.txt"))


def test_offline_and_http_errors_name_the_url(tmp_path, server, archive):
    free = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = free.server_address[1]
    free.server_close()  # nothing listens there now: connection refused
    url = f"http://127.0.0.1:{port}/archive.zip"
    with pytest.raises(download.DownloadError) as err:
        fetch_ccp(tmp_path / "ccp", server, archive, url=url)
    message = str(err.value)
    assert message.startswith(f"cannot download {url}: ") and "refused" in message.lower()
    assert "by hand" in message and "data.root" in message and "$CLOTHPARSE_CCP_ROOT" in message
    assert "\n" not in message

    with pytest.raises(download.DownloadError, match=r"cannot download .*/missing.zip: HTTP 404 Not Found\. "):
        fetch_ccp(tmp_path / "ccp", server, archive, url=server.url.replace("archive", "missing"))
    assert not (tmp_path / "ccp").exists()


def test_a_foreign_folder_is_never_replaced(tmp_path, server, archive):
    dest = tmp_path / "ccp"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep")
    with pytest.raises(download.DownloadError, match="did not download; remove it or choose another --dest"):
        fetch_ccp(dest, server, archive, force=True)
    assert (dest / "mine.txt").read_text() == "keep" and server.seen == []


def test_default_dest_is_data_ccp_in_the_checkout():
    assert download.default_dest() == Path(__file__).resolve().parents[1] / "data" / "ccp"


# --- the command line ----------------------------------------------------------------------------------------------
@pytest.fixture
def cli_download(monkeypatch, server, archive):
    """``cli.main`` downloading from the test server with the test digest (the pinned ones are the defaults)."""
    monkeypatch.delenv(download.CCP_ROOT_ENV, raising=False)
    monkeypatch.setattr(download, "download_ccp", functools.partial(
        download.download_ccp, url=server.url, digest=archive[1], n_files=archive[2], progress=False, timeout=10))


def test_cli_downloads_and_says_how_to_use_it(tmp_path, capsys, cli_download, server, archive):
    dest = tmp_path / "my ccp"
    assert cli.main(["data", "--download", "ccp", "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert f"ccp: {archive[2]} files downloaded and verified in {dest}" in out
    assert f"export CLOTHPARSE_CCP_ROOT='{dest}'" in out and f"--set data.root='{dest}'" in out
    assert cli.main(["data", "--download", "ccp", "--dest", str(dest)]) == 0
    assert "already downloaded and verified" in capsys.readouterr().out and len(server.seen) == 1


def test_cli_says_when_the_ccp_profile_reads_the_folder(tmp_path, capsys, cli_download, monkeypatch):
    dest = tmp_path / "ccp"
    monkeypatch.setenv(download.CCP_ROOT_ENV, str(dest))
    assert cli.main(["data", "--download", "ccp", "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "the ccp profile reads this folder: clothparse data --profile ccp" in out and "export" not in out


def test_cli_errors_are_one_line(tmp_path, capsys, cli_download, server):
    server.payload = b"not a zip"
    assert cli.main(["data", "--download", "ccp", "--dest", str(tmp_path / "ccp")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("clothparse data: error: ") and "is not a whole zip archive" in err
    assert err.count("\n") == 1 and "Traceback" not in err

    assert cli.main(["data", "--dest", str(tmp_path)]) == 2
    assert "--dest and --force go with --download" in capsys.readouterr().err
    assert cli.main(["data", "--download", "ccp", "--set", "x=1"]) == 2
    assert "not --set" in capsys.readouterr().err


# --- a profile's copy, fetched where missing (``clothparse book --profile ccp`` from a fresh clone) ------------------
@pytest.fixture
def book_without_steps(monkeypatch):
    """``clothparse book`` that plans no notebook and writes no summary: what runs is the data check before them."""
    from clothparse.book import build

    monkeypatch.setattr(build, "plan", lambda profile: [])
    monkeypatch.setattr(build, "write_summary", lambda *a: None)
    monkeypatch.setattr(build.runs, "write_json", lambda *a: None)


def test_the_ccp_book_downloads_a_missing_copy_into_the_profiles_folder_and_says_so(
        tmp_path, capsys, monkeypatch, cli_download, server, archive, book_without_steps):
    root = tmp_path / "fresh clone" / "ccp"
    monkeypatch.setenv(download.CCP_ROOT_ENV, str(root))
    assert cli.main(["book", "--profile", "ccp", "--no-build"]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "CCP" in line]
    assert said == [f"ccp: no CCP copy in {root}; downloading Clothing Co-Parsing (bearpaw/clothing-co-parsing at "
                    f"{download.CCP_COMMIT[:7]}, {download.CCP_FILES} files, about {download.CCP_APPROX_MB} MB) into "
                    f"it ($CLOTHPARSE_CCP_ROOT names another folder)"]
    assert download.has_ccp(root) and len(CCP(root)) == 3 and len(server.seen) == 1
    # found the next time: nothing fetched, nothing said
    assert cli.main(["book", "--profile", "ccp", "--no-build"]) == 0
    assert "CCP" not in capsys.readouterr().out and len(server.seen) == 1


def test_a_copy_that_is_there_is_used_as_it_is_and_other_data_is_not_looked_for(tmp_path, monkeypatch):
    from clothparse.profiles import load_profile

    def no_download(*a, **kw):
        raise AssertionError("downloaded")
    monkeypatch.setattr(download, "download_ccp", no_download)
    root = make_tree(tmp_path / "someone's copy")  # no marker of ours: any copy with the layout will do
    monkeypatch.setenv(download.CCP_ROOT_ENV, str(root))
    said = []
    assert download.ensure_ccp(load_profile("ccp"), log=said.append) == root and said == []
    assert download.ensure_ccp(load_profile("smoke"), log=said.append) is None and said == []


def test_offline_the_ccp_book_says_which_variable_and_command_bring_a_copy(tmp_path, capsys, monkeypatch,
                                                                           book_without_steps):
    def offline(dest, **kw):
        raise download.DownloadError(download._by_hand(download.CCP_URL, "[Errno -3] Temporary failure in name "
                                                                         "resolution"))
    monkeypatch.setattr(download, "download_ccp", offline)
    root = tmp_path / "ccp"
    monkeypatch.setenv(download.CCP_ROOT_ENV, str(root))
    assert cli.main(["book", "--profile", "ccp", "--no-build"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"clothparse book: error: profile 'ccp' reads CCP from {root}, which holds no copy, and it "
                          "could not be downloaded: cannot download ")
    assert "Set $CLOTHPARSE_CCP_ROOT to a folder holding photos/" in err
    assert "clothparse data --download ccp --dest DIR" in err and err.count("\n") == 1
    assert not root.exists()
