"""Video to compressed chunks: decoding with ffmpeg, deflating, chunk files, previews."""
