// Kasify host dashboard: confirmations, live updates over server-sent events, copy buttons.
// Pages work without it; it only adds. Hand-written, no framework, no build step.
(function () {
  "use strict";

  // Forms marked data-confirm ask first. The server asks again on its own page when this
  // script does not run, so the "confirm" field is what it checks.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question) {
      if (!window.confirm(question)) {
        event.preventDefault();
        return;
      }
      var field = form.querySelector('input[name="confirm"]');
      if (!field) {
        field = document.createElement("input");
        field.type = "hidden";
        field.name = "confirm";
        form.appendChild(field);
      }
      field.value = "yes";
    }
    var button = form.querySelector('button[type="submit"]');
    if (button) button.setAttribute("aria-busy", "true");
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button || !navigator.clipboard) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
    });
  });

  var url = document.body.getAttribute("data-stream");
  if (!url || !window.EventSource) return;
  var status = document.querySelector("[data-live-status]");
  var waiting = {}; // fragments that arrived while the user was working inside them

  function say(text) {
    if (status) status.textContent = text;
  }

  // Replace a live fragment, unless focus is inside it: pulling a field from under the user
  // would lose what they are typing. It is swapped in once focus leaves.
  function swap(id, html) {
    var target = document.getElementById(id);
    if (!target) return;
    if (target.contains(document.activeElement) && document.activeElement !== document.body) {
      waiting[id] = html;
      return;
    }
    var open = [];
    target.querySelectorAll("details[open][id]").forEach(function (d) { open.push(d.id); });
    target.innerHTML = html;
    open.forEach(function (id) {
      var details = document.getElementById(id);
      if (details) details.open = true;
    });
    delete waiting[id];
  }

  document.addEventListener("focusout", function () {
    window.setTimeout(function () {
      Object.keys(waiting).forEach(function (id) { swap(id, waiting[id]); });
    }, 0);
  });

  // Put a new activity entry in its place (newest first), once, and keep the list short.
  function addEntry(html) {
    var feed = document.getElementById("feed");
    if (!feed) return;
    var holder = document.createElement("ol");
    holder.innerHTML = html.trim();
    var entry = holder.firstElementChild;
    if (!entry || document.getElementById(entry.id)) return;
    var key = entry.getAttribute("data-sort");
    var before = null;
    for (var item = feed.firstElementChild; item; item = item.nextElementSibling) {
      if ((item.getAttribute("data-sort") || "") < key) {
        before = item;
        break;
      }
    }
    feed.insertBefore(entry, before);
    entry.classList.add("new");
    var limit = parseInt(feed.getAttribute("data-limit"), 10) || 30;
    while (feed.children.length > limit) feed.removeChild(feed.lastElementChild);
    var empty = document.getElementById("feed-empty");
    if (empty) empty.remove();
  }

  var source = new EventSource(url);
  source.addEventListener("open", function () { say("Live updates on"); });
  source.addEventListener("error", function () {
    say(source.readyState === EventSource.CLOSED
      ? "Live updates stopped. Reload the page."
      : "Reconnecting…");
  });
  source.addEventListener("activity", function (event) { addEntry(event.data); });
  ["overview", "attention", "locks", "bookings", "crew"].forEach(function (name) {
    source.addEventListener(name, function (event) { swap(name, event.data); });
  });
  source.addEventListener("ended", function (event) {
    source.close();
    say(event.data || "Live updates stopped. Reload the page.");
  });
})();
