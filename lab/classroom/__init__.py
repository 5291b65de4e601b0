"""The class server: one process holds Docker, every student works in a browser."""
