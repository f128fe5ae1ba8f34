"""The API's bearer token: where it comes from and how a request proves it.

The token is read once at start-up from ``$FARM_API_TOKEN`` or the configured token
file, compared in constant time, and never logged or echoed back.
"""

from __future__ import annotations

import hmac
import os
import stat
from pathlib import Path

from fastapi import HTTPException, Request, status

from farm.config import FarmConfig
from farm.errors import UserError

TOKEN_ENV = "FARM_API_TOKEN"  # noqa: S105 - the variable's name, not a secret
MIN_TOKEN_LENGTH = 16
_NEW_TOKEN_HINT = (
    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > {path} && chmod 600 {path}"  # noqa: S105 - a command
)


def token_file(config: FarmConfig) -> Path:
    return config.api.token_file or config.data_dir / "api-token"


def load_token(config: FarmConfig) -> str:
    """The token from the environment, else from the token file; a UserError if neither."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    source = f"${TOKEN_ENV}"
    if not token:
        path = token_file(config)
        source = str(path)
        hint = _NEW_TOKEN_HINT.format(path=path)
        try:
            mode = path.stat().st_mode
            token = path.read_text().strip()
        except FileNotFoundError:
            raise UserError(
                f"farm api needs a bearer token: ${TOKEN_ENV} is unset and {path} does not exist",
                hint=hint,
            ) from None
        except OSError as exc:
            raise UserError(f"cannot read the API token file {path}: {exc.strerror}") from exc
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UserError(
                f"the API token file {path} is readable by others (mode {mode & 0o777:o})",
                hint=f"chmod 600 {path}",
            )
    if len(token) < MIN_TOKEN_LENGTH:
        raise UserError(
            f"the API token from {source} is too short ({len(token)} characters, "
            f"need at least {MIN_TOKEN_LENGTH})",
            hint=_NEW_TOKEN_HINT.format(path=token_file(config)),
        )
    return token


def require_token(request: Request) -> None:
    """FastAPI dependency: 401 unless ``Authorization: Bearer <the token>``."""
    expected: str = request.app.state.token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    valid = scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected.encode()
    )
    if not valid:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
