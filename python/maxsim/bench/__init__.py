"""``maxsim bench``: kernels side by side with their peers, on this machine, in one run.

Each thread count runs in its own child process (peers such as maxsim-cpu size
their rayon pools once per process), and the parent prints one table.
"""
