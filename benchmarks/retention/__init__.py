"""Parts of the retention benchmark (`benchmarks.retention_bench`)."""
