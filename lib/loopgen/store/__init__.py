"""Where results live on disk: atomic writes and folder locks, the one content digest, every path, the
generated sample groups and the table of outputs.

``atomic`` (write-then-rename, ``exclusive_lock``, ``check_output_folder``), ``digest`` (the one content hash every
store keys by), ``paths`` (every folder and file the project reads or writes), ``sample_groups`` (generated loops
with their provenance), ``outputs`` (each table and figure, its paper item and notebook). May import
:mod:`loopgen.errors`, :mod:`loopgen.registry` and, for ``sample_groups`` only, :mod:`loopgen.data`; never
models, training or the notebooks' code.
"""
