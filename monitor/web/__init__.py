"""`embassy-watch serve`: the archive over HTTP, read-only."""
