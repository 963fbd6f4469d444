"""How the CLI shows a grant's readiness (issue 25): the state after the
request's line, and each failed check with what to do under it."""


def _ready(r: dict) -> str:
    """", Ready (in 42 s)" / ", Not ready" / ", checking readiness" for an
    active grant whose readiness is known."""
    ready = r.get("readiness") or {}
    state = ready.get("state")
    if state == "ready":
        took = ready.get("seconds_to_ready")
        return ", Ready" + (f" ({took} s after approval)" if took is not None else "")
    if state == "not_ready":
        return ", Not ready"
    if state == "checking":
        return ", checking readiness"
    return ""


def _failed_checks(r: dict) -> str:
    """Each failed check with what to do, indented under the request's line."""
    lines = []
    for check in (r.get("readiness") or {}).get("failed", []):
        lines.append(f"  ✗ {check['title']}: {check['message']}")
        if check.get("fix"):
            lines.append(f"    What to do: {check['fix']}")
        if check.get("link"):
            lines.append(f"    {check['link']}")
        for row in check.get("rows", []):
            if row["state"] != "ready":
                lines.append(
                    f"    {row['instance_id']} ({row['region']}): {row['state']}. "
                    f"{row['message']}"
                )
    return "\n".join(lines)
