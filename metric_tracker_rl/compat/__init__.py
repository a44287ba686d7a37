"""What this package reads of its dependencies beyond their documented API, one module per dependency, each
checked against the installed version by a contract test. It sits below every other layer: it imports nothing of
the package, so the client, the server and the adapters all read the same internals the same way."""
