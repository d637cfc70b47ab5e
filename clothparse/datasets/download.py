"""Fetch the Clothing Co-Parsing (CCP) dataset from its GitHub repository, pinned and verified.

``clothparse data --download ccp`` calls :func:`download_ccp`: it downloads GitHub's zip of one pinned commit
of ``bearpaw/clothing-co-parsing`` with a progress bar, resumes a broken transfer (an HTTP ``Range`` request
on the ``.part`` file; a server that answers 200 instead of 206 is read from the start again), unpacks it with
GitHub's top folder ``clothing-co-parsing-<commit>/`` stripped, so the target holds the layout
:mod:`clothparse.datasets.ccp` reads (``photos/``, ``annotations/pixel-level/``, ``label_list.mat``), and checks
the unpacked files against a pinned digest before the folder appears under its name.

Why a digest of the *content* and not of the zip: GitHub builds its archives on demand and does not promise
the same bytes twice, while the files of a commit never change. :func:`content_digest` is the SHA-256 of the
sorted lines ``"<relative path> <sha256 of the file>"`` of exactly the files the reader needs.

Why the steps are ordered as they are: the archive is written as ``<name>.zip.part`` and renamed when whole,
then unpacked into a hidden sibling folder that is renamed to the target only after the digest matched, with a
marker file inside that records what was installed. So an interrupted or rejected download never leaves a
folder that looks complete, and a completed one is not fetched again (``force=True`` does).

Only the standard library (urllib) and tqdm: the download has to work where nothing else is installed yet.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from clothparse import __version__
from clothparse.keyed import sha256_file
from clothparse.profiles import PARAMS_DIR, REPO_ROOT, under_repo

__all__ = ["CCP_COMMIT", "CCP_DIGEST", "CCP_FILES", "CCP_URL", "ChecksumError", "DownloadError", "Downloaded",
           "content_digest", "default_dest", "download_ccp", "ensure_ccp", "has_ccp"]

# The pinned source. CCP_COMMIT is the head of the repository's default branch (master, "Update README.md",
# 2019-05-21). CCP_FILES and CCP_DIGEST are content_digest() of that commit's tree, computed from a local
# mirror by tools/ccp_digest.py (`git archive <commit>` into a temporary folder, then content_digest on it):
#     python tools/ccp_digest.py /path/to/clothing-co-parsing.git fe34fb77721a9973fbae92c05f7f12b664d10110
# 2098 photos/*.jpg + 1004 annotations/pixel-level/*.mat + label_list.mat = 3103 files. Cross-checked without
# clothparse: `git ls-tree -r` + `git cat-file blob | sha256sum` per file, `LC_ALL=C sort`, `sha256sum`.
CCP_REPO = "bearpaw/clothing-co-parsing"
CCP_COMMIT = "fe34fb77721a9973fbae92c05f7f12b664d10110"
CCP_URL = f"https://codeload.github.com/{CCP_REPO}/zip/{CCP_COMMIT}"
CCP_FILES = 3103
CCP_DIGEST = "cdd7ccb38587abd6287837399dcc780af23c1adbd3eac08c8f2a94c1bfc79647"
#: The variable the ``ccp`` profile reads its folder from (``params/ccp.yaml``, ``data.root_env``).
CCP_ROOT_ENV = "CLOTHPARSE_CCP_ROOT"
#: What the download costs, said before it starts: 2098 photos at ~60 kB (the mean over 804 of them) and 1004
#: annotations at ~8 kB, so about 135 MB to fetch and to keep.
CCP_APPROX_MB = 135

#: Written into a completed folder: what was installed there (url, digest, file count).
MARKER = ".clothparse-download.json"
_CHUNK = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class DownloadError(RuntimeError):
    """A download that cannot go on; its message (one line) says what to do."""


class ChecksumError(DownloadError):
    """The unpacked files are not the pinned ones; nothing was installed."""


@dataclass(frozen=True)
class Downloaded:
    """A verified dataset folder; ``fetched`` is False when it was already complete and nothing was done."""

    dest: Path
    n_files: int
    digest: str
    fetched: bool


# --- what the reader needs, and its digest -------------------------------------------------------------------
def _needed(rel: PurePosixPath) -> bool:
    """The files :class:`clothparse.datasets.ccp.CCP` reads (CCP's image-level tags and demo code are not)."""
    parts = rel.parts
    return (parts == ("label_list.mat",)
            or (len(parts) == 2 and parts[0] == "photos" and rel.suffix == ".jpg")
            or (len(parts) == 3 and parts[:2] == ("annotations", "pixel-level") and rel.suffix == ".mat"))


def content_digest(root: str | os.PathLike) -> tuple[str, int]:
    """``(sha256, number of files)`` over the reader's files under ``root``: the SHA-256 of the sorted lines
    ``"<relative posix path> <sha256 of the file>\\n"`` — independent of how the files were packed or dated."""
    root = Path(root)
    lines = []
    for path in root.rglob("*"):
        rel = PurePosixPath(path.relative_to(root).as_posix())
        if _needed(rel) and path.is_file():
            lines.append(f"{rel} {sha256_file(path)}\n")
    lines.sort()
    return hashlib.sha256("".join(lines).encode()).hexdigest(), len(lines)


# --- the destination -----------------------------------------------------------------------------------------
def default_dest() -> Path:
    """``data/ccp`` in the checkout (ignored by git), or in the working directory when clothparse is installed
    without one: next to the code's profiles, where a relative ``data.root`` is looked up."""

    base = REPO_ROOT if PARAMS_DIR.is_dir() else Path.cwd()
    return base / "data" / "ccp"


def _marker(dest: Path) -> dict | None:
    try:
        return json.loads((dest / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _is_complete(dest: Path, digest: str) -> bool:
    """A folder this module installed with the same content digest (not re-hashed: that is what the marker is
    for; ``force`` redoes it)."""
    marker = _marker(dest)
    return isinstance(marker, dict) and marker.get("digest") == digest


def _check_dest(dest: Path) -> None:
    """Refuse, before downloading, a target that holds files this module did not put there: they are never
    replaced (an absent or empty folder, or a previous download of ours, is fine)."""
    if dest.exists() and not dest.is_dir():
        raise DownloadError(f"{dest} exists and is not a folder; choose another --dest")
    if dest.is_dir() and any(dest.iterdir()) and _marker(dest) is None:
        raise DownloadError(f"{dest} already holds files that clothparse did not download; remove it or choose "
                            "another --dest")


# --- HTTP, resumable -----------------------------------------------------------------------------------------
def _by_hand(url: str, why: str) -> str:
    return (f"cannot download {url}: {why}. Download it by hand, unzip it and point data.root "
            f"(--set data.root=DIR) or ${CCP_ROOT_ENV} at the folder holding photos/ and label_list.mat")


def _open(url: str, start: int, validator: str | None, timeout: float):
    """The response to a GET of ``url``, from byte ``start`` on when resuming (``If-Range``: the server sends
    everything again, status 200, if the file changed since the first part)."""
    headers = {"User-Agent": f"clothparse/{__version__}"}
    if start:
        headers["Range"] = f"bytes={start}-"
        if validator:
            headers["If-Range"] = validator
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def _resumed_at(response, start: int, url: str) -> int:
    """Where the body starts: ``start`` for a 206 that continues there, 0 when the server ignored the range."""
    if response.status != 206:
        return 0
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if not match or int(match.group(1)) != start:
        raise DownloadError(f"{url}: asked for bytes from {start}, the server sent "
                            f"{response.headers.get('Content-Range')!r}; run the command again with --force")
    return start


def _total(response, start: int) -> int | None:
    """The whole file's size when the server says it (GitHub's generated archives often do not)."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if match and match.group(3) != "*":
        return int(match.group(3))
    length = response.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


def _validator(response) -> str | None:
    """A strong ETag or Last-Modified: what ``If-Range`` may name."""
    etag = response.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return response.headers.get("Last-Modified")


def _copy(response: BinaryIO, part: Path, start: int, total: int | None, progress: bool) -> int:
    """Append the body to ``part`` (truncated first when ``start`` is 0) with a progress bar; bytes in ``part``."""
    from tqdm.auto import tqdm

    with open(part, "ab" if start else "wb") as out, \
            tqdm(total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024, desc=part.name,
                 disable=not progress or None) as bar:
        for block in iter(lambda: response.read(_CHUNK), b""):
            out.write(block)
            bar.update(len(block))
        out.flush()
        os.fsync(out.fileno())
        return out.tell()


def _fetch_once(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One GET into ``part``, resuming it when it has bytes; raises when the transfer is not whole."""
    start = part.stat().st_size if part.is_file() else 0
    saved = part.with_name(part.name + ".validator")
    validator = saved.read_text() if start and saved.is_file() else None
    with _open(url, start, validator, timeout) as response:
        start = _resumed_at(response, start, url)
        if not start:
            saved.write_text(_validator(response) or "")
        total = _total(response, start)
        size = _copy(response, part, start, total, progress)
    if total is not None and size != total:
        raise ConnectionError(f"the server closed the connection {total - size} bytes before the end")


def fetch(url: str, archive: Path, *, timeout: float = 60, progress: bool = True) -> None:
    """Download ``url`` to ``archive`` through ``archive.part``, resuming a part left by an earlier try; the
    archive appears only when whole. Every failure is a :class:`DownloadError` naming the URL."""
    part = archive.with_name(archive.name + ".part")
    try:
        try:
            _fetch_once(url, part, timeout, progress)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not part.is_file():
                raise
            part.unlink()  # the part is not a prefix of the file any more (or already all of it): start again
            _fetch_once(url, part, timeout, progress)
    except urllib.error.HTTPError as err:
        raise DownloadError(_by_hand(url, f"HTTP {err.code} {err.reason}")) from err
    except urllib.error.URLError as err:
        raise DownloadError(_by_hand(url, str(err.reason))) from err
    except (OSError, http.client.HTTPException) as err:
        got = part.stat().st_size if part.is_file() else 0
        raise DownloadError(f"download of {url} broke off after {got} bytes ({err or type(err).__name__}); run "
                            f"the same command again to resume it from {part}") from err
    os.replace(part, archive)
    part.with_name(part.name + ".validator").unlink(missing_ok=True)


# --- unpacking, verified -------------------------------------------------------------------------------------
def _keep_date(path: Path, member: zipfile.ZipInfo) -> None:
    """The file's date from the archive (GitHub's: the commit's), so a download redone with ``force`` leaves
    the reader's file stamps, and with them the cached store built from the folder, as they were."""
    stamp = time.mktime((*member.date_time, 0, 0, -1))
    os.utime(path, (stamp, stamp))


def _sibling(dest: Path, suffix: str) -> Path:
    """A new hidden folder beside ``dest`` (same file system, so renames are atomic), with the umask's mode."""
    folder = dest.parent / f".{dest.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}"
    folder.mkdir()
    return folder


def _inner_path(name: str, top: str | None) -> PurePosixPath | None:
    """A member's path below GitHub's top folder; None for the folder itself. Refuses paths that leave it."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise DownloadError(f"archive member {name!r} points outside the target folder; refused")
    parts = path.parts[1:] if top is not None else path.parts
    return PurePosixPath(*parts) if parts else None


def _top_folder(names: list[str]) -> str | None:
    """The one folder every member sits in (GitHub's ``clothing-co-parsing-<commit>/``), or None."""
    tops = {PurePosixPath(n).parts[0] for n in names if PurePosixPath(n).parts}
    if len(tops) == 1 and all("/" in n.rstrip("/") or n.endswith("/") for n in names):
        return tops.pop()
    return None


def extract(archive: Path, target: Path) -> None:
    """Unpack ``archive`` into ``target`` without its single top folder; a damaged archive (bad zip, CRC) is a
    :class:`DownloadError`."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            top = _top_folder([m.filename for m in members])
            for member in members:
                rel = _inner_path(member.filename, top)
                if rel is None:
                    continue
                out = target.joinpath(*rel.parts)
                if member.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
                _keep_date(out, member)
    except (zipfile.BadZipFile, EOFError) as err:
        raise DownloadError(f"{archive} is not a whole zip archive ({err})") from err


def _verify(folder: Path, dest: Path, url: str, digest: str, n_files: int | None) -> int:
    got, count = content_digest(folder)
    if got != digest or (n_files is not None and count != n_files):
        expected = f"{digest} over {n_files} files" if n_files is not None else digest
        raise ChecksumError(f"the files of {url} are not the pinned ones: expected sha256 {expected}, got {got} "
                            f"over {count} files; nothing was installed in {dest}")
    return count


def _move_into_place(folder: Path, dest: Path) -> None:
    """Rename the verified ``folder`` to ``dest``; an earlier download of ours there is replaced only after the
    new one is in place beside it."""
    old = None
    if dest.is_dir():
        if any(dest.iterdir()):
            old = _sibling(dest, ".old")
            os.replace(dest, old / dest.name)
        else:
            dest.rmdir()
    os.replace(folder, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_leftovers(dest: Path) -> None:
    """Hidden folders that a killed earlier call left beside ``dest`` (never mistaken for a dataset anyway)."""
    for suffix in (".partial", ".old"):
        for left in dest.parent.glob(f".{dest.name}.*{suffix}"):
            shutil.rmtree(left, ignore_errors=True)


def install(archive: Path, dest: Path, url: str, digest: str, n_files: int | None) -> int:
    """Unpack, verify and move into place: ``dest`` is either untouched or the verified content with its
    marker. Returns the number of verified files."""
    folder = _sibling(dest, ".partial")
    try:
        extract(archive, folder)
        count = _verify(folder, dest, url, digest, n_files)
        (folder / MARKER).write_text(json.dumps({"url": url, "digest": digest, "n_files": count}, indent=1) + "\n")
        _move_into_place(folder, dest)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return count


# --- the one entry point -------------------------------------------------------------------------------------
def download_ccp(dest: str | os.PathLike | None = None, *, url: str = CCP_URL, digest: str = CCP_DIGEST,
                 n_files: int | None = CCP_FILES, force: bool = False, progress: bool = True,
                 timeout: float = 60) -> Downloaded:
    """CCP in ``dest`` (default :func:`default_dest`), downloaded, unpacked and verified unless already there.

    ``url``, ``digest`` and ``n_files`` default to the pinned commit (tests pass their own). The archive is kept
    beside ``dest`` as ``.<name>-<digest>.zip`` only while it is needed: a broken transfer leaves its ``.part``
    for the next call to resume; a damaged or mismatching archive is removed, so the next call fetches it anew.
    """
    dest = Path(dest if dest is not None else default_dest()).expanduser().resolve()
    if not force and _is_complete(dest, digest):
        return Downloaded(dest, int(_marker(dest).get("n_files", 0)), digest, fetched=False)
    _check_dest(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    archive = dest.parent / f".{dest.name}-{digest[:16]}.zip"
    if force:
        for stale in (archive, archive.with_name(archive.name + ".part")):
            stale.unlink(missing_ok=True)
    if not archive.is_file():
        fetch(url, archive, timeout=timeout, progress=progress)
    _remove_leftovers(dest)
    try:
        count = install(archive, dest, url, digest, n_files)
    except DownloadError:
        archive.unlink(missing_ok=True)
        raise
    archive.unlink()
    return Downloaded(dest, count, digest, fetched=True)


# --- a profile's copy, fetched where missing -------------------------------------------------------------------
def has_ccp(root: str | os.PathLike) -> bool:
    """``root`` holds a CCP copy (its ``label_list.mat`` and ``photos/``), ours or anyone's."""
    root = Path(root)
    return (root / "label_list.mat").is_file() and (root / "photos").is_dir()


def ensure_ccp(profile, log=print) -> Path | None:
    """The CCP folder of a ``ccp``-data profile, downloaded into it (``data.root``, or the folder its
    ``data.root_env`` variable names) when it holds no copy, so ``clothparse book --profile ccp`` works from a
    fresh clone; one line says where and how much before the download starts. None for other data kinds, and
    where the profile names no folder (preparing the data says what to set). Offline, a :class:`DownloadError`
    names the variable and the command that fetches a copy by hand."""
    if profile.data.kind != "ccp" or not profile.data.root:
        return None
    root = under_repo(profile.data.root)
    if has_ccp(root):
        return root
    env = profile.data.root_env or CCP_ROOT_ENV
    log(f"{profile.name}: no CCP copy in {root}; downloading Clothing Co-Parsing ({CCP_REPO} at "
        f"{CCP_COMMIT[:7]}, {CCP_FILES} files, about {CCP_APPROX_MB} MB) into it (${env} names another folder)")
    try:
        return download_ccp(root).dest
    except DownloadError as err:
        raise DownloadError(f"profile {profile.name!r} reads CCP from {root}, which holds no copy, and it could not "
                            f"be downloaded: {err}. Set ${env} to a folder holding photos/, annotations/pixel-level/ "
                            f"and label_list.mat, or fetch one where there is a network: clothparse data --download "
                            f"ccp --dest DIR") from err
