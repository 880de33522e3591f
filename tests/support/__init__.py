"""What tests and benchmarks share: free ports, the local broker and registry, reading a worker's /metrics."""
