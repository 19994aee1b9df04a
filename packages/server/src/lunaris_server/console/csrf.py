"""CSRF tokens bound to the browser session.

A token is an HMAC of the session cookie (or, before login, of a one-off login nonce
cookie), so a page on another site can neither read nor forge it, and it dies with the
session. Every console POST carries it as a form field or an ``X-CSRF-Token`` header.
"""

import hashlib
import hmac

from lunaris_server.core.security import constant_time_equals

FORM_FIELD = "csrf_token"
HEADER = "x-csrf-token"
SESSION_COOKIE = "lunaris_session"
"""The console session's cookie (accounts/sessions.py issues it): what the tokens bind to."""


class CsrfTokens:
    def __init__(self, secret_key: str) -> None:
        self._key = hashlib.sha256(f"lunaris.csrf:{secret_key}".encode()).digest()

    def token_for(self, binding: str) -> str:
        return hmac.new(self._key, binding.encode(), hashlib.sha256).hexdigest()

    def is_valid(self, binding: str | None, token: str | None) -> bool:
        if not binding or not token:
            return False
        return constant_time_equals(self.token_for(binding), token)
