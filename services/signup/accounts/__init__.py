"""The accounts service: creates the user at the identity provider, keeps only the provider's id."""
