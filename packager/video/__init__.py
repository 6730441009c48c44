"""Video: the H.264 ladder, its ffmpeg run, CMAF splitting, poster and thumbnails."""
