"""Business logic, independent of HTTP: each function takes a Session and the acting user."""
