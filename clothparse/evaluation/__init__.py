"""Evaluation: confusion matrices and IoUs (evaluate, metrics), bootstrap intervals, the paper's numbers and claims."""
