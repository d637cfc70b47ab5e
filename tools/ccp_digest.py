"""Compute the pinned content digest of CCP (``CCP_FILES``, ``CCP_DIGEST`` in ``clothparse/download.py``).

Usage: ``python tools/ccp_digest.py GIT_DIR COMMIT`` with a clone or bare mirror of
``bearpaw/clothing-co-parsing``. It unpacks the commit's tree with ``git archive`` (the same tree GitHub zips
for ``codeload.github.com/bearpaw/clothing-co-parsing/zip/<commit>``) into a temporary folder and runs
:func:`clothparse.datasets.download.content_digest` on it, so the pinned value and the check after a download are the
same computation. Prints the constants to paste.
"""
from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clothparse.datasets.download import content_digest  # noqa: E402


def digest_of_commit(git_dir: str, commit: str) -> tuple[str, str, int]:
    """``(full commit hash, digest, number of files)`` of ``commit`` in ``git_dir``."""
    full = subprocess.run(["git", "-C", git_dir, "rev-parse", f"{commit}^{{commit}}"], check=True,
                          capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tar_path = Path(tmp) / "tree.tar"
        subprocess.run(["git", "-C", git_dir, "archive", "--format=tar", f"--output={tar_path}", full], check=True)
        with tarfile.open(tar_path) as tar:
            tar.extractall(Path(tmp) / "tree", filter="data")
        digest, n_files = content_digest(Path(tmp) / "tree")
    return full, digest, n_files


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    full, digest, n_files = digest_of_commit(*argv)
    print(f'CCP_COMMIT = "{full}"\nCCP_FILES = {n_files}\nCCP_DIGEST = "{digest}"')
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
