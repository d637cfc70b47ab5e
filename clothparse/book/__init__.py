"""The book: its plan of papermill executions, cached by their inputs (build), and their side-by-side execution
(parallel)."""
