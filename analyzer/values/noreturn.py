"""Functions known never to return: a call to one ends its block (the bytes after it are another path)."""

NORETURN_NAMES = frozenset({
    "exit", "_exit", "_Exit", "abort", "quick_exit", "__stack_chk_fail", "__assert_fail", "__assert_perror_fail",
    "__fortify_fail", "__chk_fail", "__libc_fatal", "err", "errx", "verr", "verrx", "error_exit", "longjmp",
    "siglongjmp", "__longjmp_chk", "pthread_exit", "__pthread_exit", "__cxa_throw", "__cxa_rethrow",
    "_Unwind_Resume", "runtime.throw", "runtime.fatal", "runtime.exit", "runtime.abort",
})
