"""``python -m langgraph_persist_kit``: the ``persist-kit`` command line.

Owns: nothing but the entry point.
"""

from langgraph_persist_kit.cli import main

if __name__ == "__main__":
    main()
