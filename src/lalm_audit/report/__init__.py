"""Tables and figures from Parquet results (no paths inside: functions take frames, return figures/text)."""
