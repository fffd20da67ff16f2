"""Reading the Miniscope DAQ format: folders, metadata, timestamps, videos (no NWB here)."""
