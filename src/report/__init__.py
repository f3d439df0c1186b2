"""The realism report: load a run's files into DuckDB, measure every figure, draw the page."""
