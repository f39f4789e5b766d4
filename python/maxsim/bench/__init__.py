"""``maxsim bench``: kernels side by side with their peers, on this machine, in one run.

Suites (:mod:`maxsim.bench.suites`): ``float`` (:mod:`~maxsim.bench.float32`, float32
MaxSim vs maxsim-cpu, torch, numpy), ``binary`` (:mod:`~maxsim.bench.binary`,
Hamming search vs faiss, usearch, numpy), ``reduced`` (:mod:`~maxsim.bench.reduced`,
float16 / bfloat16 / int8 documents vs float32, maxsim-cpu, NumKong) and
``pylate`` (:mod:`~maxsim.bench.pylate`, ``maxsim.pylate`` vs PyLate).

Each suite and thread count runs in its own child process (peers such as
maxsim-cpu size their rayon pools once per process), and the parent prints one
table per suite. Peers are optional: a missing one is skipped, with a note.
"""
