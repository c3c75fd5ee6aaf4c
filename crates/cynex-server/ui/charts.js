// cynex charts: small SVG charts drawn with the DOM (no library, nothing fetched, CSP-clean).
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, parent) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.appendChild(e);
    return e;
  }

  function human(v) {
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
    if (a >= 1e6) return (v / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
    if (a >= 1e3) return (v / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
    if (a > 0 && a < 10 && !Number.isInteger(v)) return v.toFixed(2);
    return String(Math.round(v));
  }

  // A "nice" axis maximum and step for values up to `max`.
  function niceScale(max, ticks) {
    if (!(max > 0)) return { max: 1, step: 1 };
    const raw = max / ticks;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const norm = raw / mag;
    const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
    return { max: Math.ceil(max / step) * step, step };
  }

  // Line/area chart of time series. series: [{name, color, values: [number], area?, axis?: "right"}],
  // labels: [string] (x labels, one per point).
  function line(container, { labels, series, height = 260, yFormat = human }) {
    container.innerHTML = "";
    container.classList.add("chart");
    const W = 1000, H = height, L = 56, R = series.some(s => s.axis === "right") ? 56 : 16, T = 12, B = 28;
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" }, container);
    const n = labels.length;
    if (n === 0) {
      const t = el("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis" }, svg);
      t.textContent = "no data in this period";
      return;
    }
    const left = series.filter(s => s.axis !== "right"), right = series.filter(s => s.axis === "right");
    const scaleOf = list => niceScale(Math.max(0, ...list.flatMap(s => s.values)), 4);
    const sl = scaleOf(left), sr = right.length ? scaleOf(right) : null;
    const x = i => L + (n === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
    const y = (v, s) => T + (H - T - B) * (1 - v / s.max);
    const g = el("g", { class: "grid" }, svg);
    for (let v = 0; v <= sl.max + 1e-9; v += sl.step) {
      el("line", { x1: L, x2: W - R, y1: y(v, sl), y2: y(v, sl) }, g);
      const t = el("text", { x: L - 6, y: y(v, sl) + 4, "text-anchor": "end", class: "axis" }, svg);
      t.textContent = yFormat(v);
    }
    if (sr) {
      for (let v = 0; v <= sr.max + 1e-9; v += sr.step) {
        const t = el("text", { x: W - R + 6, y: y(v, sr) + 4, class: "axis" }, svg);
        t.textContent = yFormat(v);
      }
    }
    const every = Math.max(1, Math.ceil(n / 8));
    for (let i = 0; i < n; i += every) {
      const t = el("text", { x: x(i), y: H - 8, "text-anchor": "middle", class: "axis" }, svg);
      t.textContent = labels[i];
    }
    for (const s of series) {
      const sc = s.axis === "right" ? sr : sl;
      const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v, sc).toFixed(1)}`);
      if (s.area) {
        el("path", { d: `M${x(0)},${y(0, sc)} L${pts.join(" L")} L${x(n - 1)},${y(0, sc)} Z`, fill: s.color, "fill-opacity": 0.18 }, svg);
      }
      el("polyline", { points: pts.join(" "), fill: "none", stroke: s.color, "stroke-width": 2.2, "stroke-linejoin": "round" }, svg);
    }
    // Hover: the nearest point of every series.
    const tip = document.createElement("div");
    tip.className = "tip";
    container.appendChild(tip);
    const cursor = el("line", { y1: T, y2: H - B, stroke: "#5d6b8a", "stroke-dasharray": "3 3", visibility: "hidden" }, svg);
    svg.addEventListener("mousemove", ev => {
      const r = svg.getBoundingClientRect();
      const px = ((ev.clientX - r.left) / r.width) * W;
      const i = Math.max(0, Math.min(n - 1, Math.round(((px - L) / (W - L - R)) * (n - 1))));
      cursor.setAttribute("x1", x(i));
      cursor.setAttribute("x2", x(i));
      cursor.setAttribute("visibility", "visible");
      tip.textContent = "";
      const head = document.createElement("div");
      head.textContent = labels[i];
      tip.appendChild(head);
      for (const s of series) {
        const d = document.createElement("div");
        d.textContent = `${s.name}: ${Number(s.values[i]).toLocaleString()}`;
        d.style.color = s.color;
        tip.appendChild(d);
      }
      tip.style.display = "block";
      tip.style.left = Math.min(r.width - 160, (x(i) / W) * r.width + 12) + "px";
      tip.style.top = "8px";
    });
    svg.addEventListener("mouseleave", () => {
      tip.style.display = "none";
      cursor.setAttribute("visibility", "hidden");
    });
    const lg = document.createElement("div");
    lg.className = "legend";
    for (const s of series) {
      const span = document.createElement("span");
      const sw = document.createElement("i");
      sw.style.background = s.color;
      span.appendChild(sw);
      span.appendChild(document.createTextNode(s.name + (s.axis === "right" ? " (right axis)" : "")));
      lg.appendChild(span);
    }
    container.appendChild(lg);
  }

  // Horizontal bars: rows [{label, value, note?, cls?}].
  function bars(container, rows, { format = v => Number(v).toLocaleString(), max } = {}) {
    container.innerHTML = "";
    container.classList.add("bars");
    if (!rows.length) {
      container.innerHTML = '<div class="empty">none in this period</div>';
      return;
    }
    const top = max || Math.max(...rows.map(r => r.value), 1);
    for (const r of rows) {
      const row = document.createElement("div");
      row.className = "row";
      const lab = document.createElement("div");
      lab.className = "lab";
      lab.textContent = r.label;
      lab.title = r.label + (r.note ? " — " + r.note : "");
      const track = document.createElement("div");
      track.className = "track";
      const fill = document.createElement("div");
      fill.className = "fill" + (r.cls ? " " + r.cls : "");
      fill.style.width = Math.max(0.5, (100 * r.value) / top) + "%";
      track.appendChild(fill);
      const val = document.createElement("div");
      val.className = "val";
      val.textContent = format(r.value);
      row.append(lab, track, val);
      container.appendChild(row);
    }
  }

  // Donut of parts [{label, value, color}].
  function donut(container, parts, { size = 180 } = {}) {
    container.innerHTML = "";
    container.classList.add("chart");
    const total = parts.reduce((a, p) => a + p.value, 0);
    const svg = el("svg", { viewBox: "0 0 200 200", width: size, height: size }, container);
    const cx = 100, cy = 100, r = 80, w = 28;
    if (total <= 0) {
      el("circle", { cx, cy, r, fill: "none", stroke: "#24304b", "stroke-width": w }, svg);
    } else {
      let a0 = -Math.PI / 2;
      for (const p of parts) {
        if (p.value <= 0) continue;
        const a1 = a0 + (2 * Math.PI * p.value) / total;
        const large = a1 - a0 > Math.PI ? 1 : 0;
        const d = a1 - a0 >= 2 * Math.PI - 1e-6
          ? `M${cx},${cy - r} A${r},${r} 0 1 1 ${cx - 0.01},${cy - r}`
          : `M${cx + r * Math.cos(a0)},${cy + r * Math.sin(a0)} A${r},${r} 0 ${large} 1 ${cx + r * Math.cos(a1)},${cy + r * Math.sin(a1)}`;
        const arc = el("path", { d, fill: "none", stroke: p.color, "stroke-width": w }, svg);
        const t = el("title", {}, arc);
        t.textContent = `${p.label}: ${p.value.toLocaleString()} (${((100 * p.value) / total).toFixed(1)}%)`;
        a0 = a1;
      }
    }
    const lg = document.createElement("div");
    lg.className = "legend";
    for (const p of parts) {
      const span = document.createElement("span");
      const sw = document.createElement("i");
      sw.style.background = p.color;
      span.appendChild(sw);
      const share = total > 0 ? ((100 * p.value) / total).toFixed(1) : "0.0";
      span.appendChild(document.createTextNode(`${p.label} ${share}%`));
      lg.appendChild(span);
    }
    container.appendChild(lg);
  }

  return { line, bars, donut, human };
})();
