"""What the tests share: the stores they run on, the harness, graphs, local servers and
workers. Test modules import from here, never from each other or from a conftest."""
