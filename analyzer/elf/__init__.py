"""Reading ELF files: the header checks, memory images, .eh_frame, Go's pclntab, DWARF lines."""
