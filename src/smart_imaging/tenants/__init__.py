"""The tenant registry: builds an authorizer and an image source from each tenant's config."""
