"""Live: TTS audio packaged as it arrives, LL-HLS/LL-DASH state, sealing into VOD."""
