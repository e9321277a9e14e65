// The technician screen, behind the PIN: device health, re-read, profiles, audit, log tail.
import * as api from "./api.js";
import { label, locale, t } from "./i18n.js";
import { ProfileTools } from "./profiles.js";

const $ = (id) => document.getElementById(id);
const AUDIT_LIMIT = 200;
const SESSION_KEY = "tribune.technician";

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "—";
  if (className) td.className = className;
  return td;
}

function table(headKeys, rows) {
  const el = document.createElement("table");
  const head = document.createElement("tr");
  for (const key of headKeys) {
    const th = document.createElement("th");
    th.textContent = t(key);
    head.append(th);
  }
  const thead = document.createElement("thead");
  thead.append(head);
  const tbody = document.createElement("tbody");
  tbody.append(...rows);
  el.append(thead, tbody);
  return el;
}

function clock(at) {
  if (!at) return "—";
  return new Date(at * 1000).toLocaleString(locale(), {
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

function ago(at) {
  if (!at) return t("tech.never");
  return t("tech.ago", { n: Math.max(0, Math.round(Date.now() / 1000 - at)) });
}

export class TechScreen {
  constructor(store, { onError, onClose }) {
    this.store = store;
    this.onError = onError;
    this.onClose = onClose;
    this.onOpen = () => {};
    this.tab = "devices";
    this.entries = [];
    this.profiles = [];
    this.logs = [];
    this.rereads = {}; // device id -> { pending, text }
    this.expiry = null;
    this.bind();
    this.tools = new ProfileTools({
      onChange: () => this.renderDevices(),
      onAuthLost: () => this.sessionLost(),
    });
  }

  bind() {
    const keypad = $("keypad");
    for (const key of ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0", "C"]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = key;
      button.dataset.testid = `pin-key-${key === "⌫" ? "back" : key === "C" ? "clear" : key}`;
      button.addEventListener("click", () => {
        const input = $("tech-pin");
        if (key === "⌫") input.value = input.value.slice(0, -1);
        else if (key === "C") input.value = "";
        else if (input.value.length < 12) input.value += key;
        input.focus();
      });
      keypad.append(button);
    }
    $("pin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.submitPin();
    });
    $("pin-cancel").addEventListener("click", () => this.hidePin());
    $("tech-close").addEventListener("click", () => this.close());
    for (const button of document.querySelectorAll("[data-tab]")) {
      button.addEventListener("click", () => this.show(button.dataset.tab));
    }
  }

  askPin() {
    const saved = this.savedSession();
    if (saved) {
      api.setTechnicianToken(saved.token);
      this.open();
      return;
    }
    $("pin-error").textContent = this.store.panel && !this.store.panel.technician_pin ? t("tech.pin_none") : "";
    $("tech-pin").value = "";
    $("pin-dialog").hidden = false;
    $("tech-pin").focus();
  }

  hidePin() {
    $("pin-dialog").hidden = true;
    $("tech-pin").value = "";
  }

  async submitPin() {
    const pin = $("tech-pin").value;
    if (!pin) return;
    $("pin-submit").disabled = true;
    $("pin-error").textContent = t("tech.pin_checking");
    try {
      const session = await api.post("/technician/session", { pin });
      api.setTechnicianToken(session.token);
      this.expiry = Date.now() + session.expires_in * 1000;
      try {
        sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token: session.token, expiry: this.expiry }));
      } catch { /* not kept */ }
      this.hidePin();
      this.open();
    } catch (error) {
      $("tech-pin").value = "";
      if (error.status === 429) $("pin-error").textContent = t("tech.pin_locked", { n: error.retryAfter || 60 });
      else if (error.kind === "wrong-pin") $("pin-error").textContent = t("tech.pin_wrong");
      else if (error.kind === "no-pin") $("pin-error").textContent = t("tech.pin_none");
      else $("pin-error").textContent = t("error.generic");
    } finally {
      $("pin-submit").disabled = false;
    }
  }

  savedSession() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      if (saved && saved.expiry > Date.now() + 5000) return saved;
    } catch { /* none */ }
    return null;
  }

  async open() {
    this.onOpen();
    this.show("devices");
    await this.refresh();
  }

  async close() {
    try {
      await api.del("/technician/session", { technician: true });
    } catch { /* expired already */ }
    api.setTechnicianToken(null);
    try { sessionStorage.removeItem(SESSION_KEY); } catch { /* none */ }
    this.onClose();
  }

  async refresh() {
    try {
      const [audit, profiles, logs] = await Promise.all([
        api.get(`/audit?limit=${AUDIT_LIMIT}`),
        api.get("/profiles", { technician: true }),
        api.get("/logs?limit=200", { technician: true }),
        this.tools.refresh(),
      ]);
      this.entries = audit.entries;
      this.profiles = profiles;
      this.logs = logs.records;
    } catch (error) {
      if (error.status === 401) {
        this.sessionLost();
        return;
      }
      this.onError(error);
    }
    this.render();
  }

  sessionLost() {
    // The session ran out: back to the PIN.
    api.setTechnicianToken(null);
    try { sessionStorage.removeItem(SESSION_KEY); } catch { /* none */ }
    this.tools.close();
    this.onClose();
    this.askPin();
  }

  show(tab) {
    this.tab = tab;
    for (const button of document.querySelectorAll("[data-tab]")) {
      button.setAttribute("aria-selected", String(button.dataset.tab === tab));
    }
    for (const panel of document.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== tab;
    if (tab === "logs" || tab === "audit" || tab === "profiles") this.refresh();
  }

  audit(entry) {
    const at = this.entries.findIndex((e) => e.id === entry.id);
    if (at >= 0) this.entries[at] = entry;
    else this.entries.unshift(entry);
    this.entries.length = Math.min(this.entries.length, AUDIT_LIMIT);
    if (!$("tech").hidden && this.tab === "audit") this.renderAudit();
  }

  render() {
    if ($("tech").hidden) return;
    this.renderDevices();
    this.renderProfiles();
    this.renderAudit();
    this.renderLogs();
  }

  renderDevices() {
    if ($("tech").hidden) return;
    const room = this.store.room;
    if (!room) return;
    const rows = Object.values(room.devices).map((device) => {
      const health = device.health || {};
      const tr = document.createElement("tr");
      tr.dataset.testid = `tech-device-${device.id}`;
      const ok = health.status === "online" && !device.maintenance;
      const status = device.maintenance ? "tech.maintenance" : ok ? "state.online" : health.status === "offline" ? "state.offline" : health.status === "error" ? "state.fault" : "state.unknown";
      const profile = cell(this.tools.describe(device), "mono");
      profile.dataset.testid = `tech-profile-${device.id}`;
      tr.append(
        cell(label(device.label, device.id)),
        cell(t(status), ok ? "ok" : "bad"),
        profile,
        cell(health.last_error ? `${health.last_error} (${clock(health.last_error_at)})` : "—"),
        cell(ago(health.last_reply_at)),
        cell(health.latency_ms != null ? `${health.latency_ms.toFixed(1)} ms` : "—", "mono"),
      );
      const td = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "reread";
      button.dataset.testid = `reread-${device.id}`;
      const state = this.rereads[device.id];
      button.dataset.pending = String(Boolean(state?.pending));
      button.textContent = t(state?.pending ? "tech.rereading" : "tech.reread");
      button.addEventListener("click", () => this.reread(device.id));
      td.append(button, this.profileButton(device.id));
      if (state?.text) {
        const result = document.createElement("div");
        result.className = "reread-result";
        result.dataset.testid = `reread-result-${device.id}`;
        result.textContent = state.text;
        td.append(result);
      }
      tr.append(td);
      return tr;
    });
    for (const [id, why] of Object.entries(room.broken || {})) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.append(this.profileButton(id));
      tr.dataset.testid = `tech-device-${id}`;
      tr.append(cell(id), cell(t("state.fault"), "bad"), cell("—"), cell(why), cell("—"), cell("—"), td);
      rows.push(tr);
    }
    $("tech-devices").replaceChildren(table(
      ["tech.col.device", "tech.col.status", "tech.col.profile", "tech.col.last_error", "tech.col.last_reply", "tech.col.latency", "tech.col.action"],
      rows,
    ));
  }

  profileButton(id) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "reread";
    button.dataset.testid = `profile-${id}`;
    button.textContent = t("tech.profile_open");
    button.addEventListener("click", () => this.tools.open(id));
    return button;
  }

  async reread(id) {
    this.rereads[id] = { pending: true, text: "" };
    this.renderDevices();
    try {
      const result = await api.post(`/devices/${encodeURIComponent(id)}/reread`, undefined, { technician: true });
      const values = Object.entries(result.values).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`);
      const errors = Object.keys(result.errors);
      this.rereads[id] = {
        pending: false,
        text: values.join(", ") + (errors.length ? ` · ${t("tech.reread_errors", { n: errors.length })}` : ""),
      };
    } catch (error) {
      this.rereads[id] = { pending: false, text: error.detail || error.kind };
      if (error.status === 401) this.refresh();
    }
    this.renderDevices();
  }

  renderProfiles() {
    const rows = this.profiles.map((profile) => {
      const tr = document.createElement("tr");
      tr.append(
        cell(profile.id, "mono"),
        cell(profile.name),
        cell(profile.kind),
        cell(profile.version, "mono"),
        cell(profile.devices.join(", ") || "—", profile.devices.length ? "ok" : ""),
      );
      return tr;
    });
    $("tech-profiles").replaceChildren(table(
      ["tech.col.profile", "tech.col.name", "tech.col.kind", "tech.col.version", "tech.col.used_by"],
      rows,
    ));
  }

  renderAudit() {
    const rows = this.entries.map((entry) => {
      const tr = document.createElement("tr");
      const failed = String(entry.result).startsWith("failed") || String(entry.result).startsWith("refused");
      tr.append(
        cell(clock(entry.at), "mono"),
        cell(entry.actor ? `${entry.who} (${entry.actor})` : entry.who),
        cell(entry.action, "mono"),
        cell(JSON.stringify(entry.detail), "mono"),
        cell(entry.result, failed ? "bad" : ""),
      );
      return tr;
    });
    const el = table(["tech.col.time", "tech.col.who", "tech.col.action", "tech.col.detail", "tech.col.result"], rows);
    el.dataset.testid = "tech-audit-table";
    $("tech-audit").replaceChildren(el);
  }

  renderLogs() {
    const pre = document.createElement("pre");
    pre.dataset.testid = "tech-log-lines";
    pre.textContent = this.logs.length
      ? this.logs.map((r) => `${clock(r.at)} ${r.level.padEnd(7)} ${r.logger}: ${r.message}`).join("\n")
      : t("tech.no_logs");
    $("tech-logs").replaceChildren(pre);
  }
}
