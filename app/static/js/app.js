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

// A secret shown once (API key, webhook secret): copy it to the clipboard, or hide it for good.
document.addEventListener("click", function (event) {
  var copy = event.target.closest("[data-copy]");
  if (copy) {
    var field = document.querySelector(copy.getAttribute("data-copy"));
    if (!field) { return; }
    field.select();
    var done = function () { copy.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        copy.textContent = "Select and copy it by hand";
      });
    } else {
      copy.textContent = "Selected: press Ctrl+C";
    }
    return;
  }
  var dismiss = event.target.closest("[data-dismiss]");
  if (dismiss) {
    var panel = document.querySelector(dismiss.getAttribute("data-dismiss"));
    if (panel) { panel.remove(); }
  }
});

// Usage charts: a <canvas data-usage-chart="ID"> with its data as JSON in <script id="ID">.
// Chart.js is loaded the first time a chart appears, on a full page load or after an htmx swap.
var chartLibrary = null;
function loadChartLibrary(src) {
  if (window.Chart) { return Promise.resolve(window.Chart); }
  if (!chartLibrary) {
    chartLibrary = new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = src;
      script.onload = function () { resolve(window.Chart); };
      script.onerror = function () { chartLibrary = null; reject(new Error("Chart.js did not load")); };
      document.head.appendChild(script);
    });
  }
  return chartLibrary;
}

// A chart whose JSON names its own series: {type, labels, stacked, datasets: [{label, data, color}]}.
function seriesChart(data) {
  var stacked = !!data.stacked;
  return {
    type: data.type || "bar",
    data: {
      labels: data.labels,
      datasets: data.datasets.map(function (d) {
        return { label: d.label, data: d.data, backgroundColor: d.color, borderColor: d.color, tension: 0.2 };
      })
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: { x: { stacked: stacked }, y: { stacked: stacked, beginAtZero: true, ticks: { precision: 0 } } }
    }
  };
}

function drawUsageCharts(root) {
  var scope = root && root.querySelectorAll ? root : document;
  var canvases = Array.prototype.slice.call(scope.querySelectorAll("canvas[data-usage-chart]"));
  if (scope.matches && scope.matches("canvas[data-usage-chart]")) { canvases.push(scope); }
  canvases.forEach(function (canvas) {
    var source = document.getElementById(canvas.getAttribute("data-usage-chart"));
    if (!source || canvas.dataset.drawn) { return; }
    canvas.dataset.drawn = "1";
    var data = JSON.parse(source.textContent);
    loadChartLibrary(canvas.getAttribute("data-chart-src")).then(function (Chart) {
      if (!canvas.isConnected) { return; }
      if (data.datasets) { new Chart(canvas, seriesChart(data)); return; }
      new Chart(canvas, {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: [
            { label: "Requests", data: data.requests, backgroundColor: "#1e88e5" },
            { label: "Errors", data: data.errors, backgroundColor: "#c62828" }
          ]
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          scales: { x: { stacked: false }, y: { beginAtZero: true, ticks: { precision: 0 } } }
        }
      });
    }).catch(function () { canvas.replaceWith(document.createTextNode("The chart could not be drawn; the table below has the figures.")); });
  });
}

// htmx:load fires for the page's body when htmx starts and for every piece of swapped-in content.
document.addEventListener("htmx:load", function (event) { drawUsageCharts(event.detail.elt); });
document.addEventListener("DOMContentLoaded", function () { drawUsageCharts(document); });
