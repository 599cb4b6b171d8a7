"""Smart Stream 2.0, SmartAPI's market-data WebSocket: the packet parser and the client."""
