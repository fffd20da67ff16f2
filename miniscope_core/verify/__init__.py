"""Reading a written file back: every series as written, schema and best practices."""
