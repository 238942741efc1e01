"""The interceptor proxy: protocol, server, launcher and one module per interceptor."""
