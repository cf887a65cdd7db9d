"""Checks that run other projects' test suites against this package."""
