"""Tests on real stores: every backend x {sync, async} through the harness, and each
backend's own behaviour."""
