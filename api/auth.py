"""Passwords (scrypt), staff session tokens and customer conversation tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from domain.errors import AuthenticationError, PermissionDeniedError, ValidationError
from domain.models import StaffUser
from storage.staff import StaffRepository

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
STAFF_TOKEN_PREFIX = "st_"
CUSTOMER_TOKEN_PREFIX = "ct_"
MIN_PASSWORD_CHARS = 8


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` with a random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against :func:`hash_password` output."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), dklen=len(expected),
                                n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def token_hash(token: str) -> str:
    """Tokens are stored only as SHA-256 hashes."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_customer_token() -> tuple[str, str]:
    """A random token nobody is given (conversations on Slack or Telegram): (token, hash to store)."""
    token = CUSTOMER_TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_hash(token)


class CustomerTokens:
    """Web-chat customer tokens: ``ct_`` and the HMAC-SHA256 of the conversation id under the service's key.

    Checking a token is a hash computation, not a database read, on every customer request (the key is shared
    by every server process through the database, see ``storage.service_secrets``). The token's hash is also
    stored with the conversation, so tokens issued before signing (random ones) keep working through it.
    """

    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")

    def issue(self, conversation_id: str) -> tuple[str, str]:
        """(token to hand to the customer once, hash to store) for a new conversation."""
        token = self._sign(conversation_id)
        return token, token_hash(token)

    def signed(self, conversation_id: str, token: str | None) -> bool:
        """True when ``token`` is this service's signature of ``conversation_id`` (constant time)."""
        return bool(token) and hmac.compare_digest(self._sign(conversation_id), str(token))

    def _sign(self, conversation_id: str) -> str:
        digest = hmac.new(self._key, f"conversation:{conversation_id}".encode(), hashlib.sha256).digest()
        return CUSTOMER_TOKEN_PREFIX + base64.urlsafe_b64encode(digest).decode().rstrip("=")


def customer_token_matches(token: str | None, stored_hash: str) -> bool:
    """Constant-time comparison of a presented customer token with the stored hash."""
    if not token or not token.startswith(CUSTOMER_TOKEN_PREFIX):
        return False
    return hmac.compare_digest(token_hash(token), stored_hash)


class StaffAuth:
    """Login, token resolution and logout for staff users."""

    def __init__(self, repo: StaffRepository, ttl_hours: float) -> None:
        self.repo = repo
        self.ttl = timedelta(hours=ttl_hours)
        # Verifying against a dummy hash keeps login timing equal for unknown users.
        self._dummy_hash = hash_password(secrets.token_hex(8))

    def login(self, username: str, password: str) -> tuple[str, datetime, StaffUser]:
        """A new session token for valid credentials.

        Raises:
            AuthenticationError: wrong username or password, or an inactive user (same message).
        """
        found = self.repo.credentials(username)
        stored = found[1] if found else self._dummy_hash
        if not verify_password(password, stored) or found is None or not found[0].active:
            raise AuthenticationError("wrong username or password")
        token = STAFF_TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + self.ttl
        self.repo.add_token(found[0].id, token_hash(token), expires)
        return token, expires, found[0]

    def user(self, token: str | None) -> StaffUser:
        """The user behind a staff token.

        Raises:
            AuthenticationError: missing, unknown, expired, or not a staff token.
        """
        if not token or not token.startswith(STAFF_TOKEN_PREFIX):
            raise AuthenticationError("a staff token is required (log in at POST /api/auth/login)")
        user = self.repo.user_for_token(token_hash(token), datetime.now(UTC))
        if user is None:
            raise AuthenticationError("the staff token is invalid or expired")
        return user

    def logout(self, token: str) -> None:
        """Revoke one token."""
        self.repo.revoke_token(token_hash(token))

    def create_user(self, username: str, password: str, roles: list[str], display_name: str | None = None,
                    teams: list[str] | None = None, skills: list[str] | None = None, tier: int = 1) -> StaffUser:
        """Add a staff user with a hashed password."""
        if len(password) < MIN_PASSWORD_CHARS:
            raise ValidationError(f"passwords need at least {MIN_PASSWORD_CHARS} characters")
        return self.repo.create_user(username, hash_password(password), roles, display_name, teams or (),
                                     skills or (), tier)


def identity_signature(secret: str, user_id: str, tier: str | None = None) -> str:
    """What the host app sends as ``user_hash``: hex HMAC-SHA256 of ``user_id`` (or ``user_id\\ntier``)."""
    material = user_id if tier is None else f"{user_id}\n{tier}"
    return hmac.new(secret.encode("utf-8"), material.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_identity(secret: str | None, user_id: str, tier: str | None, user_hash: str | None) -> None:
    """Accept a customer identity from the host app only with a valid signature.

    Raises:
        ValidationError: identities are not configured, or the signature is missing.
        PermissionDeniedError: the signature does not match (never says what was expected).
    """
    if secret is None:
        raise ValidationError("user_id is not accepted: this server has no chat.identity_secret configured")
    if not user_hash:
        raise ValidationError("user_id needs user_hash, the host app's signature of it")
    if not hmac.compare_digest(identity_signature(secret, user_id, tier), user_hash.strip().lower()):
        raise PermissionDeniedError("user_hash does not match user_id")

