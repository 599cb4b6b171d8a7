"""NSE's public option-chain API: the client (pacing, endpoints, cache) and the payload parser."""
