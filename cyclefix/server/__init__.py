"""`cyclefix serve`: a language server that runs the tests on save and offers verified fixes.

Imports pygls only when the server is built (see `handlers.create_server`).
"""
