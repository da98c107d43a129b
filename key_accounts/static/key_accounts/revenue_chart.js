/* The customer 360 page's monthly revenue chart (Chart.js, served from node_modules).
   Data comes from a json_script element named by the canvas's data-chart-source, and the
   dataset labels from its data-label-* attributes, so the page needs no inline script. */
(function () {
  "use strict";

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chartSource);
    if (!source || typeof Chart === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    canvas.chart = new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          {label: canvas.dataset.labelRevenue, data: data.revenue, backgroundColor: "rgba(13, 110, 253, 0.7)"},
          {label: canvas.dataset.labelArrears, data: data.arrears, backgroundColor: "rgba(220, 53, 69, 0.7)"}
        ]
      },
      options: {
        responsive: true,
        maintainAspectRatio: true,
        aspectRatio: window.innerWidth < 576 ? 1.3 : 2,  // taller on a phone
        animation: false,
        scales: {y: {beginAtZero: true}},
        plugins: {legend: {position: "bottom"}}
      }
    });
    canvas.dataset.chartReady = "true";
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-chart-source]").forEach(function (canvas) {
      if (!canvas.chart) {
        draw(canvas);
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
  document.addEventListener("htmx:afterSwap", drawAll);
})();
