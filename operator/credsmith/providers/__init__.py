"""Identity providers that also verify what credsmith issues (Ory Hydra, Keycloak)."""
