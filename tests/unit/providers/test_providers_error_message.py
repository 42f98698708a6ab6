"""A ProviderError's message goes to status, Events and log lines as it is: the error
cleans it itself, so that no caller can forget to."""

from __future__ import annotations

from credsmith.providers.base import ProviderError, ProviderReason


def test_a_provider_error_message_is_printable_on_one_line_and_bounded() -> None:
    forged = "refused\n2026-12-07 INFO credsmith: all fine\u202e\x9b" + "x" * 1000
    error = ProviderError(ProviderReason.REJECTED, forged)
    assert "\n" not in error.message
    assert "\u202e" not in error.message
    assert all(char.isprintable() for char in error.message)
    assert len(error.message) <= ProviderError.MAX_MESSAGE
    assert error.message.startswith("refused 2026-12-07 INFO credsmith: all fine")
    assert error.message.endswith("…")
    assert str(error) == f"ProviderRejected: {error.message}"


def test_a_clean_message_is_kept_as_it_is() -> None:
    message = "https://hydra.example/admin/clients: 409 Conflict: client exists"
    assert ProviderError(ProviderReason.CONFLICT, message).message == message
