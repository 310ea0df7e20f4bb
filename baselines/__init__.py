"""Customization methods behind one interface (see SPEC §4)."""
