"""The domain layer: Chain-of-Empathy format, crisis-safety rules, rollout records, atomic files.

Everything above imports from here; nothing here imports from the rest of the package (but config).
"""
