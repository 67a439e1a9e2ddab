// jobs dashboard: embedded script. Pages work without it; it adds live counts, the realtime
// graph, select-all checkboxes, confirmations, and reloads a job's page when its state changes.
(function () {
  "use strict";

  var body = document.body;
  var statsUrl = body.getAttribute("data-stats-url");
  var interval = parseInt(body.getAttribute("data-poll-interval"), 10) || 2000;
  var jobStateUrl = body.getAttribute("data-job-state-url");
  var jobState = body.getAttribute("data-job-state");

  // ---- lists: select all, buttons enabled only with a selection, confirmations -----------
  function updateButtons(form) {
    var any = form.querySelector('input[name="ids"]:checked') !== null;
    form.querySelectorAll("button[data-needs-selection]").forEach(function (button) {
      button.disabled = !any;
    });
  }
  document.querySelectorAll("form.list").forEach(function (form) {
    var all = form.querySelector("input[data-select-all]");
    if (all) {
      all.addEventListener("change", function () {
        form.querySelectorAll('input[name="ids"]').forEach(function (box) {
          box.checked = all.checked;
        });
        updateButtons(form);
      });
    }
    form.addEventListener("change", function () { updateButtons(form); });
    updateButtons(form);
  });
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (event) {
      if (!window.confirm(button.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });

  // ---- realtime graph ------------------------------------------------------------------------
  var canvas = document.getElementById("realtime");
  var samples = [];
  var previous = null;
  var MAX_SAMPLES = 60;

  function color(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function draw() {
    if (!canvas || !canvas.getContext) { return; }
    var ratio = window.devicePixelRatio || 1;
    var width = canvas.clientWidth || 720;
    var height = canvas.clientHeight || 200;
    if (canvas.width !== Math.round(width * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    var left = 40, top = 8, bottom = 20;
    var plotW = width - left - 8, plotH = height - top - bottom;
    var max = 1;
    samples.forEach(function (s) { max = Math.max(max, s.succeeded, s.failed); });
    ctx.strokeStyle = color("--line", "#ddd");
    ctx.fillStyle = color("--muted", "#666");
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right";
    [0, max / 2, max].forEach(function (tick) {
      var y = top + plotH - plotH * tick / max;
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + plotW, y); ctx.stroke();
      ctx.fillText(String(Math.round(tick * 10) / 10), left - 6, y + 4);
    });
    ctx.textAlign = "left";
    ctx.fillText((interval / 1000) + " s per point", left, height - 4);
    function line(key, stroke) {
      if (samples.length < 2) { return; }
      ctx.strokeStyle = stroke;
      ctx.lineWidth = 2;
      ctx.beginPath();
      samples.forEach(function (s, i) {
        var x = left + plotW * (MAX_SAMPLES - samples.length + i) / (MAX_SAMPLES - 1);
        var y = top + plotH - plotH * s[key] / max;
        if (i === 0) { ctx.moveTo(x, y); } else { ctx.lineTo(x, y); }
      });
      ctx.stroke();
      ctx.lineWidth = 1;
    }
    line("succeeded", color("--succeeded", "#1f9d55"));
    line("failed", color("--failed", "#d63b3b"));
  }

  function record(today) {
    if (previous) {
      // Totals are per UTC day: after midnight they start again from zero.
      var succeeded = today.succeeded >= previous.succeeded ? today.succeeded - previous.succeeded : today.succeeded;
      var failed = today.failed >= previous.failed ? today.failed - previous.failed : today.failed;
      samples.push({ succeeded: succeeded, failed: failed });
      if (samples.length > MAX_SAMPLES) { samples.shift(); }
    }
    previous = today;
    draw();
  }

  // ---- polling ---------------------------------------------------------------------------------
  var status = document.querySelector("[data-live-status]");
  function setStatus(text) { if (status) { status.textContent = text; } }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      });
  }

  function poll() {
    if (document.hidden) { schedule(); return; }
    var requests = [];
    if (statsUrl) {
      requests.push(getJson(statsUrl).then(function (stats) {
        Object.keys(stats.counts).forEach(function (key) {
          document.querySelectorAll('[data-count="' + key + '"]').forEach(function (element) {
            element.textContent = String(stats.counts[key]);
          });
        });
        record(stats.today);
      }));
    }
    if (jobStateUrl) {
      requests.push(getJson(jobStateUrl).then(function (job) {
        if (job.state !== jobState) {
          jobStateUrl = null;
          window.location.reload();
        }
      }));
    }
    Promise.all(requests)
      .then(function () { setStatus("live refresh every " + interval / 1000 + " s"); })
      .catch(function () { setStatus("live refresh paused: the dashboard did not answer"); })
      .then(schedule);
  }

  function schedule() { window.setTimeout(poll, interval); }

  window.addEventListener("resize", draw);
  draw();
  poll();
})();
