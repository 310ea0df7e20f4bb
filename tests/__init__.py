"""Test package (lets outside-method tests import helpers as ``tests.<module>``)."""
