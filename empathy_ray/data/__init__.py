"""Empathy-QA posts and preference pairs: records, validation, JSONL/Parquet IO, PsyQA import, splits.

Modules are imported directly (`empathy_ray.data.io`, ...) so that importing this package stays cheap.
"""
