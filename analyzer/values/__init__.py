"""Value recovery: what a register holds at an instruction, as a bounded set of possibilities."""
