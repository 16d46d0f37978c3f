"""sysscan: where does a Linux ELF enter the kernel, with which syscall, and which kernel function handles it."""

__version__ = "0.1.0"
