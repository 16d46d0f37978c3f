"""Running the pipeline: one binary (pipeline), one binary in a child under limits (isolate), the pure per-binary
job (job) and a pool of worker processes (pool)."""
