/* Monthly charts of the dashboards and the customer 360 page (Chart.js, served from node_modules).
   Data comes from the json_script element named by each canvas's data-chart-source, the kind of
   chart from its data-chart and the dataset labels from its data-label-* attributes: no inline script. */
(function () {
  "use strict";

  var COLOURS = {
    revenue: "rgba(13, 110, 253, 0.7)", arrears: "rgba(220, 53, 69, 0.7)",
    customers: "rgba(13, 110, 253, 1)", new_customers: "rgba(25, 135, 84, 0.7)", lost_customers: "rgba(220, 53, 69, 0.7)",
    arpu: "rgba(111, 66, 193, 1)", arpa: "rgba(253, 126, 20, 1)",
    holders: "rgba(13, 110, 253, 0.7)", penetration: "rgba(25, 135, 84, 1)"
  };

  function dataset(canvas, data, name, type, axis) {
    var label = canvas.getAttribute("data-label-" + name) || name;
    var set = {label: label, data: data[name], type: type, backgroundColor: COLOURS[name], borderColor: COLOURS[name]};
    if (axis) {
      set.yAxisID = axis;
    }
    return set;
  }

  var KINDS = {
    revenue: function (canvas, data) {
      return {type: "bar", datasets: [dataset(canvas, data, "revenue", "bar"), dataset(canvas, data, "arrears", "bar")]};
    },
    customers: function (canvas, data) {
      return {type: "bar", datasets: [
        dataset(canvas, data, "customers", "line", "y"),
        dataset(canvas, data, "new_customers", "bar", "y1"),
        dataset(canvas, data, "lost_customers", "bar", "y1")
      ], twoAxes: true};
    },
    arpu: function (canvas, data) {
      return {type: "line", datasets: [dataset(canvas, data, "arpu", "line"), dataset(canvas, data, "arpa", "line")]};
    },
    product: function (canvas, data) {
      return {type: "bar", datasets: [dataset(canvas, data, "holders", "bar", "y"), dataset(canvas, data, "penetration", "line", "y1")],
              twoAxes: true};
    }
  };

  function draw(canvas) {
    var source = document.getElementById(canvas.dataset.chartSource);
    var kind = KINDS[canvas.dataset.chart];
    if (!source || !kind || typeof Chart === "undefined") {
      return;
    }
    var data = JSON.parse(source.textContent);
    var spec = kind(canvas, data);
    var scales = {y: {beginAtZero: true, position: "left"}};
    if (spec.twoAxes) {
      scales.y1 = {beginAtZero: true, position: "right", grid: {drawOnChartArea: false}};
    }
    canvas.chart = new Chart(canvas, {
      type: spec.type,
      data: {labels: data.labels, datasets: spec.datasets},
      options: {
        responsive: true,
        maintainAspectRatio: true,
        aspectRatio: window.innerWidth < 576 ? 1.3 : 2,  // taller on a phone
        animation: false,
        scales: scales,
        plugins: {legend: {position: "bottom"}}
      }
    });
    canvas.dataset.chartReady = "true";
  }

  function drawAll() {
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
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
  document.addEventListener("htmx:afterSwap", drawAll);  // parts of a page reloaded by htmx
})();
