/* The QC page's time plots: each <figure class="plot"> holds its data as JSON (made by
   plots.py: every x already on the session axis, null where a line breaks), drawn here by
   uPlot, one chart per row and panel (a stretch of recording). Only glue: options, and the
   draw hooks for what uPlot has no series for (shaded bands, reference lines, the dashed
   cuts of a one-panel axis, the red marks of dropped frames with their count). After
   drawing, <body data-plots="N" data-plots-drawn="N">; a failure, data-plots-error. */
(function () {
  "use strict";
  var body = document.body, charts = [], drawn = 0, Y_AXIS = 64, GAP = 8;

  function fail(message) {
    body.setAttribute("data-plots-error", String(message));
  }
  window.addEventListener("error", function (event) { fail(event.message); });

  // Under the lines (after the grid): bands, rules, cuts. Over them: the marks and counts.
  function decorate(u, row, cuts, colours, over) {
    var ctx = u.ctx, box = u.bbox, r = uPlot.pxRatio;
    var x = function (v) { return u.valToPos(v, "x", true); };
    var vertical = function (at) {
      ctx.beginPath(); ctx.moveTo(x(at), box.top); ctx.lineTo(x(at), box.top + box.height);
      ctx.stroke();
    };
    ctx.save();
    ctx.beginPath(); ctx.rect(box.left, box.top, box.width, box.height); ctx.clip();
    if (!over) {
      ctx.fillStyle = colours.band;
      row.bands.forEach(function (b) {
        ctx.fillRect(x(b[0]), box.top, Math.max(x(b[1]) - x(b[0]), r), box.height);
      });
      ctx.strokeStyle = "#999999"; ctx.lineWidth = r;
      row.rules.forEach(function (y) {
        var at = u.valToPos(y, "y", true);
        ctx.beginPath(); ctx.moveTo(box.left, at); ctx.lineTo(box.left + box.width, at);
        ctx.stroke();
      });
      ctx.strokeStyle = "#888888"; ctx.setLineDash([5 * r, 4 * r]);
      cuts.forEach(vertical);
    } else {
      ctx.strokeStyle = ctx.fillStyle = colours.mark; ctx.lineWidth = 1.5 * r;
      ctx.font = 12 * r + "px sans-serif"; ctx.textBaseline = "top"; ctx.textAlign = "right";
      row.marks.forEach(function (m) {  // the count left of the line: the red dot is right
        vertical(m[0]);
        ctx.fillText(String(m[1]), x(m[0]) - 3 * r, box.top + 2 * r);
      });
    }
    ctx.restore();
  }

  function series(line) {
    var dots = line.dots > 0;
    return {
      label: line.label, stroke: line.colour, width: line.width, spanGaps: false,
      dash: line.dash ? [6 * uPlot.pxRatio, 4 * uPlot.pxRatio] : undefined,
      paths: line.width > 0 ? undefined : function () { return null; },
      points: { show: dots, size: line.dots, width: 0, fill: line.colour, stroke: line.colour },
    };
  }

  function chart(spec, row, p, data, width, key) {
    var first = p === 0, grid = { stroke: "#e6e9ec", width: 1 };
    var y = first ? { label: row.ylabel, labelSize: 22, size: Y_AXIS - 22, grid: grid }
      : { size: 4, grid: grid, ticks: { show: false }, values: function (u, s) {
        return s.map(function () { return ""; });
      } };
    if (row.yticks) y.splits = function () { return row.yticks; };
    var cuts = spec.cuts, counted = false;
    return {
      width: width, height: row.height, legend: { show: false },
      cursor: { sync: { key: key }, drag: { x: true, y: false } },
      scales: { x: { time: false, range: spec.panels[p] }, y: { range: row.ylim } },
      axes: [{ grid: grid, size: 36, space: 60 }, y],
      series: [{}].concat(row.lines.map(series)),
      hooks: {
        drawAxes: [function (u) { decorate(u, row, cuts, spec.colours, false); }],
        draw: [function (u) {
          decorate(u, row, cuts, spec.colours, true);
          if (!counted) { counted = true; body.setAttribute("data-plots-drawn", ++drawn); }
        }],
      },
    };
  }

  // Each panel as wide as its share of the plotting width; the first also holds the y axis.
  function widths(spec, total) {
    var n = spec.panels.length, room = total - Y_AXIS - (n - 1) * (GAP + 4);
    return spec.widths.map(function (w, p) {
      return Math.floor(w * room) + (p === 0 ? Y_AXIS : 4);
    });
  }

  function draw(figure, index) {
    var spec = JSON.parse(figure.querySelector("script.plot-data").textContent);
    var holders = figure.querySelectorAll(".plot-row"), key = "plot" + index;
    spec.rows.forEach(function (row, r) {
      var data = uPlot.join(row.lines.map(function (l) { return [l.x, l.y]; }));
      var sizes = widths(spec, holders[r].clientWidth);
      spec.panels.forEach(function (_, p) {
        var u = new uPlot(chart(spec, row, p, data, sizes[p], key), data, holders[r]);
        charts.push({ u: u, spec: spec, holder: holders[r], p: p });
      });
    });
  }

  document.querySelectorAll("figure.plot").forEach(function (figure, index) {
    try { draw(figure, index); } catch (error) { fail(error && error.message || error); }
  });
  body.setAttribute("data-plots", charts.length);
  window.addEventListener("resize", function () {
    charts.forEach(function (c) {
      c.u.setSize({ width: widths(c.spec, c.holder.clientWidth)[c.p], height: c.u.height });
    });
  });
})();
