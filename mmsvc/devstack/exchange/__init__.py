"""The exchange simulator of the dev stack: Order Service, matching, market data, metadata, auth."""
