"""The retrieval commands of the ``maxsim`` command line.

``maxsim index build``, ``maxsim index info``, ``maxsim search`` and ``maxsim
eval``: one module per command, plus the pieces they share (the corpus
readers, the on-disk retrieval index, the encoders, the metrics). Nothing
here is imported by ``import maxsim``; the command line imports it when one of
these commands runs, and each module imports its heavy dependencies (the
encoders' frameworks, ir-measures, matplotlib) only where it needs them.
"""
