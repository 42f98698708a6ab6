"""credsmith: a Kubernetes operator that issues client credentials declaratively."""

GROUP = "credsmith.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

__version__ = "0.1.0"
