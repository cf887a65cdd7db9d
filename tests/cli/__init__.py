"""The ``persist-kit`` command line on real stores."""
