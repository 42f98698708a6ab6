"""Property-based tests: any input gives a clean validation error or a valid result.

A spec that passes the apiserver's schema can still be anything the schema allows,
and the operator sees every object in the cluster: reconcile must never raise
(a raising handler is a crash loop), and template rendering must fail only with
TemplateError.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credsmith.api.enums import CredentialType, SecretAlphabet
from credsmith.issuing.templates import TemplateError, render_templates
from credsmith.reconcile.credential import reconcile
from credsmith.reconcile.kinds import API_CLIENT, SERVICE_ACCOUNT_CREDENTIAL
from credsmith.reconcile.snapshots import ResourceSnapshot, SecretSnapshot
from tests.state_key import TEST_STATE_KEY

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)

# Keys the API knows, so generated specs reach deep into the models, plus noise.
SPEC_KEYS = [
    "serviceAccount", "title", "description", "type", "keyPair", "clientId", "secret",
    "rotation", "secretName", "secretTemplate", "deletionPolicy", "displayName", "roles",
    "registry",
]  # fmt: skip
text20, text40, text60 = st.text(max_size=20), st.text(max_size=40), st.text(max_size=60)


def block(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


def str_map(values: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(text20, values, max_size=3)


BLOCKS = {
    "clientId": block(format=st.sampled_from(["UUID", "Token", "x"]), prefix=text20, value=text60),
    "secret": block(
        length=st.integers(-5, 400),
        alphabet=st.sampled_from([*SecretAlphabet, "Emoji"]),
        prefix=text40,
        checksum=st.booleans(),
    ),
    "rotation": block(
        period=st.sampled_from(["1h", "20s", "0s", "-1h", "1d", "", "720h"]),
        overlap=st.sampled_from(["1h", "10s", "2h", "x"]),
    ),
    "secretTemplate": block(
        labels=str_map(text20), annotations=str_map(text40), data=str_map(text60)
    ),
    "type": st.sampled_from([*CredentialType, "Password"]),
    "roles": st.lists(st.fixed_dictionaries({"id": text20}, optional={"name": text20}), max_size=4),
}


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from(SPEC_KEYS), unique=True, max_size=len(SPEC_KEYS)))
    spec: dict[str, Any] = {}
    for key in keys:
        spec[key] = draw(BLOCKS.get(key, json_values) | json_values)
    return spec


def resource(
    kind: str, spec: dict[str, Any], annotations: dict[str, str] | None = None
) -> ResourceSnapshot:
    return ResourceSnapshot.from_api(
        {
            "apiVersion": "credsmith.io/v1alpha1",
            "kind": kind,
            "metadata": {
                "name": "x",
                "namespace": "ns",
                "uid": "u",
                "generation": 1,
                "annotations": annotations or {},
            },
            "spec": spec,
        }
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), annotation=st.none() | st.text(max_size=300))
def test_reconcile_never_raises_on_any_spec(spec: dict[str, Any], annotation: str | None) -> None:
    for rules in (SERVICE_ACCOUNT_CREDENTIAL, API_CLIENT):
        notes = {"credsmith.io/rotate": annotation} if annotation is not None else {}
        decision = reconcile(
            rules, resource(rules.kind, spec, notes), None, NOW, state_key=TEST_STATE_KEY
        )
        ready = next(c for c in decision.status["conditions"] if c["type"] == "Ready")
        if ready["status"] == "True":
            assert decision.secret is not None
            assert decision.create
        else:
            assert decision.secret is None  # a bad spec never writes a Secret
            assert ready["reason"] in {"InvalidSpec", "InvalidTemplate"}


@settings(max_examples=200, deadline=None)
@given(
    data=st.dictionaries(st.text(max_size=20), json_values, max_size=6),
    kind=st.sampled_from(["Opaque", "kubernetes.io/basic-auth", ""]),
)
def test_reconcile_never_raises_on_a_garbled_secret_of_ours(
    data: dict[str, Any], kind: str
) -> None:
    import base64

    encoded = {str(k): base64.b64encode(str(v).encode()).decode() for k, v in data.items()}
    noise = {str(k)[:20]: str(v)[:40] for k, v in data.items()}
    garbled = SecretSnapshot.from_api(
        {
            "type": kind or "Opaque",
            "metadata": {
                "name": "x", "namespace": "ns", "resourceVersion": "1",
                "labels": {"app.kubernetes.io/managed-by": "credsmith"},
                "annotations": {"credsmith.io/owner": "ServiceAccountCredential/x", **noise},
            },
            "data": encoded,
        }
    )  # fmt: skip
    decision = reconcile(
        SERVICE_ACCOUNT_CREDENTIAL,
        resource("ServiceAccountCredential", {"serviceAccount": "a"}),
        garbled,
        NOW,
        state_key=TEST_STATE_KEY,
    )
    assert decision.status["conditions"]


TEMPLATE_TOKENS = st.sampled_from(
    ["{{", "}}", "{%", "%}", "{#", "#}", " ", "clientId", "clientSecret", "|", "upper", "replace",
     "(", ")", "'a'", "*", "**", "9", "~", ".", "__class__", "[", "]", ":", "if", "else", "endif",
     "for", "in", "endfor", "set", "=", "x", "b64encode", "default", ",", "-", "99999999"]
)  # fmt: skip


@settings(max_examples=500, deadline=2000)
@given(source=st.lists(TEMPLATE_TOKENS, max_size=30).map("".join) | st.text(max_size=200))
def test_templates_render_or_fail_with_template_error(source: str) -> None:
    context = {"clientId": "id-0123", "clientSecret": "s3cr3t-0123456789abcdefghij"}
    try:
        rendered = render_templates({"k": source}, context)
    except TemplateError as exc:
        message = str(exc)
    else:
        assert len(rendered["k"]) <= 64 * 1024
        return
    assert "s3cr3t-0123456789abcdefghij" not in message
