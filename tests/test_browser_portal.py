"""Issue 14 in a real browser: every main page passes axe-core with no
serious or critical violation and fits a phone's width (390 px) without the
page scrolling sideways; the live row of a rejected request loses its Cancel
button; the admin tasks (edit a project, offboard with confirmation) work
with the keyboard and the CSP on."""

import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe

from accounts_app.models import AccessRequest, IamUserState, RequestStatus
from accounts_app.services import access_requests
from provisioning import sync
from tests import test_browser
from tests.conftest import give_totp
from tests.test_browser import PHONE, shot, sign_in, with_password

# The browser fixtures of test_browser.py (Debian's chromium; every test fails
# on a CSP violation).
browser_type_launch_args = test_browser.browser_type_launch_args
browser = test_browser.browser

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 800}
# Every page the axe test visits, under var/ (not the README's folder) …
A11Y_SHOTS = Path(__file__).resolve().parents[1] / "var/test/screenshots/a11y"
# … and the few the README shows.
README_SHOTS = {
    ("phone", "approvals"): "approvals-phone",
    ("desktop", "projects-n-edit"): "project-edit",
    ("desktop", "people-n-offboard"): "offboard",
    ("phone", "projects"): "projects-phone",
}
BLOCKING = {"serious", "critical"}
AXE = Axe()


def axe_problems(page) -> list[str]:
    found = AXE.run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(n["target"][0] for n in v["nodes"][:3])
        for v in found
        if v["impact"] in BLOCKING
    ]


def overflow(page) -> int:
    """How many pixels the page is wider than the window (0: it fits)."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def world(alice, bob, carol, dave, deploy_role):
    for person in (alice, bob, carol, dave):
        with_password(person)
    give_totp(alice.user), give_totp(bob.user)
    grant = access_requests.access_request_approve(
        access_request=access_requests.access_request_create(
            requester=carol,
            role=deploy_role,
            reason="INC-7 restart the payment workers",
            duration_hours=8,
            actor=carol.user,
        ),
        approver=bob.user,
        comment="go ahead",
    )
    sync.role_sync(role_id=deploy_role.pk)
    access_requests.access_request_create(
        requester=dave,
        role=deploy_role,
        reason="Deploy release 2.3.1-with-a-very-long-identifier-name",
        duration_hours=8,
        actor=dave.user,
    )
    return grant


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_every_main_page_passes_axe_and_fits_the_width(
    aws_env, live_server, browser, alice, bob, carol, dave, deploy_role, size
):
    world(alice, bob, carol, dave, deploy_role)
    viewport = DESKTOP if size == "desktop" else PHONE
    project, role = deploy_role.project_id, deploy_role.pk
    visits = {
        None: ["/accounts/login/", "/accounts/password/reset/"],
        "carol@example.com": ["/", f"/request/?project={project}"],
        "bob@example.com": ["/approvals/", "/approvals/decided/"],
        "alice@example.com": [
            "/dashboard/",
            "/people/",
            "/people/add",
            f"/people/{carol.pk}/",
            f"/people/{carol.pk}/offboard",
            "/projects/",
            f"/projects/{project}/",
            f"/projects/{project}/edit",
            f"/projects/{project}/settings",
            f"/roles/{role}/edit",
            "/audit/",
            "/drift/",
        ],
    }
    A11Y_SHOTS.mkdir(parents=True, exist_ok=True)
    problems = []
    for who, paths in visits.items():
        if who is None:
            page = browser.new_context(viewport=viewport).new_page()
        else:
            page = sign_in(
                browser,
                live_server,
                who,
                totp=who != "carol@example.com",
                viewport=viewport,
            )
        for path in paths:
            response = page.goto(live_server.url + path)
            assert response.status == 200, path
            problems += [f"{path} [{size}]: {p}" for p in axe_problems(page)]
            if size == "phone":
                wider = overflow(page)
                if wider > 0:
                    problems.append(f"{path} [phone]: {wider} px wider than 390")
            name = re.sub(r"\d+", "n", path.strip("/").lower())
            name = re.sub(r"[^a-z]+", "-", name).strip("-") or "home"
            page.screenshot(path=str(A11Y_SHOTS / f"{size}-{name}.png"), full_page=True)
            if (size, name) in README_SHOTS:
                shot(page, README_SHOTS[(size, name)])
    assert not problems, "\n".join(problems)


def test_a_row_that_turns_rejected_live_loses_its_cancel_button(
    live_server, browser, bob, carol, deploy_role
):
    from playwright.sync_api import expect

    with_password(carol)
    req = access_requests.access_request_create(
        requester=carol,
        role=deploy_role,
        reason="curious",
        duration_hours=8,
        actor=carol.user,
    )
    page = sign_in(browser, live_server, "carol@example.com", viewport=PHONE)
    row = page.locator(f"tr[data-request-id='{req.pk}']")
    expect(row.get_by_role("button", name=re.compile("Cancel"))).to_be_visible()
    access_requests.access_request_reject(
        access_request=req, approver=bob.user, comment="use the readonly role"
    )
    expect(row.locator("[data-badge]")).to_have_text("Rejected", timeout=10_000)
    expect(row.get_by_role("button", name=re.compile("Cancel"))).to_have_count(0)
    expect(row).to_contain_text("Rejected by bob: “use the readonly role”")
    shot(page, "phone-rejected")


def test_admin_edits_a_project_and_offboards_with_the_keyboard(
    aws_env, live_server, browser, alice, bob, carol, erin, deploy_role
):
    from playwright.sync_api import expect

    grant = world(alice, bob, carol, erin, deploy_role)
    page = sign_in(browser, live_server, "alice@example.com", totp=True)
    page.goto(f"{live_server.url}/projects/{deploy_role.project_id}/")
    page.get_by_role("link", name=re.compile("Edit approvers")).focus()
    page.keyboard.press("Enter")
    approvers = page.get_by_role("textbox", name="Approvers")
    approvers.fill("bob, erin@example.com")
    page.get_by_role("button", name="Save project").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").first).to_contain_text("saved")
    assert set(deploy_role.project.approvers.values_list("username", flat=True)) == {
        "bob",
        "erin",
    }

    page.goto(f"{live_server.url}/people/{carol.pk}/")
    page.get_by_role("link", name="Offboard…").click()
    expect(page.locator("main")).to_contain_text("1 active grant revoked")
    page.get_by_label("Reason").fill("left the company")
    page.get_by_role("button", name="Offboard carol").click()  # not confirmed
    expect(page.locator("main")).to_contain_text("Tick the box to confirm.")
    carol.refresh_from_db()
    assert carol.state == IamUserState.ACTIVE
    page.get_by_label(re.compile("I understand")).check()
    page.get_by_role("button", name="Offboard carol").click()
    expect(page.get_by_role("status").first).to_contain_text("Offboarded carol")
    grant = AccessRequest.objects.get(pk=grant.pk)
    assert grant.status == RequestStatus.REVOKED and grant.ended_by == alice.user
    shot(page, "offboarded")


def tab_to(page, name: str, limit: int = 60) -> None:
    """Press Tab until the focused element's text, label or value starts with
    `name` (a keyboard user's walk; fails when it is never reached)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
              const el = document.activeElement;
              const label = el.labels && el.labels[0] ? el.labels[0].innerText : "";
              return (el.getAttribute("aria-label") || label || el.innerText
                      || el.value || "").trim();
            }"""
        )
        if focused.startswith(name):
            return
    raise AssertionError(f"Tab never reached {name!r}")


def test_request_and_approve_with_the_keyboard_only(
    aws_env, live_server, browser, bob, carol, deploy_role
):
    from playwright.sync_api import expect

    with_password(bob), with_password(carol)
    give_totp(bob.user)
    page = sign_in(browser, live_server, "carol@example.com")
    tab_to(page, "Request access")
    page.keyboard.press("Enter")
    page.wait_for_url("**/request/")
    tab_to(page, "Project")
    page.keyboard.press("ArrowDown")  # the first project
    tab_to(page, "Next")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/request/\?project="))
    tab_to(page, "Reason")
    page.keyboard.type("INC-9 keyboard only")
    tab_to(page, "Send request")
    page.keyboard.press("Enter")
    expect(page.locator("[data-request-id] [data-badge]").first).to_have_text(
        "Waiting for approval"
    )
    req = AccessRequest.objects.get()
    assert req.reason == "INC-9 keyboard only" and req.requester == carol

    approver = sign_in(browser, live_server, "bob@example.com", totp=True)
    tab_to(approver, "Approvals")
    approver.keyboard.press("Enter")
    approver.wait_for_url("**/approvals/")
    tab_to(approver, "Comment")
    approver.keyboard.type("fine")
    tab_to(approver, "Approve")
    approver.keyboard.press("Enter")
    expect(approver.get_by_role("status").first).to_contain_text("Approved carol")
    req.refresh_from_db()
    assert req.status == RequestStatus.APPROVED and req.decision_comment == "fine"


def one_line(page, selector: str) -> dict[str, float]:
    """The elements matching selector that take more than one line, by text:
    taller than the same element holding one word."""
    return page.evaluate(
        """(selector) => {
          const found = {};
          for (const el of document.querySelectorAll(selector)) {
            const words = el.textContent.trim();
            const height = el.getBoundingClientRect().height;
            el.textContent = "x";
            const single = el.getBoundingClientRect().height;
            el.textContent = words;
            if (height > single * 1.5) found[words] = height;
          }
          return found;
        }""",
        selector,
    )


def test_an_admins_menu_never_breaks_a_label_over_two_lines(
    live_server, browser, alice
):
    # Ten links and the e-mail do not fit in 1,280 px: the menu wraps between
    # links, never inside "Request access" or "AWS accounts".
    with_password(alice), give_totp(alice.user)
    page = sign_in(
        browser, live_server, "alice@example.com", totp=True, viewport=DESKTOP
    )
    for width in (1280, 1024):
        page.set_viewport_size({"width": width, "height": 800})
        page.goto(f"{live_server.url}/people/")
        links = page.locator(".topbar nav a")
        assert links.count() >= 9  # the admin's whole menu
        assert one_line(page, ".topbar nav a") == {}, width


def test_status_badges_stay_on_one_line_in_narrow_columns(
    live_server, browser, alice, bob, carol, dave, deploy_role
):
    # The people list's last column read "In / sync" in a pill two lines tall.
    world(alice, bob, carol, dave, deploy_role)
    page = sign_in(
        browser, live_server, "alice@example.com", totp=True, viewport=DESKTOP
    )
    page.set_viewport_size({"width": 1024, "height": 800})
    for path in ("/people/", "/dashboard/", f"/projects/{deploy_role.project_id}/"):
        page.goto(live_server.url + path)
        assert page.locator("main .badge").count() > 0, path
        assert one_line(page, "main .badge") == {}, path
