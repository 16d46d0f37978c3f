"""Seccomp profiles from the program surface: what to allow, what to answer with which errno, and why (profile.py).

Derived data, like the aggregate: it reads finished reports and never a binary. The renderers write it as an
OCI/Docker profile, a systemd unit fragment or a Kubernetes SeccompProfile (render/seccomp.py).
"""
from .profile import DEFAULT_ACTIONS, Profile, build_profile

__all__ = ["DEFAULT_ACTIONS", "Profile", "build_profile"]
