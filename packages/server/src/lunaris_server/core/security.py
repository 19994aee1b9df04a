"""Random secrets, their hashes, and password hashing.

Tokens and enrollment secrets are high-entropy random strings, so a plain SHA-256 of them is
a safe, indexable lookup key. Passwords are chosen by people, so they get argon2.
"""

import hashlib
import hmac
import secrets
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_password_hasher = PasswordHasher()
# Verified against when a user does not exist, so a login costs the same either way.
_DUMMY_PASSWORD_HASH = _password_hasher.hash("lunaris-no-such-user")


class TokenKind(StrEnum):
    """The prefix tells a reader (and a secret scanner) what a leaked string is."""

    DEVICE = "lnd_"
    API = "lna_"
    ENROLLMENT = "lne_"
    SESSION = "lns_"


def new_token(kind: TokenKind) -> str:
    return f"{kind.value}{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_secret_key() -> str:
    return secrets.token_urlsafe(48)


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _password_hasher.verify(password_hash or _DUMMY_PASSWORD_HASH, password) and (
            password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))
