"""harvestkit.harvester."""
