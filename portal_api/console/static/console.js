// The console's own script. No inline script anywhere (the CSP forbids it): behaviour lives here.
"use strict";

// Every htmx request carries the page's CSRF token, as forms carry it in a hidden field.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) {
    event.detail.headers["X-CSRF-Token"] = meta.getAttribute("content");
  }
});

// htmx does not swap error responses; show the server's error page in place of the target.
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  if (status >= 400 && status < 600 && status !== 204) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
