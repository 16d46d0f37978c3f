"""The program surface: every syscall a program can make, through its own code, the dynamic loader and its shared
libraries, reachable from its entry points, each with the path that reaches it.

closure.py (the objects the loader would map, found as it finds them), summary.py (one object's call graph, roots
and syscall sites, cached by content hash), reach.py (binding across objects, reachability, shortest paths).
"""
