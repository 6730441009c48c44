"""Audio: the AAC ladder, loudness, and the CMAF muxer of AAC frames."""
