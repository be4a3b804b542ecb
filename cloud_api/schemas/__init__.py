"""Pydantic models at the JSON edge of the API (XCreate / XUpdate / XPublic)."""
