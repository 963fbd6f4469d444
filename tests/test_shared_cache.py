"""One cache for every web process (issue 9). allauth remembers used TOTP codes
and counts failed sign-ins in Django's cache; with a cache per process, gunicorn's
three workers each accepted the same code once and each allowed five wrong
passwords. Here three web processes (gunicorn, one worker each) serve the test
database, every request goes on a new connection to the next process in turn
(the response names it), and the shared caches are tried both: Redis
(production) and the database table (the demo)."""

import os
import subprocess
import sys
import time

import pytest
from django.db import connection
from django.urls import reverse

from tests.conftest import TOTP_SECRET, give_totp
from tests.workers import ROOT, Answer, Visitor, Web, database_url

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a long test password"
CODE_STEP = reverse("mfa_authenticate")
WRONG_PASSWORD = "The email address and/or password you specified are not correct."
WRONG_CODE = "Incorrect code."
USED_CODE = "This code was already used."
LOCKED = "Too many failed login attempts."


def redis_cache_url() -> str:
    url = os.environ.get("CACHE_URL", "")
    if not url.startswith("redis://"):
        pytest.skip("no test Redis cache (scripts/test.sh sets CACHE_URL)")
    return url  # the one this process clears between tests


def create_cache_table() -> None:
    """The demo's step: manage.py createcachetable, here in the test database."""
    subprocess.run(
        [sys.executable, "manage.py", "createcachetable"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url(), "CACHE_URL": "db://"},
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="module", params=["redis", "database"])
def web(request, django_db_setup):
    if request.param == "redis":
        cache_url = redis_cache_url()
    else:
        cache_url = "db://"
        create_cache_table()
    started = Farm(env={"CACHE_URL": cache_url, "DJANGO_DEBUG": "false"})
    started.cache_url = cache_url
    try:
        yield started.wait_ready()
    finally:
        started.stop()


class Farm:
    """Three web processes against the test database, as gunicorn's three
    workers would be: separate memory, one cache setting. Each is a gunicorn
    with one worker on its own port, and requests go to them in turn, so every
    process answers whatever the kernel would do with a shared socket (one
    busy worker can take every connection)."""

    def __init__(self, env: dict) -> None:
        self.webs = [Web(workers=1, env=env, name=f"gunicorn-{i}") for i in range(3)]
        self._turn = 0

    def wait_ready(self) -> "Farm":
        for web in self.webs:
            web.wait_ready()
        return self

    def stop(self) -> None:
        for web in self.webs:
            web.stop()

    @property
    def pids(self) -> set[str]:
        return set().union(*(web.pids for web in self.webs))

    def next_port(self) -> int:
        self._turn += 1
        return self.webs[self._turn % len(self.webs)].port


@pytest.fixture(autouse=True)
def _empty_cache_table(web):
    """The Redis keys go between tests (conftest); a flush leaves the
    database cache's table alone."""
    if web.cache_url == "db://":
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM opsgate_cache")


def verdict(answer: Answer) -> str:
    if answer.status == 302:
        return "accepted"
    if answer.status == 429:  # allauth's 30 sign-ins a minute per address
        return "locked"
    for message, name in (
        (LOCKED, "locked"),
        (WRONG_CODE, "wrong code"),
        (USED_CODE, "used code"),
        (WRONG_PASSWORD, "wrong password"),
    ):
        if message in answer.text:
            return name
    return f"HTTP {answer.status}"


def code_with_time_left(seconds: int) -> tuple[str, int]:
    """The current TOTP code of TOTP_SECRET and its 30-second step, from a
    step with at least `seconds` left (allauth accepts only the current one)."""
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

    if 30 - time.time() % 30 < seconds:
        time.sleep(30 - time.time() % 30 + 0.1)
    step = int(time.time()) // 30
    return format_hotp_value(hotp_value(TOTP_SECRET, step)), step


def test_a_totp_code_signs_in_once_whichever_worker_answers(web, carol):
    carol.user.set_password(PASSWORD)
    carol.user.save()
    give_totp(carol.user)
    # Four sign-ins wait at the code step (a per-process cache would let the
    # code through on each of the three workers).
    waiting = [Visitor(web) for _ in range(4)]
    for visitor in waiting:
        answer = visitor.sign_in("carol@example.com", PASSWORD)
        assert answer.location == CODE_STEP, verdict(answer)

    code, step = code_with_time_left(10)
    answers: list[tuple[str, str]] = []  # (worker, verdict)
    while waiting and {pid for pid, _ in answers} != web.pids and len(answers) < 40:
        answer = waiting[0].request("POST", CODE_STEP, {"code": code})
        answers.append((answer.pid, verdict(answer)))
        if answer.status == 302:
            waiting.pop(0)
    assert int(time.time()) // 30 == step, "the code's 30 seconds ran out"

    assert {pid for pid, _ in answers} == web.pids, answers
    accepted = [pid for pid, v in answers if v == "accepted"]
    assert len(accepted) == 1, answers
    assert {v for _, v in answers} <= {"accepted", "used code", "locked"}, answers
    # Refused as used by a worker that did not accept it, and said so.
    assert any(pid != accepted[0] and v == "used code" for pid, v in answers)


def test_the_sixth_wrong_password_is_refused_whichever_worker_answers(web, carol):
    carol.user.set_password(PASSWORD)
    carol.user.save()
    answers: list[tuple[str, str]] = []
    while len(answers) < 40:
        answer = Visitor(web).sign_in("carol@example.com", "not the password")
        answers.append((answer.pid, verdict(answer)))
        if len(answers) > 5 and {pid for pid, _ in answers[5:]} == web.pids:
            break
    verdicts = [v for _, v in answers]
    assert verdicts[:5] == ["wrong password"] * 5, verdicts
    assert set(verdicts[5:]) == {"locked"}, verdicts
    assert {pid for pid, _ in answers[5:]} == web.pids

    # The right password is refused too until the lock ends.
    right = Visitor(web).sign_in("carol@example.com", PASSWORD)
    assert verdict(right) == "locked"
