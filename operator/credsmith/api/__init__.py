"""The credsmith API: pydantic models of spec and status, the one source of truth for the
CRDs (`python -m credsmith.api.crd crds` writes them).

common (shared spec blocks), service_account_credential and api_client (the kinds),
status (conditions and status fields), durations (Go durations), schema and crd (the
generator), base (wire base class, patterns, CEL rule helpers), enums.
"""
