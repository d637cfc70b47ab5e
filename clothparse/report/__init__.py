"""The paper's tables and figures as functions of run folders and of the paper's numbers.

Every function returns a :class:`pandas.DataFrame` or a matplotlib ``Figure`` and prints nothing; the
notebooks call them as ``report.<name>`` and display the result. Where each one lives:

============================  ==========================================================================
:mod:`.tables`                Table 1 (base vs refined data), Table 2 (every model), Table 4 (ClassBranch),
                              Table 5 (ground-truth injection); :func:`selected_runs`; the numbers other
                              parsers report (:func:`peer_metrics`)
:mod:`.confusion_matrices`    Table 3: confusion matrices, their diagonals, the top confusions, heatmaps
:mod:`.architecture`          Figure 1 (:func:`architecture_figure`), :func:`trace_model`, the model table
:mod:`.data`                  the data pages: overview, split, class distribution, merge, refinement, examples
:mod:`.history`               training curves, ``history.csv``, one run at a glance
:mod:`.predictions`           Figure 5 ("no dress" prior) and Figure 6 (images sorted by loss)
:mod:`.provenance`            which runs, from which commit and device; the paper's own consistency
:mod:`.evidence`              IoUs with 95 % intervals over test images and seeds, the claims table (and
                              across builds) and its forest plot, the headline numbers of the prose
:mod:`.gap`                   Our model and the ablations minus the plain U-Net per epoch, the weighted
                              loss terms' shares, the evidence page's paragraph
:mod:`.common`                :data:`MISSING`, :data:`SOURCES`, :data:`IOU_COLUMNS`, :func:`rounded`, names
============================  ==========================================================================

Comparison tables put *ours*, the *paper*'s number and, on the paper's data only, their difference on
separate rows of one table (a row index ``(…, source)``); a row exists only where there is a number to show,
and a missing value is the string ``"—"``, never ``NaN`` (:data:`MISSING`). Values are not rounded here —
:func:`rounded` does that for display. Run folders are found with :func:`clothparse.runs.find_runs` /
:func:`select_run` and read through :class:`clothparse.runs.RunDir`; a ``run_dir`` argument is a path or a ``RunDir``.
"""
from __future__ import annotations

from clothparse.categories import overlay
from clothparse.report.architecture import architecture_figure, architecture_table, trace_model

# DIFF, MIOU, OURS, PAPER, TABLE3_LABELS: not in __all__, but kept importable for code that picks rows by name
from clothparse.report.common import DIFF as DIFF
from clothparse.report.common import (
    IOU_COLUMNS,
    MISSING,
    SEED_SD,
    SOURCES,
    GroupedTable,
    eval_metrics,
    grouped,
    main_variant,
    model_label,
    rounded,
    run_store,
)
from clothparse.report.common import MIOU as MIOU
from clothparse.report.common import OURS as OURS
from clothparse.report.common import PAPER as PAPER
from clothparse.report.common import TABLE3_LABELS as TABLE3_LABELS
from clothparse.report.confusion_matrices import (
    confusion,
    figure_confusion,
    figure_paper_confusion,
    paper_table3,
    table3,
    table3_diagonal,
    table3_top_confusions,
)
from clothparse.report.data import (
    class_distribution,
    data_overview,
    figure_class_distribution,
    figure_examples,
    merge_table,
    refine_stages,
    split_table,
)
from clothparse.report.evidence import (
    absent_builds,
    claims_across,
    claims_by_profile,
    claims_display,
    figure_claims,
    figure_class_intervals,
    headline,
    headline_sentence,
    intervals_table,
    model_intervals,
)
from clothparse.report.history import figure_history, history_table, run_overview
from clothparse.report.predictions import figure_loss_sorted, figure_no_dress, loss_sorted_selection
from clothparse.report.provenance import consistency_table, provenance_table
from clothparse.report.tables import (
    MEAN_CONVENTION,
    compares_with_paper,
    has_classbranch,
    paper_comparison_note,
    peer_metrics,
    selected_runs,
    table1,
    table2,
    table2_run,
    table4,
    table4_averages,
    table5,
)
from clothparse.runs import find_runs, select_run, select_runs

__all__ = [
    "MISSING", "SOURCES", "SEED_SD", "IOU_COLUMNS", "rounded", "main_variant", "model_label", "find_runs",
    "select_run", "select_runs", "selected_runs", "run_store", "eval_metrics", "table2", "table2_run", "table1",
    "table3", "paper_table3",
    "table3_diagonal", "table3_top_confusions", "confusion", "figure_confusion", "figure_paper_confusion",
    "has_classbranch", "table4", "table4_averages", "table5", "figure_no_dress", "figure_loss_sorted",
    "loss_sorted_selection", "figure_history", "history_table", "run_overview", "consistency_table",
    "architecture_figure", "architecture_table", "trace_model", "data_overview", "split_table",
    "class_distribution", "figure_class_distribution", "merge_table", "refine_stages", "figure_examples",
    "provenance_table", "overlay", "model_intervals", "intervals_table", "figure_class_intervals",
    "claims_display", "figure_claims", "headline", "headline_sentence", "GroupedTable", "grouped",
    "peer_metrics", "MEAN_CONVENTION", "compares_with_paper", "paper_comparison_note",
    "claims_by_profile", "claims_across", "absent_builds",
]
