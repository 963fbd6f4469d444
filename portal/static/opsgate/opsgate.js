/* opsgate: copy buttons and live request status. Vanilla, no dependencies. */
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.innerText).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // A table wider than its box scrolls inside it: keyboard users must be able
  // to reach it (focus it, then the arrow keys scroll).
  function scrollableTables() {
    Array.prototype.forEach.call(document.querySelectorAll(".table-wrap"), function (box) {
      if (box.scrollWidth > box.clientWidth) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        if (!box.hasAttribute("aria-label")) box.setAttribute("aria-label", "Table (scrolls sideways)");
      } else if (box.getAttribute("tabindex") === "0") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
      }
    });
  }
  scrollableTables();
  window.addEventListener("resize", scrollableTables);

  // Forms that end access ask first.
  document.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) ||
      event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // "My access" polls its status endpoint every 2 s while a request is pending
  // or being provisioned, updates the badges, and reloads once one becomes
  // active (to show its connection instructions) or fails.
  var section = document.querySelector("[data-status-url]");
  if (!section) return;
  var url = section.getAttribute("data-status-url");

  // A grant's readiness check runs on the worker: while one is "checking",
  // poll the same endpoint and reload once its outcome is in (issue 25).
  function pollReadiness() {
    var checking = document.querySelectorAll('[data-readiness="checking"]');
    if (!checking.length) return;
    var ids = Array.prototype.map.call(checking, function (el) {
      return el.getAttribute("data-readiness-id");
    });
    fetch(url + "?ids=" + ids.join(","), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        var done = data && ids.some(function (id) {
          var s = data.requests[id];
          return s && s.readiness !== "checking";
        });
        if (done) { window.location.reload(); return; }
        setTimeout(pollReadiness, 2000);
      })
      .catch(function () { setTimeout(pollReadiness, 5000); });
  }
  setTimeout(pollReadiness, 2000);
  var MOVING = ["pending", "provisioning"];

  function moving() {
    return Array.prototype.filter.call(
      document.querySelectorAll("[data-request-id]"),
      function (el) { return MOVING.indexOf(el.getAttribute("data-state")) >= 0; }
    );
  }

  function poll() {
    var rows = moving();
    if (!rows.length) return;
    var ids = rows.map(function (el) { return el.getAttribute("data-request-id"); });
    fetch(url + "?ids=" + ids.join(","), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) return;
        var reload = false;
        rows.forEach(function (el) {
          var s = data.requests[el.getAttribute("data-request-id")];
          if (!s || s.key === el.getAttribute("data-state")) return;
          // A change of state can change the row's controls (a rejected
          // request has no Cancel) and its note (who decided, why): reload.
          if (el.classList.contains("grant") || s.final || s.key === "provisioning") reload = true;
          el.setAttribute("data-state", s.key);
          var badge = el.querySelector("[data-badge]");
          if (badge) { badge.textContent = s.label; badge.className = "badge badge-" + s.key; }
        });
        if (reload) { window.location.reload(); return; }
        setTimeout(poll, 2000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
