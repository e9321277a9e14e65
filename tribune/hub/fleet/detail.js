// A room's detail: its last snapshot (every device in full), its latest events, and its audit
// history paged with `before` (GET /rooms/{site}/{room}, .../events?type=audit).
import { get, hubNow, roomPath } from "./api.js";
import { el, testId } from "./dom.js";
import { clock, language, number, siteName, t } from "./i18n.js";
import { agoTime, alertText } from "./lists.js";
import { deviceState, isDue, kindWord, roomStatusWord, siteOf, stateWord } from "./rooms.js";

const PAGE = 20;
const WHO = {
  panel: "who.panel", button: "who.button", api: "who.api", hub: "who.hub",
  schedule: "who.schedule", cli: "who.cli", system: "who.system",
};
const ACTIONS = {
  "scene.activate": "action.scene_activate", "source.select": "action.source_select",
  "desired.patch": "action.desired_patch", "device.action": "action.device_action",
  "schedule.set": "action.schedule_set", "help.request": "action.help_request",
  "technician.session": "action.technician_session", "profile.flash": "action.profile_flash",
  "profile.rollback": "action.profile_rollback",
};
const RESULTS = {
  accepted: "result.accepted", running: "result.running", done: "result.done",
  failed: "result.failed", refused: "result.refused", expired: "result.expired", sent: "result.sent",
};
const TYPES = { audit: "event.audit", help: "event.help", change: "event.change", alert: "event.alert" };

const word = (table, value) => (table[value] ? t(table[value]) : String(value ?? ""));

// {"scene": "class-end"} -> "scene: class-end"
function details(detail) {
  if (!detail || typeof detail !== "object") return detail ? String(detail) : "";
  return Object.entries(detail)
    .map(([key, value]) => `${key}: ${typeof value === "object" && value !== null ? JSON.stringify(value) : value}`)
    .join(", ");
}

export class RoomDetail {
  constructor({ dialog, title, facts, devices, events, audit, more, command, refresh, close, canCommand, thresholds, onCommand, onError }) {
    Object.assign(this, { dialog, title, facts, devices, events, audit, more, command, thresholds });
    this.canCommand = canCommand;
    this.onError = onError;
    this.roomId = null;
    this.found = null;
    this.auditEvents = [];
    this.before = null;
    close.addEventListener("click", () => dialog.close());
    refresh.addEventListener("click", () => this.load());
    more.addEventListener("click", () => this.loadAudit());
    command.addEventListener("click", () => {
      const roomId = this.roomId;
      dialog.close();
      onCommand(roomId);
    });
    dialog.addEventListener("close", () => {
      this.roomId = null;
    });
  }

  async open(roomId) {
    this.roomId = roomId;
    this.found = null;
    this.title.textContent = roomId;
    this.facts.textContent = t("common.loading");
    for (const part of [this.devices, this.events, this.audit]) part.replaceChildren();
    this.more.hidden = true;
    this.command.hidden = !this.canCommand();
    if (!this.dialog.open) this.dialog.showModal();
    await this.load();
  }

  async load() {
    const roomId = this.roomId;
    if (!roomId) return;
    try {
      const found = await get(`/rooms/${roomPath(roomId)}`);
      if (roomId !== this.roomId) return;
      this.found = found;
      this.auditEvents = [];
      this.before = null;
      this.render();
      await this.loadAudit();
    } catch (error) {
      if (error.status !== 401) this.facts.textContent = this.onError(error, { quiet: true });
    }
  }

  async loadAudit() {
    const roomId = this.roomId;
    if (!roomId) return;
    const query = new URLSearchParams({ type: "audit", limit: String(PAGE) });
    if (this.before !== null) query.set("before", String(this.before));
    try {
      const page = await get(`/rooms/${roomPath(roomId)}/events?${query}`);
      if (roomId !== this.roomId) return;
      this.auditEvents.push(...page.events);
      if (page.events.length) this.before = Math.min(...page.events.map((event) => event.seq));
      this.more.hidden = page.events.length < PAGE;
      this.renderAudit();
    } catch (error) {
      if (error.status !== 401) this.onError(error);
    }
  }

  // The language changed while it is open.
  redraw() {
    if (!this.found) return;
    this.render();
    this.renderAudit();
  }

  render() {
    const room = this.found;
    const snapshot = room.snapshot || {};
    const site = siteOf(room.id);
    this.title.textContent = snapshot.name ? `${snapshot.name} · ${siteName(site)}` : `${room.id} · ${siteName(site)}`;
    this.facts.replaceChildren(
      el("span", { class: "status", "data-status": room.status, "data-testid": "room-detail-status" },
        el("span", { class: "dot", "aria-hidden": "true" }), roomStatusWord(room.status)),
      " · ", t("room.last_seen"), " ", agoTime(room.last_seen, hubNow()),
      " · ", room.id,
      room.revision !== null ? ` · ${t("detail.revision", { n: room.revision })}` : "",
      snapshot.source ? ` · ${t("detail.source", { source: snapshot.source })}` : "",
      typeof snapshot.converged === "boolean" ? ` · ${snapshot.converged ? t("detail.converged") : t("detail.converging")}` : "");
    this.renderDevices(room.id, snapshot.devices || {});
    this.renderEvents(room.id, room.events || []);
  }

  renderDevices(roomId, devices) {
    const entries = Object.entries(devices);
    if (!entries.length) {
      this.devices.replaceChildren(el("p", { class: "empty" }, t("room.no_devices")));
      return;
    }
    const thresholds = this.thresholds();
    const reading = (device, name) => device.reported?.[name]?.value;
    const head = ["detail.col.device", "detail.col.kind", "detail.col.state", "detail.col.input", "detail.col.lamp", "detail.col.filter", "detail.col.last_error"];
    const rows = entries.map(([id, device]) => {
      const state = deviceState({ online: device.online, health: device.health?.status, power: reading(device, "power") });
      const lamp = reading(device, "lamp_hours");
      const filter = reading(device, "filter_hours");
      const name = device.label?.[language()] || device.label?.az || device.name || id;
      return el("tr", { "data-testid": `detail-device-${testId(roomId)}-${id}`, "data-state": state },
        el("th", { scope: "row" }, name, el("span", { class: "id" }, ` ${id}`)),
        el("td", {}, kindWord(device.kind)),
        el("td", { class: "device-state", "data-state": state }, stateWord(state)),
        el("td", {}, reading(device, "input") ?? "–"),
        el("td", { "data-due": String(isDue(lamp, thresholds.lamp_hours)) }, typeof lamp === "number" ? number(lamp) : "–"),
        el("td", { "data-due": String(isDue(filter, thresholds.filter_hours)) }, typeof filter === "number" ? number(filter) : "–"),
        el("td", { class: "muted" }, device.health?.last_error || ""));
    });
    this.devices.replaceChildren(el("table", { class: "table" },
      el("thead", {}, el("tr", {}, head.map((key) => el("th", { scope: "col" }, t(key))))),
      el("tbody", {}, rows)));
  }

  renderEvents(roomId, events) {
    if (!events.length) {
      this.events.replaceChildren(el("p", { class: "empty" }, t("detail.no_events")));
      return;
    }
    const rows = events.map((event) => el("tr", { "data-type": event.type },
      el("td", { class: "nowrap" }, clock(event.at)),
      el("td", {}, word(TYPES, event.type)),
      el("td", {}, this.eventText(roomId, event))));
    this.events.replaceChildren(el("table", { class: "table" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, t("detail.col.time")), el("th", { scope: "col" }, t("detail.col.type")), el("th", { scope: "col" }, t("detail.col.what")))),
      el("tbody", {}, rows)));
  }

  eventText(roomId, event) {
    const data = event.data || {};
    switch (event.type) {
      case "change":
        return data.device
          ? t("event.change_device", { device: data.device, capability: data.capability, value: data.value })
          : t("event.change_source", { source: data.source });
      case "alert":
        return `${alertText({ code: data.code, data }, data.device || "")}${data.active === false ? ` — ${t("event.cleared")}` : ""}`;
      case "help":
        return t("event.help_note", { note: data.detail?.note || t("help.no_note") });
      case "audit":
        return `${word(ACTIONS, data.action)} — ${word(RESULTS, data.result)}`;
      default:
        return JSON.stringify(data);
    }
  }

  renderAudit() {
    if (!this.auditEvents.length) {
      this.audit.replaceChildren(el("p", { class: "empty" }, t("detail.no_audit")));
      return;
    }
    const rows = this.auditEvents.map((event) => {
      const entry = event.data || {};
      return el("tr", { "data-testid": `audit-${event.seq}` },
        el("td", { class: "nowrap" }, clock(entry.at ?? event.at)),
        el("td", {}, word(WHO, entry.who), entry.actor ? el("span", { class: "id" }, ` ${entry.actor}`) : null),
        el("td", {}, word(ACTIONS, entry.action)),
        el("td", { class: "muted" }, details(entry.detail)),
        el("td", { "data-result": entry.result }, word(RESULTS, entry.result)));
    });
    const head = ["detail.col.time", "detail.col.who", "detail.col.action", "detail.col.detail", "detail.col.result"];
    this.audit.replaceChildren(el("table", { class: "table" },
      el("thead", {}, el("tr", {}, head.map((key) => el("th", { scope: "col" }, t(key))))),
      el("tbody", {}, rows)));
  }
}
