"""Frames to times: pairing videos with timestamp rows, the session clock, sync pairs."""
