"""Tenant configuration: models, loading, and the registry of tenants."""
