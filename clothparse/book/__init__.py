"""The book: its plan of papermill executions and the whole build (build), one execution cached by its inputs
(steps), and executions side by side (parallel)."""
