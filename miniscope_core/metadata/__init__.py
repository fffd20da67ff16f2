"""What a lab gives: the metadata schema and the layers of metadata files."""
