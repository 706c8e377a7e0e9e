"""harvestkit.client."""
