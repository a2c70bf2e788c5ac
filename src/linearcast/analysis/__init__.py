"""linearcast.analysis."""
