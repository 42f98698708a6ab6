"""Developer tooling: the local control plane behind `credsmith dev` and the e2e tests."""
