"""The sandbox's access tokens: RS256 JWTs signed with its own key (PyJWT),
with the key ID in the header as Entra ID puts it (kid and x5t)."""

from __future__ import annotations

import jwt

# Only the signature is checked here; each service checks audience, expiry
# and roles itself, to answer with its own error.
_SIGNATURE_ONLY = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
                   "verify_iss": False, "verify_sub": False, "verify_jti": False}


class TokenError(Exception):
    """A token the sandbox did not issue, or one it cannot accept."""


def sign_jwt(claims: dict, material) -> str:
    return jwt.encode(claims, material.jwt_key, algorithm="RS256",
                      headers={"kid": material.kid, "x5t": material.kid})


def verify_jwt(token: str, material) -> dict:
    """The claims of a token signed by the sandbox key; raises TokenError."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError("malformed") from exc
    if header.get("alg") != "RS256" or header.get("kid") != material.kid:
        raise TokenError("signature")
    try:
        claims = jwt.decode(token, material.jwt_key.public_key(), algorithms=["RS256"], options=_SIGNATURE_ONLY)
    except jwt.InvalidSignatureError as exc:
        raise TokenError("signature") from exc
    except jwt.PyJWTError as exc:
        raise TokenError("malformed") from exc
    if not isinstance(claims, dict):
        raise TokenError("malformed")
    return claims
