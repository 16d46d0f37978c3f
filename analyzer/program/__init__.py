"""The program model: one object's functions, symbols, imports and calls, read by every stage above it."""
