// Every script of the site lives here: the Content-Security-Policy allows no inline script or
// handler, so templates mark elements with data- attributes and this file gives them behaviour.

// Shows why an htmx request failed (rate limit, expired session) in the status line.
document.addEventListener("htmx:responseError", (event) => {
  const line = document.getElementById("status-line");
  if (!line) return;
  const text = event.detail.xhr.responseText || "";
  let message = text.length < 300 ? text : "";
  try { message = JSON.parse(text).detail || message; } catch (_) { /* plain text */ }
  line.textContent = message || `Request failed (${event.detail.xhr.status}).`;
  line.hidden = false;
});

// A form marked data-reset-after-post (the comment form) empties itself once its post
// succeeds, and the "no comments yet" line goes.
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt;
  if (!event.detail.successful || !form.matches("form[data-reset-after-post]")) return;
  form.reset();
  document.querySelector(".no-comments")?.remove();
});
