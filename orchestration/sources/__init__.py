"""Sources: the raw landing contract, the loader, the demo generator and connectors."""
