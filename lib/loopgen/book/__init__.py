"""What the notebooks call, one backing module per notebook or chapter: ``extraction`` (01), ``evaluation``
(02-08: open a run, load its models, Tables 1-4, the cached sample groups), ``sensitivity`` (08),
``prior_comparison`` (09), and what several share: ``tables`` (ours beside the paper's), ``plots``, ``audio``,
``listening`` (the study kit and Figure 6), ``teaching`` (mechanism cells), ``exercises`` (the checker),
``baselines`` (trivial baselines beside every model, computed from the run), ``expectations`` ("What you should
see": verdicts that can fail, ``expected_ranges.json``) and ``second_opinion`` (05, 09: the loops of Tables 3 and 7
measured by MusPy, the field's library, and checked against our own metrics).

May import everything below it (the method, data, models, train, store, runtime, run.profiles); nothing imports
the book except commands, the musicians' tools (audio, plots) and the runner.
"""
