"""Where the numbers come from: which runs of a profile exist, from which commit, on which device, how long
they trained (:func:`provenance_table`); and the paper's own consistency — its Table 2 recomputed from its
Table 3 (:func:`consistency_table`; the reconstruction itself is :mod:`clothparse.evaluation.paper`).
"""
from __future__ import annotations

import pandas as pd

from clothparse.evaluation.paper import table2_from_table3
from clothparse.report.common import MISSING, _json_or_empty, _no_nan, _profile, grouped
from clothparse.runs import RunDir, find_runs

PROVENANCE_COLUMNS = ("model", "variant", "run id", "current parameters", "commit", "device", "seed", "epochs",
                      "train time (s)", "resumed", "finished", "evaluated (test)")
#: Shown as two tables (a commit hash and a timestamp per row do not fit beside the rest): the run, then its origin.
PROVENANCE_GROUPS = (("The run", ("model", "variant", "current parameters", "seed", "epochs", "train time (s)",
                                  "resumed", "evaluated (test)")),
                     ("Its folder, and where and when it was trained", ("model", "variant", "run id", "commit",
                                                                        "device", "finished")))


def provenance_table(profile) -> pd.DataFrame:
    """Per complete run of the profile: model, variant, run id, commit, device, seed, epochs, training time."""
    df = find_runs(_profile(profile))
    rows = []
    for r in df[df["complete"]].itertuples():
        run = RunDir(r.run_dir)
        prov = _json_or_empty(run.provenance_path)
        h = pd.read_csv(run.history_path) if run.history_path.is_file() else pd.DataFrame()
        values = (r.model, r.variant, r.run_id, "yes" if r.matches_profile else "no",
                  _short_commit(prov.get("git_commit")),
                  prov.get("device_description") or prov.get("device") or MISSING,
                  prov.get("seed", MISSING), int(len(h)),
                  float(h["seconds"].sum()) if "seconds" in h else MISSING, len(prov.get("resumes", [])),
                  r.finished or MISSING, "yes" if r.evaluated else "no")
        rows.append(dict(zip(PROVENANCE_COLUMNS, values)))
    return grouped(_no_nan(pd.DataFrame(rows, columns=list(PROVENANCE_COLUMNS))), PROVENANCE_GROUPS)


def _short_commit(commit: str | None) -> str:
    """A commit as ``git log --oneline`` shows it (12 hex digits, ``-dirty`` kept); the run's
    ``provenance.json`` keeps the full hash. 40 digits do not wrap and made the table wider than the page."""
    if not commit:
        return MISSING
    sha, dirty, _ = commit.partition("-dirty")
    return sha[:12] + (dirty and "-dirty")


def consistency_table() -> pd.DataFrame:
    """Table 2's IoUs of "Our model" beside the same IoUs recomputed from the paper's Table 3: shows the
    paper's "IoU excl. bg"/"IoU overall" are pooled IoUs (see
    :func:`clothparse.evaluation.paper.table2_from_table3`)."""
    return _no_nan(table2_from_table3())
