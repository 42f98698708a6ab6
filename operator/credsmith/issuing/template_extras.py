"""`extra.<key>` and `extra['<key>']` in templates: the values of `spec.extraSecrets`.

Jinja would read these as attribute access and subscripts of a mapping, which the sandbox
refuses (and which the secret-flow check could not follow). So, right after parsing, each is
replaced by a plain variable with a name of its own, `extra_variable(key)`; the context holds
each extra value under that name. Any other use of `extra` is refused.
"""

from __future__ import annotations

import re

from jinja2 import nodes

EXTRA = "extra"
_MANGLED_PREFIX = "extra__"
_HEX = re.compile(r"[0-9a-f]{2}")


class ExtraMisuse(Exception):
    """`extra` used other than as `extra.<key>` or `extra['<key>']`."""


def extra_variable(key: str) -> str:
    """The template variable holding the extra secret under Secret key `key`: a valid Python
    identifier, one-to-one with the key (letters and digits kept, anything else `_hh`)."""
    encoded = "".join(ch if ch.isascii() and ch.isalnum() else f"_{ord(ch):02x}" for ch in key)
    return _MANGLED_PREFIX + encoded


def display_name(variable: str) -> str:
    """How a variable is shown in a message: `extra["key"]` for an extra secret."""
    if not variable.startswith(_MANGLED_PREFIX):
        return variable
    encoded, key, i = variable[len(_MANGLED_PREFIX) :], [], 0
    while i < len(encoded):
        if encoded[i] == "_":
            code = encoded[i + 1 : i + 3]
            if not _HEX.fullmatch(code):  # a name we never made: shown as it was written
                return variable
            key.append(chr(int(code, 16)))
            i += 3
        else:
            key.append(encoded[i])
            i += 1
    return f"extra[{''.join(key)!r}]"


def resolve_extras(tree: nodes.Template) -> None:
    """Replace `extra.<key>` and `extra['<key>']` by their variables, in place."""
    stack: list[nodes.Node] = [tree]
    while stack:
        node = stack.pop()
        for field in node.fields:
            value = getattr(node, field)
            if isinstance(value, nodes.Node):
                setattr(node, field, _resolved(value))
                stack.append(getattr(node, field))
            elif isinstance(value, list):
                value[:] = [_resolved(v) if isinstance(v, nodes.Node) else v for v in value]
                stack.extend(v for v in value if isinstance(v, nodes.Node))


def _resolved(node: nodes.Node) -> nodes.Node:
    key: str | None = None
    if isinstance(node, nodes.Getattr) and _is_extra(node.node):
        key = node.attr
    elif isinstance(node, nodes.Getitem) and _is_extra(node.node):
        if not (isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str)):
            raise ExtraMisuse(f"line {node.lineno}: extra[...] takes a quoted key")
        key = node.arg.value
    elif _is_extra(node):
        raise ExtraMisuse(
            f"line {node.lineno}: extra is the map of spec.extraSecrets: use extra.<key> or "
            "extra['<key>']"
        )
    if key is None:
        return node
    return nodes.Name(extra_variable(key), "load", lineno=node.lineno)


def _is_extra(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == EXTRA and node.ctx == "load"
