/* The console's only script: every page works without it. It asks the what-if question in
   place, and keeps the live page's numbers and charts up to date. No library, no network
   access beyond this server. */
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const POINTS = 60;

  function svgElement(name, attributes, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes || {})) {
      element.setAttribute(key, String(value));
    }
    if (text !== undefined) element.textContent = text;
    return element;
  }

  /* -- the what-if panel: ask again without reloading the page -------------------------- */

  function whatIf() {
    const form = document.getElementById("what-if");
    const results = document.getElementById("results");
    if (!form || !results) return;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const query = new URLSearchParams(new FormData(form)).toString();
      const page = form.action + "?" + query;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      results.setAttribute("aria-busy", "true");
      fetch(form.dataset.results + "?" + query, { credentials: "same-origin" })
        .then((response) => {
          if (response.redirected || !response.ok) {
            window.location.assign(page);
            return null;
          }
          return response.text();
        })
        .then((html) => {
          if (html === null) return;
          results.innerHTML = html;
          window.history.replaceState(null, "", page);
          const heading = document.getElementById("detail-title");
          if (heading) {
            heading.setAttribute("tabindex", "-1");
            heading.focus();
          }
        })
        .catch(() => window.location.assign(page))
        .finally(() => {
          button.disabled = false;
          results.removeAttribute("aria-busy");
        });
    });
  }

  /* -- the live page ------------------------------------------------------------------------ */

  /* The q quantile of cumulative [bound, count] buckets, as api/console/live.py computes it. */
  function quantile(buckets, q) {
    const ordered = buckets.map(([bound, count]) => [bound === "+Inf" ? Infinity : bound, count])
      .sort((a, b) => a[0] - b[0]);
    if (!ordered.length || ordered[ordered.length - 1][1] <= 0) return null;
    const rank = q * ordered[ordered.length - 1][1];
    let lower = 0;
    let below = 0;
    for (const [bound, count] of ordered) {
      if (count >= rank) {
        if (!isFinite(bound)) return lower;
        if (count === below) return bound;
        return lower + (bound - lower) * (rank - below) / (count - below);
      }
      lower = bound;
      below = count;
    }
    return lower;
  }

  function bucketChange(now, before) {
    const earlier = new Map(before.map(([bound, count]) => [String(bound), count]));
    return now.map(([bound, count]) => [bound, count - (earlier.get(String(bound)) || 0)]);
  }

  function lineChart(svg, lines, emptyText) {
    svg.replaceChildren();
    const width = 600;
    const height = 220;
    const left = 48;
    const bottom = 20;
    const values = lines.flatMap((line) => line.points.filter((v) => v !== null));
    svg.appendChild(svgElement("line", { class: "axis", x1: left, y1: 8, x2: left, y2: height - bottom }));
    svg.appendChild(svgElement("line", { class: "axis", x1: left, y1: height - bottom, x2: width - 4, y2: height - bottom }));
    if (!values.length) {
      svg.appendChild(svgElement("text", { class: "label", x: left + 10, y: height / 2 }, emptyText));
      return;
    }
    const top = Math.max(...values) * 1.1 || 1;
    svg.appendChild(svgElement("text", { class: "label", x: 4, y: 16 }, top.toPrecision(3)));
    svg.appendChild(svgElement("text", { class: "label", x: 4, y: height - bottom }, "0"));
    const step = (width - left - 8) / (POINTS - 1);
    for (const line of lines) {
      const offset = POINTS - line.points.length;
      const coordinates = [];
      line.points.forEach((value, i) => {
        if (value === null) return;
        const x = left + (offset + i) * step;
        const y = (height - bottom) - (value / top) * (height - bottom - 10);
        coordinates.push(x.toFixed(1) + "," + y.toFixed(1));
      });
      if (coordinates.length) {
        svg.appendChild(svgElement("polyline", { class: "line " + line.style, points: coordinates.join(" ") }));
      }
    }
  }

  function barChart(svg, rows, styles, emptyText) {
    svg.replaceChildren();
    const width = Number(svg.dataset.width) || 600;
    const left = 170;
    const rowHeight = 8 * styles.length + 8;
    const height = Math.max(60, rows.length * rowHeight + 10);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    if (!rows.length) {
      svg.appendChild(svgElement("text", { class: "label", x: 10, y: 30 }, emptyText));
      return;
    }
    const top = Math.max(1, ...rows.flatMap((row) => row.values));
    rows.forEach((row, i) => {
      const y = 5 + i * rowHeight;
      svg.appendChild(svgElement("text", { class: "label", x: 4, y: y + rowHeight / 2 + 3 }, row.label));
      row.values.forEach((value, j) => {
        const barWidth = Math.max(value > 0 ? 1 : 0, (value / top) * (width - left - 60));
        const bar = svgElement("rect", { class: styles[j], x: left, y: y + j * 8, width: barWidth, height: 7 });
        bar.appendChild(svgElement("title", {}, row.label + ": " + value));
        svg.appendChild(bar);
      });
      svg.appendChild(svgElement("text", { class: "label", x: left + 6 + (row.values[0] / top) * (width - left - 60), y: y + 7 }, String(row.values[0])));
    });
  }

  function fillTable(id, rows) {
    const body = document.querySelector("#" + id + " tbody");
    if (!body) return;
    body.replaceChildren(...rows.map((cells) => {
      const tr = document.createElement("tr");
      for (const [text, numeric] of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        if (numeric) td.className = "num";
        tr.appendChild(td);
      }
      return tr;
    }));
  }

  function percent(part, whole) {
    return whole ? (100 * part / whole).toFixed(1) + "%" : "–";
  }

  function live() {
    const root = document.getElementById("live");
    if (!root) return;
    const names = JSON.parse(root.dataset.names || "{}");
    const interval = Number(root.dataset.interval) || 2000;
    const none = root.dataset.labelNone;
    const status = document.getElementById("live-status");
    const series = { rps: [], p50: [], p95: [], p99: [] };
    let previous = null;

    function push(name, value) {
      series[name].push(value);
      if (series[name].length > POINTS) series[name].shift();
    }

    function show(data) {
      if (previous && data.t > previous.t && data.requests.total >= previous.requests.total) {
        const seconds = data.t - previous.t;
        const change = bucketChange(data.latency.buckets, previous.latency.buckets);
        push("rps", (data.requests.total - previous.requests.total) / seconds);
        for (const [name, q] of [["p50", 0.5], ["p95", 0.95], ["p99", 0.99]]) {
          const value = quantile(change, q);
          push(name, value === null ? null : value * 1000);
        }
        const last = (name) => series[name][series[name].length - 1];
        document.getElementById("rps").textContent = last("rps").toFixed(1);
        document.getElementById("latency").textContent = ["p50", "p95", "p99"]
          .map((name) => (last(name) === null ? "–" : last(name).toFixed(1))).join(" / ");
      }
      previous = data;
      lineChart(document.getElementById("chart-rps"), [{ points: series.rps, style: "s1" }], none);
      lineChart(document.getElementById("chart-latency"), [
        { points: series.p50, style: "s1" }, { points: series.p95, style: "s2" },
        { points: series.p99, style: "s3" }], none);
      const faults = data.faults;
      document.getElementById("faults-total").textContent =
        String(faults.reduce((sum, f) => sum + f.count, 0));
      barChart(document.getElementById("chart-faults"),
        faults.map((f) => ({ label: f.plugin + " · " + f.stage, values: [f.count] })), ["s2"], none);
      fillTable("faults-table", faults.map((f) => [[f.plugin], [f.stage], [String(f.count), true]]));
      const channel = (id) => (names.channel && names.channel[id]) || id || "–";
      const moment = (id) => (names.moment && names.moment[id]) || id || "–";
      barChart(document.getElementById("chart-funnel"), data.funnel.map((row) => ({
        label: channel(row.channel) + " · " + moment(row.moment),
        values: [row.impression, row.click, row.accept],
      })), ["s1", "s2", "s3"], none);
      fillTable("funnel-table", data.funnel.map((row) => [
        [channel(row.channel)], [moment(row.moment)], [String(row.impression), true],
        [String(row.click), true], [String(row.accept), true], [String(row.dismiss), true],
        [percent(row.click, row.impression), true], [percent(row.accept, row.impression), true]]));
      fillTable("endpoints-table", Object.entries(data.requests.by_endpoint)
        .map(([endpoint, count]) => [[endpoint], [String(count), true]]));
    }

    function tick() {
      fetch(root.dataset.source, { credentials: "same-origin" })
        .then((response) => {
          if (response.redirected || !response.ok) throw new Error(String(response.status));
          return response.json();
        })
        .then((data) => {
          show(data);
          if (status) status.dataset.updated = String(data.t);
        })
        .catch(() => {
          if (status) status.dataset.updated = "failed";
        })
        .finally(() => window.setTimeout(tick, interval));
    }
    tick();
  }

  document.addEventListener("DOMContentLoaded", () => {
    whatIf();
    live();
  });
})();
