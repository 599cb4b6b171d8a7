"""Angel One SmartAPI: the REST client, its error dialect and the instrument master."""
