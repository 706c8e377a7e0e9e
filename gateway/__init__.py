"""harvestkit.gateway: an OpenAI-compatible HTTP endpoint in front of the harvested sessions."""
