"""linearcast.engine."""
