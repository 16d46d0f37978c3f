"""The command line: argument handling only; each step raises one exit error (errors.py), the library modules
take plain arguments."""
from .main import main

__all__ = ["main"]
