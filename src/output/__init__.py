"""Encoders and sinks: JSON lines, Redis protocol, files, standard output, Redis Streams; the answer key."""
