"""Named evaluation profiles that suite manifests point at (``"evaluation": "<name>"``); data only."""
