// The ikev2-responder web console: asks /api/state every second and the selected SA's
// /api/sas/SPI, and draws them. Plain DOM, no framework, nothing loaded from elsewhere.
// Every value from the server goes in with textContent: identities come from peers.
"use strict";

const POLL_MS = 1000;
const ERROR_NOTIFIES = new Set([
  "UNSUPPORTED_CRITICAL_PAYLOAD", "INVALID_IKE_SPI", "INVALID_MAJOR_VERSION", "INVALID_SYNTAX",
  "INVALID_MESSAGE_ID", "INVALID_SPI", "NO_PROPOSAL_CHOSEN", "INVALID_KE_PAYLOAD",
  "AUTHENTICATION_FAILED", "SINGLE_PAIR_REQUIRED", "NO_ADDITIONAL_SAS", "INTERNAL_ADDRESS_FAILURE",
  "FAILED_CP_REQUIRED", "TS_UNACCEPTABLE", "INVALID_SELECTORS", "TEMPORARY_FAILURE",
  "CHILD_SA_NOT_FOUND",
]);

let selected = decodeURIComponent(location.hash.slice(1)) || null;
let pickedByUser = selected !== null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function clock(seconds) {
  const when = new Date(seconds * 1000);
  return when.toTimeString().slice(0, 8) + "." + String(when.getMilliseconds()).padStart(3, "0");
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return seconds.toFixed(0) + " s";
  if (seconds < 3600) return (seconds / 60).toFixed(0) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

function spis(item) {
  // Two lines, initiator's SPI first; the " / " stays in the text (copy, search) but not on screen.
  return el("div", {}, el("span", { class: "spi" }, item.spi_i, el("span", { class: "sep" }, " / ")),
    el("span", { class: "spi" }, item.spi_r || "0000000000000000"));
}

function select(spi) {
  selected = spi;
  pickedByUser = true;
  history.replaceState(null, "", "#" + spi);
  refresh();
}

function row(item, cells) {
  const tr = el("tr", { "data-spi": item.local_spi }, ...cells.map((cell) => el("td", {}, cell)));
  if (item.local_spi === selected) tr.classList.add("selected");
  tr.addEventListener("click", () => select(item.local_spi));
  return tr;
}

function fill(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows);
  const count = document.getElementById(`${id === "sas" ? "sa" : id === "refusals" ? "refused" : id}-count`);
  if (count) count.textContent = rows.length ? `(${rows.length})` : "";
}

function drawState(state) {
  const s = state.status;
  const status = document.getElementById("status");
  status.textContent =
    `${s.version} · up ${duration(s.uptime)} · ${s.ike_sas} IKE SAs (${s.established} established, ` +
    `${s.half_open} half-open) · ${s.child_sas} Child SAs · ${s.connections} connections · ` +
    `listening on ${s.listeners.join(", ")}`;
  status.classList.remove("stale");
  fill("sas", state.sas.map((sa) => row(sa, [
    spis(sa),
    el("span", { class: `state-${sa.state}` }, sa.state),
    sa.peer_id || "",
    el("span", { class: "mono" }, `${sa.transport} ${sa.remote}` + (sa.connection !== null ? ` conn ${sa.connection}` : "")),
    duration(sa.age),
    String(sa.child_sas.length),
    String(sa.esp_packets),
  ])));
  document.getElementById("sas-empty").hidden = state.sas.length > 0;
  if (s.ike_sas > state.sas.length) {
    document.getElementById("sa-count").textContent = `(${state.sas.length} of ${s.ike_sas}: the oldest)`;
  }
  fill("closed", state.closed.map((sa) => row(sa, [
    spis(sa), sa.peer_id || "", el("span", { class: "mono" }, sa.peer), clock(sa.closed), sa.close_reason || "",
  ])));
  fill("refusals", state.refusals.map((r) => el("tr", {},
    el("td", {}, clock(r.time)), el("td", { class: "mono" }, r.peer), el("td", { class: "spi" }, r.spi_i),
    el("td", {}, r.notify), el("td", { class: "reason" }, r.reason))));
  if (!pickedByUser) {
    // Nothing picked: follow the newest live SA (the table lists them oldest first), else the newest closed.
    const newest = state.sas.length ? state.sas[state.sas.length - 1] : state.closed[0];
    selected = newest ? newest.local_spi : null;
  }
}

function payloadChip(name) {
  const match = /^N\((.*)\)$/.exec(name);
  let kind = "payload";
  if (match) kind += ERROR_NOTIFIES.has(match[1]) ? " error" : " notify";
  return el("span", { class: kind }, name);
}

function drawLadder(answer) {
  const ladder = document.getElementById("ladder");
  const title = document.getElementById("ladder-title");
  const details = document.getElementById("sa-details");
  const record = answer.ladder;
  const sa = answer.sa;
  title.replaceChildren(el("span", { class: "spi" }, selected));
  const facts = [];
  if (sa) {
    facts.push(`${sa.state}`, sa.peer_id ? `peer ${sa.peer_id}` : null, `${sa.transport} ${sa.remote}`,
      sa.proposal, sa.rekey_in !== null ? `rekey in ${duration(sa.rekey_in)}` : null);
    for (const child of sa.child_sas) {
      facts.push(`Child SA ${child.inbound_spi}/${child.outbound_spi} ${child.mode} ` +
        `${child.local_ts.join(",")} ⇔ ${child.remote_ts.join(",")}`);
    }
  } else if (record) {
    facts.push(`closed: ${record.close_reason || "?"}`, record.peer);
  }
  details.textContent = facts.filter(Boolean).join(" · ");
  const rows = record ? record.rows : [];
  const items = [];
  if (record && record.rows_dropped) {
    items.push(el("li", { class: "note" }, `${record.rows_dropped} earlier rows not kept`));
  }
  for (const r of rows) {
    if (r.kind === "note") {
      items.push(el("li", { class: `note ${r.event}` }, el("span", { class: "time" }, clock(r.time)), r.text));
      continue;
    }
    const what = `${r.exchange} #${r.message_id} ${r.response ? "response" : "request"}`;
    const arrow = r.direction === "in" ? "→" : "←";
    const head = r.direction === "in"
      ? [el("span", { class: "arrow" }, arrow), " ", what, el("span", { class: "time" }, clock(r.time))]
      : [el("span", { class: "time" }, clock(r.time)), what, " ", el("span", { class: "arrow" }, arrow)];
    items.push(el("li", { class: r.direction, "data-exchange": r.exchange, "data-message-id": String(r.message_id) },
      el("div", {}, ...head),
      el("div", { class: "payloads" }, ...(r.payloads.length ? r.payloads.map(payloadChip) : [el("span", { class: "payload" }, "(empty)")])),
      r.result ? el("div", { class: "result" }, r.result) : null));
  }
  ladder.replaceChildren(...items);
  document.getElementById("ladder-empty").hidden = items.length > 0;
}

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    drawState(await getJson("api/state"));
    if (selected) {
      const answer = await getJson(`api/sas/${encodeURIComponent(selected)}`);
      if (answer) drawLadder(answer);
      else { document.getElementById("ladder").replaceChildren(); document.getElementById("ladder-empty").hidden = false; }
    }
  } catch (error) {
    const status = document.getElementById("status");
    status.textContent = `not updating: ${error.message} (has the responder stopped?)`;
    status.classList.add("stale");
  } finally {
    busy = false;
  }
}

refresh();
setInterval(refresh, POLL_MS);
