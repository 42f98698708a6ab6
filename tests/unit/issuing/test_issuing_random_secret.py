"""Random secrets: alphabet, uniformity, bounds, checksum."""

import math
import string
import zlib
from collections import Counter

import pytest

from credsmith.api.alphabets import ALPHABETS, CHECKSUM_LENGTH, MAX_LENGTH, MIN_LENGTH, min_length
from credsmith.api.enums import SecretAlphabet
from credsmith.issuing.random_secret import has_valid_checksum, new_secret, uniform_choices

BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def crc_suffix(body: str) -> str:
    """An independent encoding of the checksum: CRC32 in base62, big-endian, 6 digits."""
    value, digits = zlib.crc32(body.encode("utf-8")), ""
    while value:
        value, digit = divmod(value, 62)
        digits = BASE62[digit] + digits
    return digits.rjust(6, "0")


@pytest.mark.parametrize("alphabet", list(SecretAlphabet))
def test_length_and_characters(alphabet: SecretAlphabet) -> None:
    length = max(min_length(alphabet), 48)
    secret = new_secret(length, alphabet)
    assert len(secret) == length
    assert set(secret) <= set(ALPHABETS[alphabet])


@pytest.mark.parametrize("alphabet", list(SecretAlphabet))
def test_characters_are_uniform(alphabet: SecretAlphabet) -> None:
    """Every character appears, and a chi-square statistic over 100k characters stays within
    8 standard deviations of its mean (false alarm odds ~1e-9; a modulo bias of
    `randbits(8) % len(alphabet)` would exceed it for every alphabet whose size does not
    divide 256)."""
    chars = ALPHABETS[alphabet]
    sample = "".join(new_secret(250, alphabet) for _ in range(400))
    counts = Counter(sample)
    assert set(counts) == set(chars)
    expected = len(sample) / len(chars)
    chi2 = sum((counts[c] - expected) ** 2 / expected for c in chars)
    df = len(chars) - 1
    assert chi2 < df + 8 * math.sqrt(2 * df)


@pytest.mark.parametrize("alphabet", list(SecretAlphabet))
def test_no_repeats(alphabet: SecretAlphabet) -> None:
    length = min_length(alphabet)
    assert len({new_secret(length, alphabet) for _ in range(10_000)}) == 10_000


def test_no_repeats_in_100k_draws() -> None:
    draws = {new_secret(22, SecretAlphabet.ALPHANUMERIC) for _ in range(100_000)}
    assert len(draws) == 100_000


@pytest.mark.parametrize("alphabet", list(SecretAlphabet))
def test_every_position_is_uniform(alphabet: SecretAlphabet) -> None:
    """The same chi-square bound as above, per position: no position is biased (a
    generator that, say, never starts with a digit would fail here)."""
    chars = ALPHABETS[alphabet]
    length = min_length(alphabet)
    draws = [new_secret(length, alphabet) for _ in range(60 * len(chars))]
    df = len(chars) - 1
    for position in range(length):
        counts = Counter(draw[position] for draw in draws)
        expected = len(draws) / len(chars)
        chi2 = sum((counts[c] - expected) ** 2 / expected for c in chars)
        assert chi2 < df + 8 * math.sqrt(2 * df), f"position {position}"


def test_prefix_is_prepended_verbatim() -> None:
    secret = new_secret(32, SecretAlphabet.HEX, prefix="sk_live_")
    assert secret.startswith("sk_live_")
    assert len(secret) == len("sk_live_") + 32


@pytest.mark.parametrize("length", [MIN_LENGTH - 1, MAX_LENGTH + 1, 0, -5])
def test_length_out_of_bounds(length: int) -> None:
    with pytest.raises(ValueError, match="length"):
        new_secret(length, SecretAlphabet.ALPHANUMERIC)


@pytest.mark.parametrize("alphabet", list(SecretAlphabet))
def test_bounds_are_inclusive(alphabet: SecretAlphabet) -> None:
    assert len(new_secret(MAX_LENGTH, alphabet)) == MAX_LENGTH
    shortest = min_length(alphabet)  # MIN_LENGTH, or more where 128 bits need more
    assert shortest >= MIN_LENGTH
    assert len(new_secret(shortest, alphabet)) == shortest
    with pytest.raises(ValueError, match="length"):
        new_secret(shortest - 1, alphabet)


def test_too_little_entropy_is_refused() -> None:
    # 31 hex characters are 124 bits: below the 128 the schema also requires.
    assert min_length(SecretAlphabet.HEX) == 32
    with pytest.raises(ValueError, match="entropy"):
        new_secret(31, SecretAlphabet.HEX)
    assert len(new_secret(32, SecretAlphabet.HEX)) == 32


def test_length_must_be_an_int() -> None:
    with pytest.raises(TypeError):
        new_secret(True, SecretAlphabet.ALPHANUMERIC)
    with pytest.raises(TypeError):
        new_secret(32.0, SecretAlphabet.ALPHANUMERIC)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", [None, "", "ghp_", "sk_live_"])
def test_checksum_round_trip(prefix: str | None) -> None:
    for alphabet in SecretAlphabet:
        token = new_secret(48, alphabet, prefix=prefix, checksum=True)
        assert len(token) == len(prefix or "") + 48 + CHECKSUM_LENGTH
        assert token.startswith(prefix or "")
        assert token[-6:] == crc_suffix(token[:-6])
        assert has_valid_checksum(token, prefix)


def test_checksum_is_base62() -> None:
    token = new_secret(40, SecretAlphabet.PRINTABLE, checksum=True)
    assert set(token[-6:]) <= set(BASE62)


def flip(token: str, index: int) -> str:
    replacement = "B" if token[index] == "A" else "A"
    return token[:index] + replacement + token[index + 1 :]


def test_any_changed_character_fails_the_check() -> None:
    token = new_secret(40, SecretAlphabet.ALPHANUMERIC, prefix="sk_", checksum=True)
    for index in range(len(token)):
        assert not has_valid_checksum(flip(token, index)), index


def test_wrong_or_missing_prefix_fails_the_check() -> None:
    token = new_secret(40, SecretAlphabet.ALPHANUMERIC, prefix="sk_", checksum=True)
    assert has_valid_checksum(token, "sk_")
    assert has_valid_checksum(token)  # the checksum covers the prefix, whatever is asked
    assert not has_valid_checksum(token, "pk_")
    assert not has_valid_checksum(token[3:], "sk_")


def test_undecorated_and_degenerate_tokens_fail_the_check() -> None:
    assert not has_valid_checksum("sk_" + "a" * 40, "sk_")
    assert not has_valid_checksum("")
    assert not has_valid_checksum("000000")  # nothing before the checksum
    assert not has_valid_checksum("sk_" + crc_suffix("sk_"), "sk_")  # no random part
    body = "sk_x"
    assert has_valid_checksum(body + crc_suffix(body), "sk_")


def test_uniform_choices_draw_without_modulo_bias() -> None:
    # 100 characters: 256 % 100 = 56, so a plain `byte % 100` would draw the first 56
    # characters 3 times in 256 and the other 44 twice: 1.5 times as often.
    alphabet = "".join(chr(0x100 + i) for i in range(100))
    drawn = uniform_choices(alphabet, 200_000)
    assert len(drawn) == 200_000
    assert set(drawn) <= set(alphabet)
    counts = Counter(drawn)
    low = sum(counts[c] for c in alphabet[:56]) / 56
    high = sum(counts[c] for c in alphabet[56:]) / 44
    assert 0.95 < low / high < 1.05


def test_uniform_choices_refuses_an_alphabet_a_byte_cannot_index() -> None:
    with pytest.raises(ValueError, match="1 to 256"):
        uniform_choices("x" * 257, 4)
    with pytest.raises(ValueError, match="1 to 256"):
        uniform_choices("", 4)
    assert uniform_choices("ab", 0) == ""
