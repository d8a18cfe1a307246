"""Whisper audio features for LatentSync (openai-whisper package, official checkpoint format)."""
