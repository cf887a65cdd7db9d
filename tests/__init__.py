"""The test suite, a package so that tests import their helpers as ``tests.helpers.*``
(see the test layout in docs/development.md)."""
