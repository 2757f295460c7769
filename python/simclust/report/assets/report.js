(function () {
  "use strict";
  var config = {displaylogo: false, responsive: true};
  var plots = document.querySelectorAll("div.plot[data-spec]");
  Array.prototype.forEach.call(plots, function (div) {
    var spec = JSON.parse(document.getElementById(div.getAttribute("data-spec")).textContent);
    Plotly.newPlot(div, spec.data, spec.layout, config).then(function (gd) {
      gd.on("plotly_click", function (ev) {
        if (!ev || !ev.points || !ev.points.length) { return; }
        var p = ev.points[0];
        var id = (p.customdata !== undefined && p.customdata !== null) ? p.customdata : p.x;
        var target = document.getElementById("cluster-" + id);
        if (target) { target.scrollIntoView(); }
      });
    });
  });
})();
