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

// A button marked data-copy="ID" copies that element's text (the paper page's citation). It
// is hidden until this script runs; where the clipboard is not allowed (plain http on another
// host) it selects the text instead, for the visitor to copy.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) button.hidden = false;
});
document.addEventListener("click", (event) => {
  const button = event.target.closest?.("button[data-copy]");
  const source = button && document.getElementById(button.dataset.copy);
  if (!source) return;
  const select = () => window.getSelection()?.selectAllChildren(source);
  if (!navigator.clipboard) return select();
  navigator.clipboard.writeText(source.textContent).then(
    () => { button.textContent = "Copied"; },
    select,
  );
});

// A form marked data-reset-after-post (the comment form) empties itself once its post
// succeeds, and the "no comments yet" line goes.
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt;
  if (!event.detail.successful || !form.matches("form[data-reset-after-post]")) return;
  form.reset();
  document.querySelector(".no-comments")?.remove();
});

// A form marked data-submit-once (deleting a comment) sends one request however often its
// button is clicked: the second click of a double-click would otherwise land on "not found".
document.addEventListener("submit", (event) => {
  const form = event.target.closest?.("form[data-submit-once]");
  if (!form) return;
  if (form.dataset.sent) return event.preventDefault();
  form.dataset.sent = "1";
});
