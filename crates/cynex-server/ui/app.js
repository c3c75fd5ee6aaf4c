// cynex web UI: one page, hash routes, everything from /api/v1 (which checks access on every call).
"use strict";

const App = (() => {
  let me = null; // the logged-in principal (with csrf)
  let timers = [];
  let liveSource = null;

  const $ = (sel, root = document) => root.querySelector(sel);
  const app = () => document.getElementById("app");
  const fmt = n => (n === null || n === undefined ? "–" : Number(n).toLocaleString());
  const pct = x => (100 * x).toFixed(1) + "%";
  const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const short = t => (t ? String(t).replace("T", " ").replace(/\.\d+Z?$/, "").replace(/Z$/, "") : "–");

  function toast(msg) {
    const t = document.getElementById("toast");
    t.textContent = msg;
    t.classList.add("show");
    setTimeout(() => t.classList.remove("show"), 3500);
  }

  async function api(path, opts = {}) {
    const headers = { Accept: "application/json" };
    if (opts.body !== undefined) headers["Content-Type"] = "application/json";
    if (opts.method && opts.method !== "GET" && me && me.csrf) headers["X-CSRF-Token"] = me.csrf;
    const r = await fetch("/api/v1" + path, {
      method: opts.method || "GET",
      headers,
      credentials: "same-origin",
      body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
    });
    if (r.status === 401) {
      me = null;
      if (!location.hash.startsWith("#/login")) location.hash = "#/login";
      throw new Error("please log in");
    }
    if (r.status === 204) return null;
    const ct = r.headers.get("content-type") || "";
    const data = ct.includes("json") ? await r.json() : await r.text();
    if (!r.ok) throw new Error((data && data.error && data.error.message) || r.statusText);
    return data;
  }

  function clearTimers() {
    timers.forEach(t => clearInterval(t));
    timers = [];
    if (liveSource) {
      liveSource.close();
      liveSource = null;
    }
  }

  function nav() {
    const links = me.operator
      ? [["overview", "Overview"], ["live", "Live"], ["findings", "Findings"], ["alerts", "Alerts"], ["intel", "Intelligence"], ["workbench", "Workbench"], ["members", "Members"]]
      : [["overview", "Overview"], ["live", "Live"], ["portal", "My organisation"], ["alerts", "Alerts"], ["intel", "Intelligence"]];
    const page = (location.hash.split("/")[1] || "overview").split("?")[0];
    $("#nav").innerHTML = links.map(([h, t]) => `<a href="#/${h}" class="${page === h ? "on" : ""}">${t}</a>`).join("");
    $("#who").innerHTML = `<span><b>${esc(me.user)}</b> · ${esc(me.org)} · ${esc(me.role)}</span><button class="small" id="logout">Log out</button>`;
    $("#logout").onclick = async () => {
      await api("/logout", { method: "POST" }).catch(() => {});
      me = null;
      location.hash = "#/login";
    };
    $("#top").hidden = false;
  }

  // ------------------------------------------------------------------ login
  function login() {
    $("#top").hidden = true;
    app().innerHTML = `
      <div class="login"><div class="card">
        <h1><img src="/favicon.svg" width="28" height="28" alt="">cynex</h1>
        <p class="sub">Cybersecurity nexus — darknet telescope, member alerts, shared intelligence.</p>
        <form id="lf">
          <label>User <input name="user" id="user" autocomplete="username" required></label>
          <label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
          <div class="err" id="lerr"></div>
          <button class="primary" type="submit" id="login-btn">Log in</button>
        </form>
      </div></div>`;
    $("#lf").onsubmit = async ev => {
      ev.preventDefault();
      $("#lerr").textContent = "";
      try {
        me = await api("/login", { method: "POST", body: { user: $("#user").value, password: $("#password").value } });
        location.hash = me.operator ? "#/overview" : "#/portal";
      } catch (e) {
        $("#lerr").textContent = e.message;
      }
    };
  }

  // ------------------------------------------------------------------ overview
  function rangeQuery(state) {
    const p = new URLSearchParams();
    p.set("bin", state.bin);
    if (state.day) {
      const from = new Date(state.day + "T00:00:00Z");
      const to = new Date(from.getTime() + state.days * 86400e3);
      p.set("from", from.toISOString());
      p.set("to", to.toISOString());
    }
    return p.toString();
  }

  async function overview(params) {
    const state = { bin: params.get("bin") || "1h", day: params.get("day") || "", days: Number(params.get("days") || 1) };
    app().innerHTML = `
      <div class="toolbar">
        <h1 class="m0">Darknet overview</h1><span class="sub" id="ov-range"></span><span class="sp"></span>
        <label>Day <input type="date" id="ov-day" value="${esc(state.day)}"></label>
        <label>Days <select id="ov-days">${[1, 7, 30].map(d => `<option ${d === state.days ? "selected" : ""}>${d}</option>`).join("")}</select></label>
        <label>Bin <select id="ov-bin">${["5m", "1h", "1d"].map(b => `<option ${b === state.bin ? "selected" : ""}>${b}</option>`).join("")}</select></label>
        <button id="ov-wall" title="Full screen for a wall display">Wall mode</button>
      </div>
      <div class="grid g5" id="tiles"></div>
      <div class="grid g3 mt16">
        <div class="card span2"><h2>Packets and unique sources</h2><div id="ch-series"></div></div>
        <div class="card"><h2>Protocols</h2><div id="ch-proto"></div><h2 class="mt16">Findings</h2><div class="chips" id="ov-findings"></div></div>
        <div class="card"><h2>Top 10 destination ports</h2><div id="ch-ports"></div></div>
        <div class="card"><h2>Top source countries</h2><div id="ch-countries"></div></div>
        <div class="card"><h2>Top source ASNs</h2><div id="ch-asns"></div></div>
        <div class="card"><h2>Scanning tools</h2><div id="ch-tools"></div></div>
        <div class="card span2"><h2>Packets per dark address</h2><div id="ch-per"></div></div>
      </div>`;
    const go = () => {
      const p = new URLSearchParams({ bin: $("#ov-bin").value, day: $("#ov-day").value, days: $("#ov-days").value });
      location.hash = "#/overview?" + p.toString();
    };
    ["#ov-bin", "#ov-day", "#ov-days"].forEach(s => ($(s).onchange = go));
    $("#ov-wall").onclick = () => {
      document.body.classList.toggle("wall");
      if (document.fullscreenElement === null && document.documentElement.requestFullscreen) document.documentElement.requestFullscreen().catch(() => {});
    };
    const draw = async () => {
      const o = await api("/overview?" + rangeQuery(state));
      $("#ov-range").textContent = `${short(o.from)} – ${short(o.to)} UTC · scope ${o.scope}`;
      const t = o.totals;
      const packets = t.packets || 0;
      const tiles = [
        ["Packets", fmt(packets), `${Charts.human(t.bytes)}B`, "t-packets"],
        ["Unique sources", fmt(t.daily_sources), `peak ${fmt(t.peak_hourly_sources)} in an hour`, "t-sources"],
        ["Packets per dark address", Number(t.per_address || 0).toFixed(1), "over the period", "t-per"],
        ["Backscatter", pct(packets ? t.backscatter / packets : 0), `${fmt(t.backscatter)} packets`, "t-bs"],
        ["Research scanners", pct(packets ? t.research / packets : 0), `${fmt(t.research)} packets`, "t-research"],
      ];
      $("#tiles").innerHTML = tiles.map(([l, v, d, id]) => `<div class="card tile" id="${id}"><div class="l">${l}</div><div class="v">${v}</div><div class="d">${d}</div></div>`).join("");
      const labels = o.series.map(r => short(r.time).slice(o.bin === "1d" ? 0 : 5, o.bin === "1d" ? 10 : 16));
      Charts.line($("#ch-series"), {
        labels,
        series: [
          { name: "packets", color: "#7aa2f7", values: o.series.map(r => r.packets || 0), area: true },
          { name: "unique sources", color: "#9ece6a", values: o.series.map(r => r.sources || 0), axis: "right" },
        ],
      });
      Charts.line($("#ch-per"), { labels, height: 180, yFormat: v => v.toFixed(1), series: [{ name: "packets per dark address", color: "#ff9e64", values: o.series.map(r => r.per_address || 0), area: true }] });
      Charts.donut($("#ch-proto"), [
        { label: "TCP", value: t.tcp, color: "#7aa2f7" },
        { label: "UDP", value: t.udp, color: "#9ece6a" },
        { label: "ICMP", value: t.icmp, color: "#e0af68" },
        { label: "other", value: t.other, color: "#bb9af7" },
      ]);
      const iot = new Set([23, 2323, 7547, 37215, 52869, 5555, 8291]);
      Charts.bars($("#ch-ports"), o.top_ports.map(p => ({ label: `${p.port}/${p.proto}`, value: p.packets, cls: iot.has(p.port) && p.proto === "tcp" ? "iot" : "", note: `${fmt(p.sources)} sources in the busiest hour` })));
      const noGeo = '<div class="empty">no GeoIP data: put MaxMind GeoLite2 Country and ASN .mmdb files in the data directory\'s geoip/ folder</div>';
      Charts.bars($("#ch-countries"), o.top_countries.map(c => ({ label: c.country, value: c.sources })), { format: v => `${fmt(v)} src` });
      Charts.bars($("#ch-asns"), o.top_asns.map(a => ({ label: `AS${a.asn} ${a.as_org || ""}`, value: a.sources })), { format: v => `${fmt(v)} src` });
      if (!o.top_countries.length && !o.top_asns.length && packets > 0) {
        $("#ch-countries").innerHTML = noGeo;
        $("#ch-asns").innerHTML = noGeo;
      }
      Charts.bars($("#ch-tools"), o.top_tools.map(x => ({ label: x.tool, value: x.sources, note: `${fmt(x.packets)} packets` })), { format: v => `${fmt(v)} src` });
      const f = o.findings || {};
      $("#ov-findings").innerHTML = [["scan", "scan events"], ["tool", "attributed sources"], ["backscatter", "DDoS attacks"], ["surge", "port surges"], ["campaign", "campaigns"]]
        .map(([k, l]) => `<a class="chip" href="#/findings?kind=${k}"><b>${fmt(f[k] || 0)}</b> ${l}</a>`).join("");
    };
    await draw();
    timers.push(setInterval(() => draw().catch(e => toast(e.message)), 30000));
  }

  // ------------------------------------------------------------------ live
  const PROTO_COLOURS = { tcp: "#7aa2f7", udp: "#9ece6a", icmp: "#e0af68", icmpv6: "#e0af68", other: "#bb9af7" };
  const TOOL_COLOURS = { mirai: "#f7768e", masscan: "#bb9af7", zmap: "#7dcfff", nmap: "#e5c07b", unicornscan: "#ff9e64" };

  function live() {
    app().innerHTML = `
      <div class="toolbar"><h1 class="m0">Live darknet traffic</h1><span class="sub">each dot: one packet, from its source address (left, by /8) to its destination port (right)</span><span class="sp"></span><span class="sub" id="lv-rate"></span></div>
      <div class="grid g4">
        <div class="card span3 live-wrap p0"><canvas id="cv" width="1500" height="560"></canvas><div class="live-badge idle" id="lv-badge">WAITING</div></div>
        <div class="card ticker-card"><h2>Newest packets</h2><div class="ticker mono" id="ticker"></div></div>
      </div>
      <div class="legend mt10" id="lv-legend">
      </div>`;
    const lg = $("#lv-legend");
    const key = (label, fill, ring) => {
      const span = document.createElement("span");
      const sw = document.createElement("i");
      if (fill) sw.style.background = fill;
      if (ring) sw.style.border = "2px solid " + ring;
      span.append(sw, document.createTextNode(label));
      lg.appendChild(span);
    };
    for (const [k, c] of Object.entries(PROTO_COLOURS)) if (k !== "icmpv6") key(k, c);
    for (const [k, c] of Object.entries(TOOL_COLOURS)) key(k, null, c);
    key("backscatter", "#ffffff");
    const cv = $("#cv"), ctx = cv.getContext("2d");
    const W = cv.width, H = cv.height;
    const dots = [];
    let count = 0, lastCount = 0;
    const portY = p => (p === null || p === undefined ? H - 20 : H - 20 - (Math.log10(p + 1) / Math.log10(65536)) * (H - 50));
    const srcY = ip => {
      const a = ip.split(".").map(Number);
      return 20 + ((a[0] * 256 + a[1]) / 65536) * (H - 40);
    };
    function frame() {
      ctx.fillStyle = "rgba(10,15,28,0.22)";
      ctx.fillRect(0, 0, W, H);
      ctx.fillStyle = "#3a4660";
      ctx.font = "12px sans-serif";
      ctx.fillText("source address (first two octets)", 12, H - 4);
      ctx.fillText("destination port", W - 120, H - 4);
      for (const p of [1, 23, 80, 443, 3389, 8080, 37215, 65535]) {
        ctx.fillText(String(p), W - 60, portY(p) + 4);
      }
      const now = performance.now();
      for (let i = dots.length - 1; i >= 0; i--) {
        const d = dots[i];
        const k = Math.min(1, (now - d.born) / 1400);
        const x = 70 + k * (W - 200), y = d.y0 + (d.y1 - d.y0) * k;
        ctx.beginPath();
        ctx.arc(x, y, d.tool ? 3.2 : 2.2, 0, Math.PI * 2);
        ctx.fillStyle = d.colour;
        ctx.fill();
        if (d.tool) {
          ctx.strokeStyle = TOOL_COLOURS[d.tool] || "#fff";
          ctx.lineWidth = 1.5;
          ctx.stroke();
        }
        if (k >= 1) dots.splice(i, 1);
      }
      if (document.body.contains(cv)) requestAnimationFrame(frame);
    }
    requestAnimationFrame(frame);
    const ticker = $("#ticker");
    liveSource = new EventSource("/api/v1/live");
    liveSource.addEventListener("packet", ev => {
      const e = JSON.parse(ev.data);
      count++;
      dots.push({ born: performance.now(), y0: srcY(e.src), y1: portY(e.dport), colour: e.backscatter ? "#ffffff" : PROTO_COLOURS[e.proto] || "#bb9af7", tool: e.tool });
      if (dots.length > 2500) dots.splice(0, dots.length - 2500);
      const b = $("#lv-badge");
      b.className = "live-badge " + (e.replay ? "replay" : "live");
      b.textContent = e.replay ? "REPLAY of the newest hour" : "LIVE";
      const row = document.createElement("div");
      row.textContent = `${short(new Date(e.t / 1000).toISOString()).slice(11)} ${e.src.padEnd(15)} → ${e.dport ?? "-"}/${e.proto}${e.tool ? " " + e.tool : ""}${e.backscatter ? " backscatter" : ""}`;
      if (e.tool) row.style.color = TOOL_COLOURS[e.tool] || "";
      ticker.prepend(row);
      while (ticker.childNodes.length > 60) ticker.removeChild(ticker.lastChild);
    });
    liveSource.onerror = () => {
      $("#lv-badge").className = "live-badge idle";
      $("#lv-badge").textContent = "RECONNECTING";
    };
    timers.push(setInterval(() => {
      $("#lv-rate").textContent = `${count - lastCount} packets/s shown`;
      lastCount = count;
    }, 1000));
  }

  // ------------------------------------------------------------------ findings
  const FINDING_COLS = {
    scan: [["ip", "source"], ["port", "port", "n"], ["traffic", "traffic"], ["packets", "packets", "n"], ["uniques", "destinations", "n"], ["rate", "global pps", "n"], ["tool", "tool"], ["label", "research"], ["country", "country"], ["time", "first seen"]],
    tool: [["ip", "source"], ["tool", "tool"], ["packets", "packets", "n"], ["uniques", "ports", "n"], ["score", "match share", "n"], ["country", "country"], ["asn", "ASN"], ["time", "first seen"]],
    backscatter: [["ip", "victim"], ["traffic", "vectors"], ["packets", "packets", "n"], ["uniques", "attacker /16s", "n"], ["rate", "attack pps (est.)", "n"], ["score", "peak 60 s", "n"], ["time", "start"], ["end_time", "end"]],
    surge: [["time", "hour"], ["port", "port", "n"], ["proto_name", "proto"], ["label", "kind"], ["uniques", "sources", "n"], ["score", "score", "n"]],
  };

  function cell(v, key) {
    if (v === null || v === undefined) return "–";
    if (key === "time" || key === "end_time") return short(v);
    if (typeof v === "number") return Number.isInteger(v) ? fmt(v) : v.toFixed(key === "score" ? 3 : 1);
    return esc(v);
  }

  async function findings(params) {
    const kind = params.get("kind") || "scan";
    const kinds = me.operator ? ["scan", "tool", "backscatter", "surge", "campaign"] : ["scan", "tool", "backscatter", "surge", "campaign"];
    app().innerHTML = `
      <div class="toolbar"><h1 class="m0">Findings</h1><span class="sp"></span>
        <input id="fd-ip" placeholder="filter by IPv4" value="${esc(params.get("ip") || "")}"><button id="fd-go">Filter</button></div>
      <div class="tabs">${kinds.map(k => `<a class="btn ${k === kind ? "on" : ""}" href="#/findings?kind=${k}">${k === "campaign" ? "campaigns" : k}</a>`).join("")}</div>
      <div class="card"><div class="scroll" id="fd-table"></div><div class="sub" id="fd-more"></div></div>`;
    $("#fd-go").onclick = () => {
      const ip = $("#fd-ip").value.trim();
      location.hash = `#/findings?kind=${kind}` + (ip ? `&ip=${encodeURIComponent(ip)}` : "");
    };
    if (kind === "campaign") {
      const c = await api("/campaigns");
      $("#fd-table").innerHTML = c.campaigns.length
        ? `<table><thead><tr><th>tool</th><th>ports</th><th class="n">sources</th><th class="n">/24s</th><th class="n">packets</th><th>start</th><th>end</th><th>sample sources</th></tr></thead><tbody>${c.campaigns
            .map(x => `<tr><td>${esc(x.tool)}</td><td>${esc(x.ports)}</td><td class="n">${fmt(x.sources)}</td><td class="n">${fmt(x.unique_24s)}</td><td class="n">${fmt(x.packets)}</td><td>${short(x.time)}</td><td>${short(x.end_time)}</td><td class="mono">${esc(((x.evidence || {}).sample_sources || []).slice(0, 4).join(" "))}</td></tr>`)
            .join("")}</tbody></table><p class="sub">Method: ${esc(((c.campaigns[0] || {}).evidence || {}).method || "")}</p>`
        : '<div class="empty">no campaigns</div>';
      return;
    }
    const q = new URLSearchParams({ kind, limit: "200" });
    if (params.get("ip")) q.set("ip", params.get("ip"));
    const r = await api("/findings?" + q.toString());
    const cols = FINDING_COLS[kind];
    $("#fd-table").innerHTML = r.findings.length
      ? `<table><thead><tr>${cols.map(([, l, n]) => `<th class="${n || ""}">${l}</th>`).join("")}</tr></thead><tbody>${r.findings
          .map(f => `<tr class="click" data-id="${esc(f.id)}">${cols.map(([k, , n]) => `<td class="${n || ""}">${cell(f[k], k)}</td>`).join("")}</tr>`)
          .join("")}</tbody></table>`
      : '<div class="empty">none</div>';
    $("#fd-more").textContent = r.more ? "showing the 200 largest; filter to narrow" : `${r.findings.length} finding(s)`;
    document.querySelectorAll("tr.click").forEach(tr => (tr.onclick = () => (location.hash = "#/finding/" + tr.dataset.id)));
  }

  async function finding(id) {
    const f = await api("/findings/" + encodeURIComponent(id));
    const rows = Object.entries(f).filter(([k]) => !["evidence", "packets_sample", "packets_sql"].includes(k));
    app().innerHTML = `
      <div class="toolbar"><a href="#/findings?kind=${esc(f.kind)}">← ${esc(f.kind)} findings</a></div>
      <h1>${esc(f.kind)} · ${esc(f.ip_text || f.ip || "")} ${f.port ? "port " + esc(f.port) : ""}</h1>
      <div class="grid g2">
        <div class="card"><h2>Finding</h2><div class="kv">${rows.map(([k, v]) => `<div>${esc(k)}</div><div class="mono">${cell(v, k)}</div>`).join("")}</div></div>
        <div class="card"><h2>Evidence</h2><pre>${esc(JSON.stringify(f.evidence, null, 2))}</pre></div>
        ${f.packets_sql ? `<div class="card wide"><h2>Packets behind it</h2><pre class="mono">${esc(f.packets_sql)}</pre>
          ${me.operator ? `<p><a class="btn" href="#/workbench?sql=${encodeURIComponent(f.packets_sql + " LIMIT 1000")}">Open in the workbench</a></p>` : ""}
          ${f.packets_sample ? `<div class="scroll">${table(f.packets_sample)}</div>` : ""}</div>` : ""}
      </div>`;
  }

  function table(rows) {
    if (!rows || !rows.length) return '<div class="empty">none</div>';
    const keys = Object.keys(rows[0]);
    return `<table><thead><tr>${keys.map(k => `<th>${esc(k)}</th>`).join("")}</tr></thead><tbody>${rows
      .map(r => `<tr>${keys.map(k => `<td class="mono">${cell(r[k], k)}</td>`).join("")}</tr>`)
      .join("")}</tbody></table>`;
  }

  // ------------------------------------------------------------------ alerts
  async function alerts() {
    const r = await api("/alerts?limit=500");
    app().innerHTML = `
      <h1>${me.operator ? "Member alerts" : "Alerts for " + esc(me.org)}</h1>
      <div class="card"><div class="scroll">${r.alerts.length ? `<table id="alert-table"><thead><tr><th>kind</th>${me.operator ? "<th>organisation</th>" : ""}<th>subject</th><th>summary</th><th>first seen</th><th>last seen</th><th class="n">findings</th><th class="n">packets</th><th>status</th><th></th></tr></thead><tbody>${r.alerts
        .map(a => `<tr class="click" data-id="${esc(a.id)}"><td><span class="badge kind-${esc(a.kind)}">${esc(a.kind)}</span></td>${me.operator ? `<td>${esc(a.org)}</td>` : ""}<td class="mono">${esc(a.subject)}</td><td>${esc(a.summary)}</td><td>${short(new Date(a.first_seen / 1000).toISOString())}</td><td>${short(new Date(a.last_seen / 1000).toISOString())}</td><td class="n">${fmt(a.findings)}</td><td class="n">${fmt(a.packets)}</td><td><span class="badge ${esc(a.status)}">${esc(a.status)}</span></td><td>${a.status === "open" ? `<button class="small ack" data-id="${esc(a.id)}">Acknowledge</button>` : ""}</td></tr>`)
        .join("")}</tbody></table>` : '<div class="empty">no alerts</div>'}</div></div>`;
    document.querySelectorAll("tr.click").forEach(tr => (tr.onclick = ev => {
      if (ev.target.closest("button")) return;
      location.hash = "#/alerts/" + tr.dataset.id;
    }));
    document.querySelectorAll("button.ack").forEach(b => (b.onclick = async () => {
      await api(`/alerts/${b.dataset.id}/ack`, { method: "POST" });
      toast("alert acknowledged");
      alerts();
    }));
  }

  async function alertDetail(id) {
    let a;
    try {
      a = await api("/alerts/" + encodeURIComponent(id));
    } catch (e) {
      app().innerHTML = `<div class="card empty" id="not-found">Alert not found. ${esc(e.message)}</div>`;
      return;
    }
    app().innerHTML = `
      <div class="toolbar"><a href="#/alerts">← alerts</a><span class="sp"></span>${a.status === "open" ? '<button id="ack">Acknowledge</button>' : ""}</div>
      <h1><span class="badge kind-${esc(a.kind)}">${esc(a.kind)}</span> ${esc(a.subject)}</h1>
      <p>${esc(a.summary)}</p>
      <div class="grid g2">
        <div class="card"><h2>Incident</h2><div class="kv">
          <div>organisation</div><div>${esc(a.org)}</div><div>status</div><div><span class="badge ${esc(a.status)}">${esc(a.status)}</span></div>
          <div>first seen</div><div>${short(new Date(a.first_seen / 1000).toISOString())}</div><div>last seen</div><div>${short(new Date(a.last_seen / 1000).toISOString())}</div>
          <div>findings</div><div>${fmt(a.findings)}</div><div>packets</div><div>${fmt(a.packets)}</div></div></div>
        <div class="card"><h2>Evidence</h2><pre>${esc(JSON.stringify(a.evidence, null, 2))}</pre></div>
        <div class="card wide"><h2>Webhook deliveries</h2>${a.deliveries.length ? `<table><thead><tr><th>status</th><th class="n">attempts</th><th>url</th><th>last error</th><th>delivered</th></tr></thead><tbody>${a.deliveries
          .map(d => `<tr><td>${esc(d.status)}</td><td class="n">${d.attempts}</td><td class="mono">${esc(d.url)}</td><td>${esc(d.last_error || "")}</td><td>${d.delivered_at ? short(new Date(d.delivered_at / 1000).toISOString()) : "–"}</td></tr>`)
          .join("")}</tbody></table>` : '<div class="empty">no webhook configured</div>'}</div>
      </div>`;
    const b = $("#ack");
    if (b) b.onclick = async () => {
      await api(`/alerts/${a.id}/ack`, { method: "POST" });
      toast("alert acknowledged");
      alertDetail(id);
    };
  }

  // ------------------------------------------------------------------ member portal
  async function portal() {
    const [al, pf, wa, co] = await Promise.all([api("/alerts?limit=20"), api("/prefixes"), api("/watches"), api("/intel/collections")]);
    const open = al.alerts.filter(a => a.status === "open").length;
    app().innerHTML = `
      <h1>${esc(me.org)}</h1>
      <div class="grid g4">
        <div class="card tile"><div class="l">Open alerts</div><div class="v" id="open-alerts">${fmt(open)}</div><div class="d">${fmt(al.alerts.length)} recent</div></div>
        <div class="card tile"><div class="l">Registered prefixes</div><div class="v">${fmt(pf.prefixes.length)}</div></div>
        <div class="card tile"><div class="l">Watches</div><div class="v">${fmt(wa.watches.length)}</div></div>
        <div class="card tile"><div class="l">Intelligence you may see</div><div class="v">${fmt(co.collections.reduce((s, c) => s + c.visible_objects, 0))}</div><div class="d">STIX objects</div></div>
      </div>
      <div class="grid g2 mt16">
        <div class="card"><h2>Recent alerts</h2>${al.alerts.length ? `<table><tbody>${al.alerts.slice(0, 8)
          .map(a => `<tr class="click" data-id="${esc(a.id)}"><td><span class="badge kind-${esc(a.kind)}">${esc(a.kind)}</span></td><td class="mono">${esc(a.subject)}</td><td>${esc(a.summary)}</td><td><span class="badge ${esc(a.status)}">${esc(a.status)}</span></td></tr>`)
          .join("")}</tbody></table><p><a href="#/alerts">all alerts →</a></p>` : '<div class="empty">no alerts — nothing from your space was seen in the darknet</div>'}</div>
        <div class="card"><h2>Address space</h2>
          <table id="prefix-table"><tbody>${pf.prefixes.map(p => `<tr><td class="mono">${esc(p.prefix)}</td><td class="n"><button class="small rm-prefix" data-p="${esc(p.prefix)}">Remove</button></td></tr>`).join("") || '<tr><td class="muted">none registered</td></tr>'}</tbody></table>
          <form id="add-prefix" class="toolbar mt10"><input id="new-prefix" placeholder="192.0.2.0/24" required><button type="submit">Add prefix</button></form>
          <h2 class="mt16">Watches</h2>
          <table id="watch-table"><tbody>${wa.watches.map(w => `<tr><td class="mono">${esc(w.kind)}:${esc(typeof w.value === "object" ? JSON.stringify(w.value) : w.value)}</td><td class="n"><button class="small rm-watch" data-id="${esc(w.id)}">Remove</button></td></tr>`).join("") || '<tr><td class="muted">none</td></tr>'}</tbody></table>
          <form id="add-watch" class="toolbar mt10"><input id="new-watch" placeholder="port:23/tcp, tag:mirai, ip:203.0.113.7" required><button type="submit">Add watch</button></form>
        </div>
        <div class="card wide"><h2>Feeds for your tools</h2>
          <p class="sub">What TLP lets ${esc(me.org)} see, as files for firewalls and IDS (your login's session is used):</p>
          <div class="chips"><a class="chip" href="/api/v1/intel/export?format=plain">plain list</a><a class="chip" href="/api/v1/intel/export?format=csv">CSV</a><a class="chip" href="/api/v1/intel/export?format=suricata">Suricata rules</a><a class="chip" href="#/intel">browse intelligence →</a></div>
          <p class="sub">TAXII 2.1: <span class="mono">${esc(location.origin)}/taxii2/</span> with HTTP Basic (user name and an API token as password).</p>
        </div>
      </div>`;
    document.querySelectorAll("tr.click").forEach(tr => (tr.onclick = () => (location.hash = "#/alerts/" + tr.dataset.id)));
    $("#add-prefix").onsubmit = async ev => {
      ev.preventDefault();
      try {
        await api("/prefixes", { method: "POST", body: { prefix: $("#new-prefix").value.trim() } });
        toast("prefix added");
        portal();
      } catch (e) {
        toast(e.message);
      }
    };
    document.querySelectorAll(".rm-prefix").forEach(b => (b.onclick = async () => {
      const [addr, len] = b.dataset.p.split("/");
      await api(`/prefixes/${encodeURIComponent(me.org)}/${addr}/${len}`, { method: "DELETE" });
      toast("prefix removed");
      portal();
    }));
    $("#add-watch").onsubmit = async ev => {
      ev.preventDefault();
      try {
        await api("/watches", { method: "POST", body: { spec: $("#new-watch").value.trim() } });
        toast("watch added");
        portal();
      } catch (e) {
        toast(e.message);
      }
    };
    document.querySelectorAll(".rm-watch").forEach(b => (b.onclick = async () => {
      await api(`/watches/${b.dataset.id}`, { method: "DELETE" });
      toast("watch removed");
      portal();
    }));
  }

  // ------------------------------------------------------------------ intelligence
  async function intel(params) {
    const co = await api("/intel/collections");
    const sel = params.get("c") || (co.collections[0] || {}).alias;
    app().innerHTML = `
      <div class="toolbar"><h1 class="m0">Intelligence</h1><span class="sp"></span>
        <form id="corr" class="toolbar" class="m0"><input id="corr-q" size="34" placeholder="address, domain, hash or indicator id" value="${esc(params.get("q") || "")}"><button>Correlate</button></form></div>
      <div id="corr-out"></div>
      <div class="grid g4" id="colls">${co.collections
        .map(c => `<a class="card" href="#/intel?c=${encodeURIComponent(c.alias)}"><div class="l sub">${esc(c.alias)} · default <span class="tlp tlp-${esc(c.default_tlp)}">TLP:${esc(String(c.default_tlp).toUpperCase())}</span></div><div class="ctitle">${esc(c.title)}</div><div class="tile"><div class="v">${fmt(c.visible_objects)}</div><div class="d">objects you may see${c.can_write ? " · you may post" : ""}</div></div></a>`)
        .join("")}</div>
      <div class="card mt16"><h2>${esc(sel || "")}</h2><div class="scroll" id="objs"></div><div id="objs-more"></div></div>`;
    $("#corr").onsubmit = ev => {
      ev.preventDefault();
      location.hash = `#/intel?c=${encodeURIComponent(sel || "")}&q=${encodeURIComponent($("#corr-q").value.trim())}`;
    };
    if (params.get("q")) {
      const r = await api("/intel/correlate?q=" + encodeURIComponent(params.get("q")));
      $("#corr-out").innerHTML = `<div class="card mb16"><h2>Where ${esc(r.values.join(", ") || params.get("q"))} shows up</h2><div class="grid g3">
        <div><b>Intelligence</b>${r.intel.length ? `<table><tbody>${r.intel.map(i => `<tr><td><span class="tlp tlp-${esc(i.tlp)}">${esc(String(i.tlp).toUpperCase())}</span></td><td>${esc(i.type)}</td><td>${esc(i.name || i.id)}</td><td class="muted">${esc(i.collection)}</td></tr>`).join("")}</tbody></table>` : '<div class="empty">nothing you may see</div>'}</div>
        <div><b>Member sensors</b>${r.sensors.length ? `<table><tbody>${r.sensors.map(s => `<tr><td>${esc(s.organisation)}</td><td>${esc(s.sensor)}</td><td>${esc(s.format)}</td><td class="n">${fmt(s.events)}</td></tr>`).join("")}</tbody></table>` : '<div class="empty">none of the sensors you may see</div>'}</div>
        <div><b>Darknet findings</b>${r.findings.length ? `<table><tbody>${r.findings.map(f => `<tr><td>${esc(f.kind)}</td><td>${short(f.time)}</td><td>${esc(f.port ?? "")}</td><td>${esc(f.tool || "")}</td><td class="n">${fmt(f.packets)}</td></tr>`).join("")}</tbody></table>` : '<div class="empty">none</div>'}</div>
      </div></div>`;
    }
    if (!sel) return;
    let after = null;
    const load = async () => {
      const r = await api(`/intel/objects?collection=${encodeURIComponent(sel)}&limit=100${after ? "&after=" + after : ""}`);
      const rows = r.objects.map(o => {
        const x = o.object;
        return `<tr><td><span class="tlp tlp-${esc(o.tlp)}">TLP:${esc(String(o.tlp).toUpperCase())}</span></td><td>${esc(x.type)}</td><td>${esc(x.name || x.value || x.pattern || x.relationship_type || x.id)}</td><td class="mono muted">${esc(x.id)}</td><td>${esc(short(x.modified || ""))}</td></tr>`;
      });
      const t = $("#objs");
      if (!after) t.innerHTML = rows.length ? `<table><thead><tr><th>TLP</th><th>type</th><th>name / value</th><th>id</th><th>modified</th></tr></thead><tbody id="obj-rows"></tbody></table>` : '<div class="empty">nothing you may see here</div>';
      const body = $("#obj-rows");
      if (body) body.insertAdjacentHTML("beforeend", rows.join(""));
      after = r.next_after;
      $("#objs-more").innerHTML = r.more ? '<button id="more">More</button>' : "";
      if (r.more) $("#more").onclick = load;
    };
    await load();
  }

  // ------------------------------------------------------------------ workbench
  async function workbench(params) {
    const initial = params.get("sql") || "SELECT dst_port, count(*) AS packets, count(DISTINCT src_ip4) AS sources\nFROM packets WHERE proto = 6 AND tcp_flags = 2\nGROUP BY dst_port ORDER BY packets DESC LIMIT 20";
    app().innerHTML = `
      <h1>Analyst workbench</h1>
      <div class="card"><textarea id="sql" spellcheck="false">${esc(initial)}</textarea>
        <div class="toolbar mt10 mb0"><button class="primary" id="run">Run (Ctrl+Enter)</button><span class="sub">Tables: packets, events, findings, ongoing, stats, port_stats, campaigns, quarantine. Helpers: ip4_str(u32), ip4('1.2.3.4').</span><span class="sp"></span>
          <label>Chart <select id="ctype"><option>bar</option><option>line</option><option>none</option></select></label></div></div>
      <div class="card mt16" id="wb-chart-card"><div id="wb-chart"></div></div>
      <div class="card mt16"><div class="sub" id="wb-status"></div><div class="scroll" id="wb-out"></div></div>`;
    let last = null;
    const chart = () => {
      const card = $("#wb-chart-card");
      if (!last || $("#ctype").value === "none") {
        card.hidden = true;
        return;
      }
      const num = last.columns.findIndex(c => c.numeric);
      const lab = last.columns.findIndex((c, i) => i !== num);
      if (num < 0 || !last.rows.length) {
        card.hidden = true;
        return;
      }
      card.hidden = false;
      const rows = last.rows.slice(0, 50);
      const labels = rows.map(r => String(r[lab < 0 ? num : lab] ?? ""));
      const values = rows.map(r => Number(r[num]) || 0);
      if ($("#ctype").value === "line") {
        Charts.line($("#wb-chart"), { labels, series: [{ name: last.columns[num].name, color: "#7aa2f7", values, area: true }] });
      } else {
        Charts.bars($("#wb-chart"), labels.map((l, i) => ({ label: l, value: values[i] })));
      }
    };
    const run = async () => {
      $("#wb-status").textContent = "running…";
      try {
        last = await api("/query", { method: "POST", body: { sql: $("#sql").value, limit: 1000 } });
        $("#wb-status").textContent = `${fmt(last.rows.length)} row(s)${last.truncated ? " (first 1,000)" : ""} in ${fmt(last.elapsed_ms)} ms`;
        $("#wb-out").innerHTML = `<table id="wb-table"><thead><tr>${last.columns.map(c => `<th class="${c.numeric ? "n" : ""}">${esc(c.name)}</th>`).join("")}</tr></thead><tbody>${last.rows
          .map(r => `<tr>${r.map((v, i) => `<td class="${last.columns[i].numeric ? "n" : ""} mono">${v === null ? "" : esc(v)}</td>`).join("")}</tr>`)
          .join("")}</tbody></table>`;
        chart();
      } catch (e) {
        $("#wb-status").textContent = "error: " + e.message;
        $("#wb-out").innerHTML = "";
        last = null;
        chart();
      }
    };
    $("#run").onclick = run;
    $("#ctype").onchange = chart;
    $("#sql").onkeydown = ev => {
      if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) run();
    };
    await run();
  }

  // ------------------------------------------------------------------ members (operator)
  async function members() {
    const r = await api("/orgs");
    app().innerHTML = `
      <h1>Organisations</h1>
      <div class="card"><table><thead><tr><th>organisation</th><th>kind</th><th>prefixes</th><th>webhook</th></tr></thead><tbody>${r.orgs
        .map(o => `<tr><td>${esc(o.name)}</td><td>${esc(o.kind)}</td><td class="mono">${esc(o.prefixes.join(" "))}</td><td class="mono">${esc(o.webhook_url || "–")}</td></tr>`)
        .join("")}</tbody></table></div>`;
  }

  // ------------------------------------------------------------------ routing
  async function route() {
    clearTimers();
    const [path, query] = location.hash.replace(/^#/, "").split("?");
    const parts = path.split("/").filter(Boolean);
    const params = new URLSearchParams(query || "");
    if (parts[0] === "login") return login();
    if (!me) {
      try {
        me = await api("/me");
      } catch {
        return login();
      }
    }
    nav();
    try {
      switch (parts[0] || "overview") {
        case "overview": return await overview(params);
        case "live": return live();
        case "findings": return await findings(params);
        case "finding": return await finding(parts[1]);
        case "alerts": return parts[1] ? await alertDetail(parts[1]) : await alerts();
        case "portal": return await portal();
        case "intel": return await intel(params);
        case "workbench": return await workbench(params);
        case "members": return await members();
        default: app().innerHTML = '<div class="card empty">no such page</div>';
      }
    } catch (e) {
      app().innerHTML = `<div class="card empty">${esc(e.message)}</div>`;
    }
  }

  window.addEventListener("hashchange", route);
  window.addEventListener("DOMContentLoaded", route);
  return { route };
})();
