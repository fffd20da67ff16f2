"""One session described for people: `inspect`, and the Dagster summaries."""
