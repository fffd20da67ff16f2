"""The conversion as stages, and the DANDI file names that depend on it."""
