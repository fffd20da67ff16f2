"""Writing outputs safely: atomic files, locks, free space, and never inside a recording."""
