/**
 * The web page the proxy serves at `GET /`: the ring drawn as a circle (each node's share
 * of the hash space as one arc in its colour; while a node joins or leaves, the next ring
 * inside it; a looked-up key's point and its owners highlighted),
 * the nodes (URL, state, keys, bytes, share of the hash space, requests/s), the
 * rebalancing with keys moved and time left, a key lookup, and a live feed of changes (each
 * at the time its version says it was written, keys and values quoted as the CLI prints them).
 * Plain HTML and inline script, no build step. The page is public; every data call it makes
 * sends the admin token, entered once and kept in `sessionStorage`. A proxy that refuses the
 * admin API whatever the token (403: it has none) gets its message shown, not a token box.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { UI_PAGE } from "./ui_page.ts";
 * assert(UI_PAGE.startsWith("<!doctype html>"));
 * ```
 */

const STYLE = `
:root { --bg:#0f1419; --panel:#182029; --line:#2a3541; --text:#e6edf3; --dim:#8b98a5; --accent:#4cc2ff; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, sans-serif; background:var(--bg); color:var(--text); }
header { display:flex; align-items:center; gap:16px; padding:14px 24px; border-bottom:1px solid var(--line); }
header h1 { font-size:20px; margin:0; letter-spacing:.5px; }
header .dim { color:var(--dim); }
#status { margin-left:auto; color:var(--dim); font-size:13px; }
main { display:grid; grid-template-columns: 440px 1fr; gap:20px; padding:20px 24px; }
section { background:var(--panel); border:1px solid var(--line); border-radius:10px; padding:16px; }
h2 { font-size:13px; text-transform:uppercase; letter-spacing:1px; color:var(--dim); margin:0 0 12px; }
table { width:100%; border-collapse:collapse; }
th, td { text-align:left; padding:7px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { color:var(--dim); font-weight:500; font-size:12px; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
.swatch { display:inline-block; width:11px; height:11px; border-radius:3px; margin-right:7px; vertical-align:-1px; }
.badge { padding:2px 8px; border-radius:10px; font-size:12px; background:#24303c; }
.badge.up { background:#17432c; color:#6ee7a0; } .badge.down, .badge.unauthorized { background:#4a1c1c; color:#ff8a8a; }
.badge.joining, .badge.leaving { background:#47391a; color:#ffd479; }
.badge.read-only, .badge.stalled { background:#4a2f12; color:#ffb066; }
.bar { height:12px; background:#24303c; border-radius:6px; overflow:hidden; margin:10px 0; }
.bar > div { height:100%; background:linear-gradient(90deg,#4cc2ff,#7c5cff); transition:width .4s; }
.right { display:flex; flex-direction:column; gap:20px; }
input, button { font:inherit; padding:7px 10px; border-radius:6px; border:1px solid var(--line); background:#0f1419; color:var(--text); }
button { background:var(--accent); color:#04121c; border:none; font-weight:600; cursor:pointer; }
.warn { color:#ffd479; } .err { color:#ff8a8a; } .dim { color:var(--dim); }
#login, #refused { max-width:420px; margin:80px auto; }
#feed li { overflow-wrap:anywhere; }
svg text { fill:var(--dim); font-size:12px; }
svg text.arc-label { fill:var(--text); font-size:11px; }
#ring { width:100%; max-width:400px; height:auto; display:block; margin:0 auto; }
.table-wrap { overflow-x:auto; }
main > *, .right > * { min-width:0; }
@media (max-width: 900px) {
  main { grid-template-columns: 1fr; padding:12px; gap:12px; }
  header { flex-wrap:wrap; padding:12px; gap:8px; }
  #status { margin-left:0; }
  #lookup-key { width:100%; margin-bottom:6px; }
  header span { white-space:normal; }
  #lookup-result { overflow-wrap:anywhere; }
  #token { width:100%; }
  #login, #refused { margin:24px 12px; }
}
`;

const SCRIPT = `
const $ = (id) => document.getElementById(id);
const COLORS = ["#4cc2ff","#ff7a59","#7ee081","#c77dff","#ffd166","#ef476f","#06d6a0","#f78c6b","#9bb1ff","#e9c46a"];
const state = { ringEpoch: -1, ring: null, stats: null, prevStats: null, lookup: null, colors: {} };
function el(tag, attrs, ...kids) {
  const ns = ["svg","path","circle","line","text","g","title"].includes(tag) ? "http://www.w3.org/2000/svg" : null;
  const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const k of kids) e.append(k instanceof Node ? k : String(k));
  return e;
}
function token() { return sessionStorage.getItem("ringkv-token"); }
/** The proxy's own words from an error answer (every error body is {"error": {"message"}}). */
async function errorMessage(res) {
  try { return (await res.json()).error.message; } catch { return "HTTP " + res.status; }
}
async function api(path, signal) {
  const sent = token();
  const timeout = AbortSignal.timeout(10000);
  const res = await fetch(path, { headers: sent ? { authorization: "Bearer " + sent } : {}, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
  if (res.status === 401 || res.status === 403) {
    const message = await errorMessage(res);
    // An answer to a token the user has since replaced says nothing about the new one.
    if (token() === sent) {
      // 403: the proxy refuses every token (it has none); asking for another would be a loop.
      if (res.status === 403) showRefused(message);
      else showLogin(sent !== null ? "The token was refused: " + message : "");
    }
    throw new Error("auth");
  }
  if (!res.ok) throw new Error(path + ": " + res.status);
  return res.json();
}
function colorOf(id) {
  if (!(id in state.colors)) state.colors[id] = COLORS[Object.keys(state.colors).length % COLORS.length];
  return state.colors[id];
}
function bytes(n) { const u = ["B","KiB","MiB","GiB"]; let i = 0; while (n >= 1024 && i < 3) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + " " + u[i]; }
function secs(s) { return s < 60 ? Math.round(s) + " s" : Math.floor(s / 60) + " min " + Math.round(s % 60) + " s"; }
function arcPath(r, a0, a1) {
  const p = (a) => [200 + r * Math.sin(a), 200 - r * Math.cos(a)];
  const f = (a) => p(a).map((v) => v.toFixed(2)).join(" ");
  const arc = " A" + r + " " + r + " 0 0 1 ";
  return "M" + f(a0) + arc + f((a0 + a1) / 2) + arc + f(a1);
}
// Each node's share of the hash space as one arc, in node order: 1,200 points per node
// drawn where they fall would be an unreadable fuzz.
function shareArcs(shares, r, width, owners) {
  const g = el("g", { class: "ring" });
  const TAU = 2 * Math.PI;
  let a0 = 0;
  for (const id of Object.keys(shares).sort()) {
    const a1 = a0 + shares[id] * TAU;
    const owner = owners && owners.includes(id);
    const attrs = { d: arcPath(r, a0, Math.max(a0 + 0.002, a1 - 0.01)), stroke: colorOf(id), "stroke-width": owner ? width + 8 : width, fill: "none", class: "arc" + (owner ? " owner" : ""), "data-node": id };
    if (owners && !owner) attrs.opacity = 0.35;
    const path = el("path", attrs);
    path.append(el("title", {}, id + ": " + (shares[id] * 100).toFixed(1) + " % of the keys"));
    g.append(path);
    const mid = (a0 + a1) / 2, lr = r + width / 2 + 14;
    if (shares[id] > 0.03) g.append(el("text", { x: 200 + lr * Math.sin(mid), y: 204 - lr * Math.cos(mid), "text-anchor": "middle", class: "arc-label" }, id));
    a0 = a1;
  }
  return g;
}
function drawRing() {
  const svg = $("ring"); svg.replaceChildren();
  if (!state.ring) return;
  const owners = state.lookup ? state.lookup.owners.map((o) => o.id) : null;
  const nextOwners = state.lookup && state.lookup.next ? state.lookup.next.map((o) => o.id) : owners;
  svg.append(shareArcs(state.ring.shares, 150, 24, owners));
  if (state.ring.next) { svg.append(shareArcs(state.ring.next.shares, 112, 14, nextOwners)); svg.append(el("text", { x: 200, y: 240, "text-anchor": "middle", class: "warn", style: "fill:#ffd479" }, "inner ring: after the move")); }
  const mid = state.ring.next ? 178 : 196;
  svg.append(el("text", { x: 200, y: mid, "text-anchor": "middle", style: "font-size:22px;fill:#e6edf3" }, state.ring.nodes.length + " nodes"));
  svg.append(el("text", { x: 200, y: mid + 20, "text-anchor": "middle" }, "epoch " + state.ring.epoch + " · share of the keys"));
  if (state.lookup && owners.length) {
    // The arcs show shares, not positions: the key is marked on its first owner's arc.
    const a = arcMid(state.ring.shares, owners[0]), r = 150;
    const [x, y] = [200 + r * Math.sin(a), 200 - r * Math.cos(a)];
    svg.append(el("line", { x1: 200 + 60 * Math.sin(a), y1: 200 - 60 * Math.cos(a), x2: x, y2: y, stroke: "#fff", "stroke-width": 1.5, "stroke-dasharray": "3 3" }));
    svg.append(el("circle", { cx: x, cy: y, r: 7, fill: "#fff", stroke: "#0f1419", "stroke-width": 2, class: "key-point" }, el("title", {}, state.lookup.key + " (ring point " + state.lookup.point + "): " + owners.join(", "))));
  }
}
function arcMid(shares, id) {
  let a0 = 0;
  for (const other of Object.keys(shares).sort()) {
    const a1 = a0 + shares[other] * 2 * Math.PI;
    if (other === id) return (a0 + a1) / 2;
    a0 = a1;
  }
  return 0;
}
function drawNodes(cluster, shares) {
  const stats = Object.fromEntries((state.stats?.nodes || []).map((s) => [s.id, s]));
  const prev = Object.fromEntries((state.prevStats?.nodes || []).map((s) => [s.id, s]));
  const dt = state.prevStats ? (state.stats.time - state.prevStats.time) / 1000 : 0;
  const rows = cluster.nodes.map((n) => {
    const s = stats[n.id]?.up ? stats[n.id] : null, p = prev[n.id];
    const rate = s && p && dt > 0 ? Math.max(0, (s.requests - p.requests) / dt).toFixed(1) : "–";
    const w = n.writes, verb = w && (w.state === "stalled" ? "writes wait" : "refuses writes");
    return el("tr", { "data-node": n.id },
      el("td", {}, el("span", { class: "swatch", style: "background:" + colorOf(n.id) }), n.id),
      el("td", { class: "dim" }, n.url),
      el("td", {}, el("span", { class: "badge " + n.state, title: w ? verb + ": " + (w.reason || w.state) : "" }, n.state),
        w ? el("div", { class: "warn" }, verb + " since " + new Date(w.since).toLocaleTimeString() + ": " + (w.reason || w.state)) : ""),
      el("td", { class: "num" }, n.keys ?? "–"),
      el("td", { class: "num" }, s ? bytes(s.valueBytes) : "–"),
      el("td", { class: "num" }, n.id in shares ? (shares[n.id] * 100).toFixed(1) + " %" : "–"),
      el("td", { class: "num" }, rate));
  });
  $("nodes").replaceChildren(...rows);
}
function drawRebalancing(rb, epoch) {
  const box = $("rebalancing");
  if (!rb) { box.replaceChildren(el("p", { class: "dim" }, "No rebalancing: the cluster is stable at epoch " + epoch + ".")); return; }
  const total = rb.totalKeys ?? 0;
  const frac = rb.phase === "cleanup" ? 1 : total > 0 ? Math.min(1, rb.movedKeys / total) : 0;
  const elapsed = (Date.now() - rb.startedAt) / 1000;
  // The rate is keys placed per second so far; what is left is keys, not copies.
  const rate = elapsed > 0 ? rb.movedKeys / elapsed : 0;
  const left = rb.phase === "cleanup" ? "dropping moved keys from old owners" : rate > 0 && frac < 1 ? secs(Math.max(0, total - rb.movedKeys) / rate) + " left at " + Math.round(rate) + " keys/s (estimate)" : "estimating…";
  const bar = el("div", { class: "bar" }, el("div", { style: "width:" + (frac * 100).toFixed(1) + "%" }));
  box.replaceChildren(
    el("p", {}, el("b", {}, (rb.kind === "add" ? "Adding " : "Removing ") + rb.nodeId), " — phase ", el("b", { id: "phase" }, rb.phase)),
    bar,
    el("p", { id: "moved" }, rb.movedKeys + " of ~" + (rb.totalKeys ?? "?") + " keys moved" + (rb.movedCopies !== undefined && rb.movedCopies !== rb.movedKeys ? " (" + rb.movedCopies + " copies read from the old replicas)" : "") + " · " + secs(elapsed) + " elapsed · " + left),
    rb.error ? el("p", { class: "warn" }, "Paused, retrying: " + rb.error) : "");
}
async function refresh(signal) {
  try {
    const cluster = await api("/cluster", signal);
    if (cluster.epoch !== state.ringEpoch) { state.ring = await api("/ring", signal); state.ringEpoch = cluster.epoch; }
    state.prevStats = state.stats; state.stats = await api("/stats", signal);
    for (const n of cluster.nodes) colorOf(n.id);
    if (state.lookup && state.lookup.epoch !== cluster.epoch) await findOwners(state.lookup.key, cluster.epoch);
    drawRing(); drawNodes(cluster, state.ring.shares); drawRebalancing(cluster.rebalancing, cluster.epoch);
    const up = state.stats.nodes.filter((n) => n.up);
    // Keys are distinct keys; each has up to "replicas" copies across the nodes.
    $("totals").textContent = (cluster.keys ?? "?") + " keys · " + cluster.copies + " copies (" + cluster.replicas + " per key) · " + bytes(up.reduce((a, n) => a + n.valueBytes, 0)) + (cluster.belowReplicas ? " · " + cluster.nodesUp + " nodes up for " + cluster.replicas + " replicas" : "");
    $("totals").className = cluster.belowReplicas ? "warn" : "dim";
    $("status").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (err) {
    if (err.message !== "auth" && !signal.aborted) $("status").textContent = "error: " + err.message;
  }
}
async function lookup(ev) {
  ev.preventDefault();
  await findOwners($("lookup-key").value, state.ringEpoch);
}
async function findOwners(key, epoch) {
  const out = $("lookup-result");
  try {
    const res = await fetch("/ring/owners?key=" + encodeURIComponent(key), { headers: { authorization: "Bearer " + token() }, signal: AbortSignal.timeout(10000) });
    const body = await res.json();
    if (!res.ok) { out.replaceChildren(el("span", { class: "err" }, body.error.message)); return; }
    state.lookup = { ...body, epoch }; drawRing();
    const names = (list) => list.map((o) => el("span", {}, el("span", { class: "swatch", style: "background:" + colorOf(o.id) }), o.id + " (" + o.url + ") "));
    out.replaceChildren(el("div", {}, "owned by ", ...names(body.owners)), body.next && body.next.map((o) => o.id).join() !== body.owners.map((o) => o.id).join() ? el("div", { class: "warn" }, "moving to ", ...names(body.next)) : "", el("div", { class: "dim" }, "ring point " + body.point));
  } catch (err) { out.replaceChildren(el("span", { class: "err" }, String(err))); }
}
// How the CLI prints a key and a value (tasks/kv_output.ts quoted() and jsonQuoted(); the page is
// a string and cannot import them, so keep these rules identical to that file's): a key bare when
// it reads back unambiguously, else in JSON quotes with anything invisible (controls, bidi controls
// such as U+202E, separators) as \\u escapes.
const NEEDS_QUOTES = /[\\s"\\\\\\p{C}\\p{Z}]/u;
const INVISIBLE = /[\\p{C}\\p{Z}]/gu;
function quoted(text) { return text !== "" && !NEEDS_QUOTES.test(text) ? text : jsonQuoted(text); }
function jsonQuoted(text) { return JSON.stringify(text).replace(INVISIBLE, (ch) => ch === " " ? ch : utf16Escapes(ch)); }
function utf16Escapes(ch) {
  let out = "";
  for (let i = 0; i < ch.length; i++) out += "\\\\u" + ch.charCodeAt(i).toString(16).padStart(4, "0");
  return out;
}
const KEY_SHOWN = 80, VALUE_SHOWN = 60;
/** The first max code points of text (an emoji's surrogate pair is one), and whether it was longer. */
function head(text, max) {
  let n = 0, end = 0;
  for (const ch of text) { if (n++ === max) return [text.slice(0, end), true]; end += ch.length; }
  return [text, false];
}
// A cut text is always quoted, with "…" after the closing quote: the key does not end there.
function shownKey(key) { const [h, cut] = head(key, KEY_SHOWN); return cut ? jsonQuoted(h) + "…" : quoted(key); }
function shownValue(value) { const [h, cut] = head(value, VALUE_SHOWN); return jsonQuoted(h) + (cut ? "…" : ""); }
/**
 * A change as a line: when the page received it, the key and the value as the CLI shows them. Not
 * the clock part of its version: a proxy's one-round-trip writes keep their base's (QA: three
 * writes of a key seconds apart all showed the first one's time).
 */
function changeLine(d) {
  const now = new Date();
  const time = el("span", { class: "time", title: "received at " + now.toISOString() + ", version " + d.version }, now.toLocaleTimeString());
  // bdi: a right-to-left key or value is laid out on its own, not with the rest of the line.
  const kids = [time, d.deleted ? "  del " : "  put ", el("bdi", { class: "key", title: quoted(d.key) }, shownKey(d.key))];
  if (!d.deleted) kids.push(" = ", d.value !== undefined ? el("bdi", { class: "value" }, shownValue(d.value)) : "(binary)");
  return el("li", { class: "change" }, ...kids);
}
// Live feed of recent changes: GET /watch read with fetch (EventSource cannot send a token).
const FEED_LINES = 20;
function feedAdd(li) {
  const list = $("feed");
  list.prepend(li);
  while (list.children.length > FEED_LINES) list.lastChild.remove();
}
function feedLine(text, cls) { feedAdd(el("li", cls ? { class: cls } : {}, text)); }
/**
 * A failure to read /watch. The same failure again, with no change in between, counts on its own
 * line instead of adding one: an outage retried every second must not push the changes out.
 */
function feedError(text) {
  const now = new Date().toLocaleTimeString();
  let li = $("feed").firstElementChild;
  while (li && li.classList.contains("fail") && li.dataset.text !== text) li = li.nextElementSibling;
  if (!li || !li.classList.contains("fail")) li = el("li", { class: "err fail", "data-text": text, "data-count": 0, "data-first": now });
  const n = Number(li.dataset.count) + 1;
  li.dataset.count = n;
  li.textContent = now + "  " + text + (n > 1 ? " (" + n + " times since " + li.dataset.first + ")" : "");
  feedAdd(li);
}
/** The token /watch takes: the client token when the proxy has one (asked for on a 401). */
function watchToken() { return sessionStorage.getItem("ringkv-client-token") || token(); }
function askClientToken() {
  const input = el("input", { id: "client-token", type: "password", placeholder: "client token", size: "24" });
  const form = el("form", { id: "client-token-form" }, "The proxy has a client token, which /watch needs: ", input, " ", el("button", { type: "submit" }, "Watch"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault(); sessionStorage.setItem("ringkv-client-token", input.value.trim()); form.remove();
    for (const line of document.querySelectorAll("#feed .asks-token")) line.remove();
    feed();
  });
  $("feed").before(form);
}
/** Resolves after ms, or at once when signal aborts. */
function pause(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
}
/** The running feed's controller: aborting it ends the feed's fetch and its loop. */
let feedRun = null;
function stopFeed() { if (feedRun) feedRun.abort(); feedRun = null; }
async function feed() {
  if (feedRun) return;
  const run = new AbortController();
  feedRun = run;
  let cursor = null;
  // Like EventSource, it tries again for as long as the page shows it: a proxy at its stream cap
  // or restarting comes back.
  while (!run.signal.aborted) {
    const headers = { accept: "text/event-stream", authorization: "Bearer " + watchToken() };
    if (cursor) headers["last-event-id"] = cursor;
    // A stream that says nothing for 15 s (the proxy sends a comment every 5 s), or a proxy that
    // does not answer, is given up and opened again.
    const quiet = new AbortController();
    let silent;
    const wake = () => { clearTimeout(silent); silent = setTimeout(() => quiet.abort(new Error("no answer in 15 s")), 15000); };
    wake();
    try {
      const res = await fetch("/watch", { headers, signal: AbortSignal.any([quiet.signal, run.signal]) });
      if (res.status === 401) {
        sessionStorage.removeItem("ringkv-client-token");
        feedLine("live feed: the proxy asks for its client token", "err asks-token");
        if (!$("client-token-form")) askClientToken();
        clearTimeout(silent);
        break;
      }
      // 503: a proxy starting or at its stream cap; 400: a cursor it cannot read: start afresh.
      if (res.status === 400) cursor = null;
      if (!res.ok) {
        await res.body?.cancel();
        feedError("live feed unavailable: " + res.status + ", trying again");
        clearTimeout(silent);
        await pause(1000, run.signal);
        continue;
      }
      let buf = "";
      for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
        wake();
        buf += chunk;
        let cut;
        while ((cut = buf.indexOf("\\n\\n")) !== -1) {
          const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
          let ev = "message", data = "";
          for (const line of block.split("\\n")) {
            if (line.startsWith("id: ")) cursor = line.slice(4);
            else if (line.startsWith("event: ")) ev = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (!data) continue;
          const d = JSON.parse(data);
          // After a reset the stream ends; the next one starts from the present (no cursor).
          if (ev === "reset") cursor = null;
          if (ev !== "message") { feedLine(ev + ": " + d.reason, "err event"); continue; }
          feedAdd(changeLine(d));
        }
      }
    } catch (err) { if (!run.signal.aborted) feedError("live feed: " + err); }
    clearTimeout(silent);
    await pause(1000, run.signal);
  }
  if (feedRun === run) feedRun = null;
}
/** The running refresh loop's controller, like the feed's. */
let polling = null;
function poll() {
  if (polling) return;
  const run = new AbortController();
  polling = run;
  (async () => { while (!run.signal.aborted) { await refresh(run.signal); await pause(1000, run.signal); } })();
}
/** Shows one of the page's views (login, refused, app); anything but the app stops its calls. */
function show(view) {
  for (const id of ["login", "refused", "app"]) $(id).hidden = id !== view;
  if (view === "app") return;
  if (polling) polling.abort();
  polling = null;
  stopFeed();
}
function start() { show("app"); poll(); feed(); }
/** The token box; both tokens leave the tab, as on a logout. */
function showLogin(message) {
  sessionStorage.removeItem("ringkv-token"); sessionStorage.removeItem("ringkv-client-token");
  show("login"); $("login-msg").textContent = message || "";
}
/** A proxy that refuses every token: its own words, and no token box (the token is kept). */
function showRefused(message) { show("refused"); $("refused-msg").textContent = message; }
/** Asks the proxy once with the token held (if any): the app, the token box, or why it refuses. */
async function probe() {
  try { await api("/cluster"); } catch (err) {
    if (err.message === "auth") return;
    if (!token()) { show("login"); $("login-msg").textContent = "Cannot reach the proxy: " + err.message; return; }
  }
  start();
}
$("login-form").addEventListener("submit", (ev) => { ev.preventDefault(); sessionStorage.setItem("ringkv-token", $("token").value.trim()); probe(); });
$("retry").addEventListener("click", probe);
$("lookup").addEventListener("submit", lookup);
probe();
`;

/** The whole page. */
export const UI_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ringkv</title>
<link rel="icon" href="data:,">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${STYLE}</style></head>
<body>
<header><h1>ringkv</h1><span class="dim">consistent-hashing key-value store</span><span id="totals" class="dim"></span><span id="status"></span></header>
<section id="login" hidden>
  <h2>Admin token</h2>
  <form id="login-form"><p class="dim">The page reads the admin API with the admin token. Where it is:
  <code>deno task cluster</code> prints it and keeps it in <code>data/admin-token</code>
  (<code>cat data/admin-token</code>); a proxy started by hand has the <code>--admin-token</code> or
  <code>RINGKV_ADMIN_TOKEN</code> it was given. It stays in this tab (sessionStorage).</p>
  <input id="token" type="password" placeholder="admin token" autocomplete="off" size="32">
  <button id="connect" type="submit">Connect</button><p id="login-msg" class="err"></p></form>
</section>
<section id="refused" hidden>
  <h2>Admin API refused</h2>
  <p id="refused-msg" class="err"></p>
  <p class="dim">The proxy answers 403 whatever token is sent, so the page does not ask for one (a
  token already given stays in this tab). A proxy without an admin token is started with one by
  <code>--admin-token TOKEN</code> or <code>RINGKV_ADMIN_TOKEN=TOKEN</code>; <code>deno task cluster</code>
  makes one and keeps it in <code>data/admin-token</code>. Then:</p>
  <button id="retry" type="button">Try again</button>
</section>
<main id="app" hidden>
  <section><h2>Ring</h2><svg id="ring" viewBox="0 0 400 400" role="img" aria-label="each node's share of the hash ring"></svg>
    <form id="lookup"><h2 style="margin-top:12px">Key lookup</h2>
      <input id="lookup-key" placeholder="key, e.g. users/42" size="26"> <button id="lookup-go" type="submit">Find owners</button>
      <div id="lookup-result" style="margin-top:10px"></div></form></section>
  <div class="right">
    <section><h2>Nodes</h2><div class="table-wrap"><table><thead><tr><th>node</th><th>URL</th><th>state</th><th class="num">keys</th>
      <th class="num">bytes</th><th class="num">share</th><th class="num">req/s</th></tr></thead><tbody id="nodes"></tbody></table></div></section>
    <section><h2>Rebalancing</h2><div id="rebalancing"></div></section>
    <section><h2>Live changes</h2><ul id="feed" class="dim" style="font-family:monospace;list-style:none;padding:0;margin:0"></ul></section>
  </div>
</main>
<script>${SCRIPT}</script>
</body></html>
`;
