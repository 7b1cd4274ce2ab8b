"""Tenant configuration schema (pydantic, discriminated on ``type``) and its JSON loader: pure."""
