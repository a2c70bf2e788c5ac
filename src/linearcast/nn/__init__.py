"""linearcast.nn."""
