"""The regression gate's evidence: how far rows move on other machines (``variation``) and proof that the
gate still fails on real changes (``mutations``)."""
