// An operation's live log: events from the console's SSE stream appended to the page's list.
// Event text is data from the server: written with textContent only, never as HTML.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  var state = document.getElementById("live-state");
  var log = document.getElementById("operation-log");
  if (!state || !log || !state.dataset.stream || typeof EventSource === "undefined") {
    return;
  }
  var say = function (text) {
    state.textContent = text || "";
  };
  var source = new EventSource(state.dataset.stream);
  say(state.dataset.connecting);

  source.onopen = function () {
    say(state.dataset.connecting);
  };
  source.onerror = function () {
    // EventSource reconnects by itself, sending the Last-Event-ID it reached.
    if (source.readyState !== EventSource.CLOSED) {
      say(state.dataset.lost);
    }
  };
  source.onmessage = function (message) {
    var event;
    try {
      event = JSON.parse(message.data);
    } catch (ignored) {
      return;
    }
    var item = document.createElement("li");
    item.className = "event event-" + String(event.level || "info").replace(/[^a-z]/g, "");
    var when = document.createElement("time");
    when.dateTime = String(event.at || "");
    when.textContent = new Date(event.at).toLocaleString(document.documentElement.lang === "km" ? "km-KH" : "en-GB");
    item.appendChild(when);
    item.appendChild(document.createTextNode(" "));
    if (event.step) {
      var step = document.createElement("span");
      step.className = "event-step";
      step.textContent = String(event.step);
      item.appendChild(step);
      item.appendChild(document.createTextNode(" "));
    }
    var text = document.createElement("span");
    text.className = "event-message";
    text.textContent = String(event.message || event.type || "");
    item.appendChild(text);
    log.appendChild(item);
    say(state.dataset.connecting);
  };
  source.addEventListener("end", function () {
    source.close();
    say(state.dataset.finished);
    // The status and steps above are the server's to render: load the page again for them.
    window.setTimeout(function () {
      window.location.reload();
    }, 1000);
  });
  source.addEventListener("unauthorized", function () {
    source.close();
    say(state.dataset.refused);
  });
});
