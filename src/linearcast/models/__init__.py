"""linearcast.models."""
