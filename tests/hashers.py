"""The tests' password hasher: PBKDF2-SHA256 as deployed (same algorithm and
encoding, `pbkdf2_sha256$<iterations>$<salt>$<hash>`) with 1,000 iterations
instead of Django's 1,000,000. A hash costs about 0.4 s of CPU on the test
machine at the full count, and the suite sets, checks and refuses passwords
hundreds of times (browser sign-ins, lockouts, Django's dummy hash for unknown
logins). Deployed settings keep Django's default; a hash made here still
verifies there (the count is part of the hash)."""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class QuickPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 1_000


def install(settings) -> None:
    """Put it first in `settings.PASSWORD_HASHERS` (this process's hashers are
    looked up once and cached: call before the first hash)."""
    name = f"{__name__}.{QuickPBKDF2PasswordHasher.__name__}"
    if settings.PASSWORD_HASHERS[:1] != [name]:
        settings.PASSWORD_HASHERS = [name, *settings.PASSWORD_HASHERS]
