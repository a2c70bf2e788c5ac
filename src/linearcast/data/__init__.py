"""linearcast.data."""
