"""Which syscall argument a seccomp filter can usefully test, per syscall name: the surface keeps that argument's
values (surface/), and the seccomp stage turns them into filters (seccomp/)."""

FILTERED_ARGS: dict[str, int] = {"socket": 0, "socketpair": 0, "personality": 0, "prctl": 0, "arch_prctl": 0,
                                 "ioctl": 1, "clone": 0}
"""Syscall name -> the argument index: the family, the persona, the option or code, the request, the flags."""
