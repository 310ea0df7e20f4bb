"""The reference rows of a leaderboard (SPEC §2.3): shown for reading, never ranked."""

from __future__ import annotations

REFERENCE_METHODS: tuple[str, ...] = ("base", "real")
"""SPEC §2.3 reference rows: listed after the customization methods and marked as references."""

REFERENCE_NOTE = "reference: not ranked"
"""What a reference row's cells say where methods are ranked (the base model changes nothing)."""
