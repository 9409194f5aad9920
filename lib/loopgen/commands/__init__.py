"""Every command line of ``python -m loopgen``: one module per command, each a parser and a ``main(argv)``
that calls the library, and :mod:`~loopgen.commands.common` (one-line errors, exit codes, argument checks).
``loopgen.__main__`` is the one dispatcher.

Commands may import anything; nothing in the library imports them.
"""
