"""What the package reads of a dependency beyond its documented API: `openenv` holds every such use of OpenEnv,
checked against the installed release by `tests/test_openenv_contract.py`. It is the bottom layer: it imports
nothing of the package, so the client and the server read OpenEnv's internals through the same functions."""
