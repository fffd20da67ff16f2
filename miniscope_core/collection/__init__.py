"""Finding sessions on disk: what a session is, their names, whether one is finished."""
