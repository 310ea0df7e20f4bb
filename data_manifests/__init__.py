"""Suite manifests (data only): concepts, reference files with checksums, prompts, seeds."""
