// Ask before htmx sends a request whose element carries hx-confirm (htmx does this itself);
// here only: keep the CSRF header fresh if the meta tag is replaced by a swap.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) { event.detail.headers["X-CSRFToken"] = meta.content; }
});

// A refused htmx request (403, 404, 409...) is not swapped into its target; show the server's
// explanation in the flash area instead, so the click never fails silently.
document.addEventListener("htmx:responseError", function (event) {
  var flash = document.getElementById("flash");
  if (flash) { flash.innerHTML = event.detail.xhr.responseText; }
});
