"""Tables and figures built from result frames (no paths inside: callers save them)."""
