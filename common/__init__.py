"""harvestkit.common: the little that the client and the harvester share (running async code from sync code)."""
