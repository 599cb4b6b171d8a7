"""Infrastructure with no domain knowledge: paths, logging, secrets, the systemd notify protocol."""
