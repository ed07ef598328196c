"""Adopting a course: the survey, `orchestrator init`, the layering check, the CI matrix."""
