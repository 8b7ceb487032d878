// Clarion dashboard: small progressive enhancements. Every page works without this file.
"use strict";
(function () {
  document.documentElement.classList.add("js");
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var SVG = "http://www.w3.org/2000/svg";

  function debounce(fn, ms) {
    var timer = null;
    return function () { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  // Live audience count: POSTs the draft audience, shows the answer (or where the filter is wrong).
  function liveCount(form, audienceOf) {
    var out = form.querySelector("#live-count");
    var err = form.querySelector("#count-error");
    var url = form.getAttribute("data-count-url");
    var seq = 0;
    function run() {
      var audience = audienceOf();
      var mine = ++seq;
      if (!audience) { out.textContent = "—"; err.textContent = ""; form.setAttribute("data-count-state", "idle"); return; }
      form.setAttribute("data-count-state", "counting");
      fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
        body: JSON.stringify({audience: audience})
      }).then(function (r) { return r.json().then(function (b) { return [r.status, b]; }); })
        .then(function (res) {
          if (mine !== seq) { return; }
          if (res[0] === 200) {
            out.textContent = res[1].count + (res[1].count === 1 ? " device" : " devices");
            err.textContent = "";
          } else {
            out.textContent = "—";
            err.textContent = res[1].error || res[1].detail || "cannot count this audience";
          }
          form.setAttribute("data-count-state", res[0] === 200 ? "done" : "error");
        })
        .catch(function () { if (mine === seq) { err.textContent = "the count failed; try again"; } });
    }
    var later = debounce(run, 250);
    form.addEventListener("input", function (e) {
      if (e.target.closest(".audience-field") || e.target.name === "audience_kind" || e.target.name === "filter") { later(); }
    });
    form.addEventListener("change", function (e) { if (e.target.name === "audience_kind" || e.target.name === "segment") { run(); } });
    run();
  }

  function composePage(form) {
    function kind() { var c = form.querySelector('input[name="audience_kind"]:checked'); return c ? c.value : "filter"; }
    function showKind() {
      form.querySelectorAll(".audience-field").forEach(function (el) { el.hidden = el.getAttribute("data-kind") !== kind(); });
    }
    function audience() {
      var k = kind();
      if (k === "all") { return {all: true}; }
      if (k === "users") {
        var users = form.elements.users.value.split(/[\s,]+/).filter(Boolean);
        return users.length ? {users: users} : null;
      }
      var value = form.elements[k].value.trim();
      if (!value) { return null; }
      var a = {}; a[k] = value; return a;
    }
    form.addEventListener("change", function (e) { if (e.target.name === "audience_kind") { showKind(); } });
    showKind();
    liveCount(form, audience);
    // Live previews: the same text in each platform's likeness.
    var fallback = {title: "Title", body: "The body of your notification", subtitle: ""};
    function preview() {
      ["title", "subtitle", "body"].forEach(function (name) {
        var text = form.elements[name].value || fallback[name];
        form.querySelectorAll('[data-preview="' + name + '"]').forEach(function (el) { el.textContent = text; });
      });
    }
    ["title", "subtitle", "body"].forEach(function (name) { form.elements[name].addEventListener("input", preview); });
  }

  function segmentForm(form) {
    liveCount(form, function () {
      var text = form.elements.filter.value.trim();
      return text ? {filter: text} : null;
    });
  }

  // The notification page: redraw the funnel and timeline until the campaign is over.
  function svgEl(name, attrs, text) {
    var el = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (text !== undefined) { el.textContent = text; }
    return el;
  }
  function clear(svg, keepDesc) {
    Array.prototype.slice.call(svg.childNodes).forEach(function (n) { if (!(keepDesc && n.nodeName === "desc")) { svg.removeChild(n); } });
  }
  function drawFunnel(svg, steps) {
    var top = Math.max.apply(null, steps.map(function (s) { return s.count; }).concat([1]));
    clear(svg, true);
    svg.setAttribute("viewBox", "0 0 600 " + (steps.length * 30 + 4));
    svg.querySelector("desc").textContent = steps.map(function (s) { return s.label + ": " + s.count + "."; }).join(" ");
    steps.forEach(function (s, i) {
      var y = i * 30, w = Math.round(3300 * s.count / top) / 10;
      svg.appendChild(svgEl("text", {x: 0, y: y + 19, "class": "label"}, s.label));
      svg.appendChild(svgEl("rect", {x: 200, y: y + 4, height: 22, width: w, "class": "bar " + s.kind}));
      svg.appendChild(svgEl("text", {x: 206 + w, y: y + 19, "class": "value", "data-step": s.label}, String(s.count)));
    });
  }
  function drawTimeline(svg, points) {
    var peak = Math.max.apply(null, points.map(function (p) { return p.sent; }).concat([1]));
    var width = Math.max(points.length * 14, 600);
    clear(svg, true);
    svg.setAttribute("viewBox", "0 0 " + width + " 140");
    svg.querySelector("desc").textContent = points.length ? points.map(function (p) { return p.minute + ": " + p.sent + "."; }).join(" ") : "Nothing sent yet.";
    points.forEach(function (p, i) {
      var h = Math.round(1100 * p.sent / peak) / 10;
      var bar = svgEl("rect", {x: i * 14, y: 115 - h, width: 10, height: h, "class": "bar sent"});
      bar.appendChild(svgEl("title", {}, p.minute + ": " + p.sent));
      svg.appendChild(bar);
    });
    if (points.length) {
      svg.appendChild(svgEl("text", {x: 0, y: 134, "class": "axis"}, points[0].minute.slice(11)));
      svg.appendChild(svgEl("text", {x: width, y: 134, "class": "axis end"}, points[points.length - 1].minute.slice(11)));
    }
  }
  function livePage(live) {
    var url = live.getAttribute("data-progress-url");
    var done = ["completed", "cancelled"];
    if (done.indexOf(live.getAttribute("data-status")) >= 0) { return; }
    var status = document.getElementById("ntf-status");
    function poll() {
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
        .then(function (n) {
          drawFunnel(document.getElementById("funnel"), n.funnel);
          drawTimeline(document.getElementById("timeline"), n.timeline);
          status.textContent = n.status;
          status.className = "badge ntf-" + n.status;
          // data-status turns final only on the page the server renders after the end.
          if (done.indexOf(n.status) >= 0) { window.location.reload(); } else { setTimeout(poll, 1000); }
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var compose = document.getElementById("compose");
    if (compose) { composePage(compose); }
    document.querySelectorAll(".segment-form").forEach(segmentForm);
    var live = document.getElementById("live");
    if (live) { livePage(live); }
  });
})();
