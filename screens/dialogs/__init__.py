"""Screens pushed over a stage: confirmations, the per-user settings (F7), the recommender (F5),
the read-back (F3), help (F1) and the resume prompt."""
