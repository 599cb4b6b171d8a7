"""Settings: TOML + OPTTERM_* overrides, validated, with messages naming the file and key."""
