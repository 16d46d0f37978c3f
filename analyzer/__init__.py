"""sysscan: where does a Linux ELF enter the kernel, with which syscall, and which kernel function handles it."""

__version__ = "0.1.0"
__url__ = "https://github.com/sysscan/sysscan"
"""The project's home (pyproject's Homepage): where a SARIF client sends users who ask what the tool is."""
