"""The ``clusterlens`` command line: one module per command group."""
