"""Incremental stream decoders and body parsers (pure: bytes in, events out, no I/O)."""
