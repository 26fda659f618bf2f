"""Benchmarks (`iwsi bench ...`) and the synthetic run directories the tests and the dashboard
benchmark use. Beside `tests/`, outside the installed `iwsi` package: reachable from a source checkout."""
