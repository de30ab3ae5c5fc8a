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
