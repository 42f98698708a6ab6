"""`kubectl credsmith`: a kubectl plugin for credsmith credentials, without the operator.

The names below are the operator's (credsmith.GROUP, VERSION, the rotate annotation); a
unit test in the operator's repository keeps them equal.
"""

__version__ = "0.1.0"

GROUP = "credsmith.io"
VERSION = "v1alpha1"  # the CRD version this plugin reads and the operator serves
ROTATE_ANNOTATION = f"{GROUP}/rotate"
# The Lease `credsmith run --leader-elect` holds by default (deploy/ and the chart with the
# release name "credsmith" use the same name).
LEASE_NAME = "credsmith-operator"
