"""The Argo CD health checks in deploy/argocd/, run the way Argo CD runs them.

Argo CD embeds gopher-lua (Lua 5.1). For a health check it decodes the live object
from JSON into Lua tables (objects -> tables, arrays -> 1-based tables, null ->
absent), sets it as the global `obj`, runs the script and reads the returned table as
{status, message}. A script configured in argocd-cm gets only the base and table
libraries unless `resource.customizations.useOpenLibs.<group>_<kind>` is set, so the
scripts run here in that reduced environment: no `string`, `math`, `io`, `os` or
`debug`, and no string methods.

Each kind's `health_test.yaml` (Argo CD's own format: `tests: [{healthStatus:
{status, message}, inputPath}]`) lists the cases; every entry of both kinds is one
test here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

ROOT = Path(__file__).resolve().parents[3]
GROUP_DIR = ROOT / "deploy" / "argocd" / "resource_customizations" / "credsmith.io"
CREDENTIAL_KINDS = ("ServiceAccountCredential", "ApiClient")
PROVIDER_KINDS = ("IdentityProvider", "ClusterIdentityProvider")
KINDS = (*CREDENTIAL_KINDS, *PROVIDER_KINDS)
# gitops-engine's HealthStatusCode values; anything else becomes Unknown in Argo CD.
HEALTH_CODES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
# The cases every credential kind must cover (file names under testdata/).
REQUIRED_CASES = {
    "healthy.yaml",
    "progressing-no-status.yaml",
    "progressing-old-generation.yaml",
    "degraded-secret-conflict.yaml",
    "degraded-invalid-template.yaml",
    "degraded-invalid-spec.yaml",
    "progressing-reconciling.yaml",
    "progressing-deleting.yaml",
    "ready-unknown.yaml",
}
# And every identity provider kind.
PROVIDER_CASES = {
    "healthy.yaml",
    "progressing-no-status.yaml",
    "progressing-old-generation.yaml",
    "progressing-unreachable.yaml",
    "degraded-url-not-allowed.yaml",
    "degraded-login-refused.yaml",
    "progressing-deleting.yaml",
}

# Runs `script` with `obj` as Argo CD runs an argocd-cm health script by default:
# base and table libraries only, and strings without methods (gopher-lua without
# the string library sets no string metatable).
_RUNNER = """
function(script, obj)
  local env = {}
  for _, name in ipairs({
    "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print",
    "rawequal", "rawget", "rawset", "select", "setmetatable", "tonumber", "tostring",
    "type", "unpack", "xpcall",
  }) do
    env[name] = _G[name]
  end
  env.table = table
  env._G = env
  env.obj = obj
  local chunk, problem = loadstring(script, "=health.lua")
  if chunk == nil then
    error(problem, 0)
  end
  setfenv(chunk, env)
  local string_metatable = getmetatable("")
  local string_index = string_metatable.__index
  string_metatable.__index = nil
  local ok, result = pcall(chunk)
  string_metatable.__index = string_index
  if not ok then
    error(result, 0)
  end
  return result
end
"""


class _YamlLoader(yaml.SafeLoader):
    """YAML as sigs.k8s.io/yaml reads it for Argo CD: timestamps stay strings."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_YamlLoader)  # noqa: S506


def to_lua(lua: Any, value: Any) -> Any:
    """A JSON-like value as Argo CD's decodeValue builds it in Lua.

    Mappings become tables with string keys; lists become tables indexed from 1;
    null becomes absent (gopher-lua's Append and RawSetH drop nil, so a null list
    item does not leave a hole).
    """
    if isinstance(value, dict):
        table = lua.table()
        for key, item in value.items():
            if item is not None:
                table[str(key)] = to_lua(lua, item)
        return table
    if isinstance(value, list):
        table = lua.table()
        index = 0
        for item in value:
            if item is not None:
                index += 1
                table[index] = to_lua(lua, item)
        return table
    if isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"not a JSON value: {value!r}")


def run_health(script: str, obj: dict[str, Any]) -> dict[str, str]:
    """Run a health script on `obj` in a fresh Lua 5.1 and return {status, message}."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=False)
    assert lua.lua_version == (5, 1)
    result = lua.eval(_RUNNER)(script, to_lua(lua, obj))
    assert lua51.lua_type(result) == "table", f"the script returned {result!r}, not a table"
    health = dict(result.items())
    assert set(health) <= {"status", "message"}, f"unexpected fields: {sorted(health)}"
    assert health.get("status") in HEALTH_CODES, f"not a health status: {health!r}"
    message = health.get("message", "")  # Argo CD reads a missing message as ""
    assert isinstance(message, str), f"message is not a string: {message!r}"
    return {"status": health["status"], "message": message}


def health_script(kind: str) -> str:
    return (GROUP_DIR / kind / "health.lua").read_text(encoding="utf-8")


def _health_tests() -> list[Any]:
    cases = []
    for kind in KINDS:
        for entry in load_yaml(GROUP_DIR / kind / "health_test.yaml")["tests"]:
            cases.append(
                pytest.param(
                    kind,
                    entry["inputPath"],
                    entry["healthStatus"],
                    id=f"{kind}/{Path(entry['inputPath']).stem}",
                )
            )
    return cases


@pytest.mark.parametrize(("kind", "input_path", "expected"), _health_tests())
def test_health_matches_health_test_yaml(
    kind: str, input_path: str, expected: dict[str, str]
) -> None:
    obj = load_yaml(GROUP_DIR / kind / input_path)
    assert run_health(health_script(kind), obj) == {
        "status": expected["status"],
        "message": expected.get("message", ""),
    }


def test_every_kind_shares_one_script_byte_for_byte() -> None:
    scripts = {(GROUP_DIR / kind / "health.lua").read_bytes() for kind in KINDS}
    assert len(scripts) == 1, "the health.lua files differ; they must stay identical"


@pytest.mark.parametrize("kind", KINDS)
def test_health_test_yaml_lists_every_testdata_file(kind: str) -> None:
    tests = load_yaml(GROUP_DIR / kind / "health_test.yaml")["tests"]
    listed = [Path(entry["inputPath"]) for entry in tests]
    assert all(path.parent == Path("testdata") for path in listed), listed
    names = [path.name for path in listed]
    assert len(names) == len(set(names)), "a testdata file is listed twice"
    present = {path.name for path in (GROUP_DIR / kind / "testdata").glob("*.yaml")}
    assert set(names) == present
    required = REQUIRED_CASES if kind in CREDENTIAL_KINDS else PROVIDER_CASES
    assert present >= required, f"missing cases: {sorted(required - present)}"


@pytest.mark.parametrize("kind", KINDS)
def test_testdata_objects_are_of_their_kind(kind: str) -> None:
    # Argo CD picks the script by group and kind, so a testdata object of another
    # kind would test a script Argo CD never runs on it.
    for path in sorted((GROUP_DIR / kind / "testdata").glob("*.yaml")):
        obj = load_yaml(path)
        assert (obj["apiVersion"], obj["kind"]) == ("credsmith.io/v1alpha1", kind), path.name


def test_script_is_lua_5_1() -> None:
    # Lua 5.1 has no goto, no integer division and no bitwise operators: such a
    # script does not even compile here.
    compile_ = lua51.LuaRuntime(unpack_returned_tuples=True).eval(
        'function(source) local f, e = loadstring(source); return f ~= nil, e or "" end'
    )
    compiled, problem = compile_(health_script(KINDS[0]))
    assert compiled, problem
    for newer_syntax in ("local x = 7 // 2", "goto done ::done::", "local x = 1 & 2"):
        compiled, _ = compile_(newer_syntax)
        assert not compiled, newer_syntax


def test_the_runner_denies_what_argocd_cm_scripts_lack() -> None:
    # Proof that the reduced environment is real: string methods and libraries that
    # argocd-cm scripts do not get make a script fail here too.
    obj = {"metadata": {"name": "x"}}
    with pytest.raises(lua51.LuaError):
        run_health('return {status = ("Healthy"):upper()}', obj)
    with pytest.raises(lua51.LuaError):
        run_health('return {status = string.format("%s", "Healthy")}', obj)
    with pytest.raises(lua51.LuaError):
        run_health("return {status = math.floor(1)}", obj)
    assert run_health('return {status = "Healthy"}', obj) == {"status": "Healthy", "message": ""}


def _credential(
    conditions: list[dict[str, Any]] | None,
    generation: Any = 2,
    observed: Any = 2,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "credsmith.io/v1alpha1",
        "kind": "ServiceAccountCredential",
        "metadata": {"name": "c", "namespace": "ns", "generation": generation},
        "spec": {"serviceAccount": "c"},
    }
    if conditions is not None:
        obj["status"] = {"observedGeneration": observed, "conditions": conditions}
    return obj


def _condition(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    condition: dict[str, Any] = {"type": type_, "status": status, "observedGeneration": 2}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


READY = _condition("Ready", "True", "Issued", "Issued revision 1 into Secret c")
CONFLICT = ("SecretConflict", "Secret c already exists")


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        pytest.param(
            _credential([READY], generation="3", observed="2"),
            (
                "Progressing",
                "Waiting for the operator to observe generation 3 (status is for generation 2)",
            ),
            id="generations-as-strings",
        ),
        pytest.param(
            _credential([READY], observed=None),
            ("Healthy", "Issued revision 1 into Secret c"),
            id="no-observed-generation-is-not-compared",
        ),
        pytest.param(
            {**_credential(None), "status": {"observedGeneration": 2, "conditions": {"a": 1}}},
            ("Progressing", "Waiting for the operator to report status"),
            id="conditions-not-a-list",
        ),
        pytest.param(
            _credential([None, READY]),  # type: ignore[list-item]
            ("Healthy", "Issued revision 1 into Secret c"),
            id="null-condition-dropped",
        ),
        pytest.param(
            _credential([_condition("Reconciling", "False", "Reconciled", "done")]),
            ("Progressing", "Waiting for the operator to report readiness"),
            id="no-ready-condition",
        ),
        pytest.param(
            _credential([_condition("Ready", "True", "Issued")]),
            ("Healthy", "Issued"),
            id="ready-without-message-uses-reason",
        ),
        pytest.param(
            _credential([_condition("Ready", "True")]),
            ("Healthy", "Ready"),
            id="ready-without-message-or-reason",
        ),
        pytest.param(
            _credential([_condition("Ready", "False", "SecretConflict")]),
            ("Degraded", "SecretConflict"),
            id="degraded-without-message",
        ),
        pytest.param(
            _credential([_condition("Ready", "False", message="Writing Secret c")]),
            ("Progressing", "Writing Secret c"),
            id="not-ready-without-reason",
        ),
        pytest.param(
            # kstatus order: Reconciling=True is read before Stalled=True.
            _credential(
                [
                    _condition("Ready", "False", *CONFLICT),
                    _condition("Stalled", "True", *CONFLICT),
                    _condition("Reconciling", "True", "Reconciling", "Retrying"),
                ]
            ),
            ("Progressing", "Retrying"),
            id="reconciling-before-stalled",
        ),
        pytest.param(
            # kstatus order: Stalled=True is read before Ready.
            _credential([READY, _condition("Stalled", "True", *CONFLICT)]),
            ("Degraded", "SecretConflict: Secret c already exists"),
            id="stalled-before-ready",
        ),
        *(
            pytest.param(
                _credential(
                    [_condition("Ready", "False", reason, "m"), _condition("Stalled", "False")]
                ),
                ("Degraded", f"{reason}: m"),
                id=f"{reason}-without-stalled",
            )
            for reason in ("InvalidSpec", "InvalidTemplate", "SecretConflict")
        ),
        pytest.param(
            _credential([_condition("Ready", "Unknown", "InvalidSpec", "checking")]),
            ("Progressing", "checking"),
            id="unknown-with-terminal-reason-is-not-degraded",
        ),
        pytest.param(
            {"kind": "ApiClient"},
            ("Progressing", "Waiting for the operator to report status"),
            id="no-metadata",
        ),
    ],
)
def test_health_edge_cases(obj: dict[str, Any], expected: tuple[str, str]) -> None:
    status, message = expected
    for kind in KINDS:
        assert run_health(health_script(kind), obj) == {"status": status, "message": message}
