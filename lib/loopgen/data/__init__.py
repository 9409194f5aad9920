"""MIDI files -> note tables -> loops on disk: ``midi`` (two readers, one note table, one loop-to-MIDI
writer), ``extract`` (a folder -> loop shards, every file accounted for), ``dataset`` (shards <-> arrays),
``validate`` (the one check for loop arrays and code sequences) and ``corpus`` (the procedural demo songwriter,
the LMD-full download).

May import :mod:`loopgen.loops`, :mod:`loopgen.errors`, :mod:`loopgen.store` and the package's constants;
never models, training or the notebooks' code.
"""
