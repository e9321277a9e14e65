// Centres -> rooms: a section per centre, a card per room. Cards are kept between polls and
// rendered again only when their room changed; "last seen" and the filter touch every card
// without rebuilding it, so 1000 rooms stay quick.
import { clearList, el, syncList, testId } from "./dom.js";
import { ago, clock, language, number, siteName, t } from "./i18n.js";

const KINDS = {
  projector: "kind.projector", board: "kind.board", display: "kind.display",
  switcher: "kind.switcher", codec: "kind.codec",
};
const STATES = {
  on: "device.on", off: "device.off", standby: "device.standby", warming: "device.warming",
  cooling: "device.cooling", online: "device.online", offline: "device.offline",
  fault: "device.fault", unknown: "device.unknown",
};
const ROOM_STATUS = { online: "room.online", offline: "room.offline", unknown: "room.unknown" };

export function siteOf(roomId) {
  return roomId.split("/")[0];
}

export function roomStatusWord(status) {
  return t(ROOM_STATUS[status] || "room.unknown");
}

export function kindWord(kind) {
  return KINDS[kind] ? t(KINDS[kind]) : kind || "";
}

// A device's one-word state: what the page colours and says.
export function deviceState(device) {
  if (!device.online || device.health === "offline") return "offline";
  if (device.health === "error") return "fault";
  if (typeof device.power === "string" && STATES[device.power]) return device.power;
  return "online";
}

export function stateWord(state) {
  return t(STATES[state] || "device.unknown");
}

export function isDue(hours, threshold) {
  return typeof hours === "number" && typeof threshold === "number" && hours >= threshold;
}

// Anything an operator should look at: offline, a device in trouble, hours due, alerts, calls.
export function hasProblem(room, thresholds) {
  if (room.status !== "online" || room.open_alerts > 0 || room.open_help_requests > 0) return true;
  return Object.values(room.devices || {}).some(
    (device) =>
      deviceState(device) === "offline" ||
      deviceState(device) === "fault" ||
      isDue(device.lamp_hours, thresholds.lamp_hours) ||
      isDue(device.filter_hours, thresholds.filter_hours),
  );
}

export class FleetView {
  constructor({ container, empty, summary, onOpen, onCommandRoom, onCommandSite }) {
    this.container = container;
    this.empty = empty;
    this.summary = summary;
    this.actions = { onOpen, onCommandRoom, onCommandSite };
    this.sites = new Map(); // site -> { section, grid, counts }
    this.cards = new Map(); // room id -> { card, seen, room, problem }
    this.rooms = [];
    this.thresholds = { lamp_hours: 3000, filter_hours: 2000 };
    this.canCommand = false;
    this.filterWords = [];
    this.problemsOnly = false;
  }

  // `data`: GET /rooms; `now`: the hub's clock (Unix seconds).
  update(data, { canCommand, now }) {
    this.rooms = data.rooms || [];
    this.thresholds = data.thresholds || this.thresholds;
    this.canCommand = canCommand;
    const groups = new Map();
    for (const room of this.rooms) {
      const site = siteOf(room.id);
      if (!groups.has(site)) groups.set(site, []);
      groups.get(site).push(room);
    }
    const common = `${language()}|${canCommand}|${this.thresholds.lamp_hours}|${this.thresholds.filter_hours}`;
    syncList(this.container, [...groups.keys()].sort(), {
      key: (site) => site,
      sig: () => common,
      render: (site) => this.renderSite(site),
    });
    for (const site of [...this.sites.keys()]) if (!groups.has(site)) this.sites.delete(site);
    const seen = new Set();
    for (const [site, rooms] of groups) {
      syncList(this.sites.get(site).grid, rooms, {
        key: (room) => room.id,
        sig: (room) => `${common}|${roomSig(room)}`,
        render: (room) => this.renderRoom(room),
      });
      for (const room of rooms) {
        const entry = this.cards.get(room.id);
        entry.room = room;
        entry.problem = hasProblem(room, this.thresholds);
        seen.add(room.id);
      }
    }
    for (const id of [...this.cards.keys()]) if (!seen.has(id)) this.cards.delete(id);
    this.tick(now);
    this.applyFilter();
  }

  // Every card's "last seen", against the hub's clock.
  tick(now) {
    for (const { seen, room } of this.cards.values()) {
      const text = ago(room.last_seen, now);
      if (seen.textContent !== text) seen.textContent = text;
      const at = String(room.last_seen);
      if (seen.dataset.at !== at) {
        seen.dataset.at = at;
        seen.title = clock(room.last_seen);
      }
    }
  }

  setFilter(text) {
    this.filterWords = text.toLowerCase().split(/\s+/).filter(Boolean);
    this.applyFilter();
  }

  setProblemsOnly(on) {
    this.problemsOnly = on;
    this.applyFilter();
  }

  applyFilter() {
    const perSite = new Map(); // site -> { shown, online, total }
    let shown = 0;
    let offline = 0;
    let problems = 0;
    for (const { card, room, problem } of this.cards.values()) {
      const site = siteOf(room.id);
      const haystack = `${room.id} ${room.name || ""} ${siteName(site)}`.toLowerCase();
      const visible = this.filterWords.every((word) => haystack.includes(word)) && (!this.problemsOnly || problem);
      if (card.hidden === visible) card.hidden = !visible;
      const counts = perSite.get(site) || { shown: 0, online: 0, total: 0 };
      perSite.set(site, counts);
      counts.total += 1;
      if (visible) {
        shown += 1;
        counts.shown += 1;
      }
      if (room.status === "online") counts.online += 1;
      else offline += 1;
      if (problem) problems += 1;
    }
    for (const [site, { section, counts }] of this.sites) {
      const { shown: visible = 0, online = 0, total = 0 } = perSite.get(site) || {};
      if (section.hidden === visible > 0) section.hidden = visible === 0;
      const text = t("site.online_count", { online, total });
      if (counts.textContent !== text) counts.textContent = text;
    }
    const total = this.cards.size;
    this.summary.textContent = t("summary.rooms", { shown, total, offline, problems });
    this.empty.hidden = shown > 0;
    this.empty.textContent = total === 0 ? t("sites.none") : t("sites.no_match");
  }

  roomsOfSite(site) {
    return this.rooms.filter((room) => siteOf(room.id) === site);
  }

  room(id) {
    return this.cards.get(id)?.room || null;
  }

  reset() {
    this.sites.clear();
    this.cards.clear();
    this.rooms = [];
    clearList(this.container);
  }

  renderSite(site) {
    const grid = el("div", { class: "grid" });
    const counts = el("span", { class: "site-counts", "data-testid": `site-counts-${site}` });
    const headingId = `site-heading-${site}`;
    const command = this.canCommand
      ? el("button", {
          type: "button", class: "command", "data-testid": `command-site-${site}`,
          onclick: () => this.actions.onCommandSite(site),
        }, t("command.site"))
      : null;
    const section = el("section", { class: "site", "data-testid": `site-${site}`, "data-site": site, "aria-labelledby": headingId },
      el("header", { class: "site-head" },
        el("h2", { id: headingId }, siteName(site), siteName(site) !== site ? el("span", { class: "id" }, site) : null),
        counts,
        command),
      grid);
    this.sites.set(site, { section, grid, counts });
    return section;
  }

  renderRoom(room) {
    const tid = testId(room.id);
    const status = ROOM_STATUS[room.status] ? room.status : "unknown";
    const seen = el("time", { class: "seen", "data-testid": `room-seen-${tid}` });
    const devices = Object.entries(room.devices || {}).map(([id, device]) => this.renderDevice(tid, id, device));
    const card = el("article", { class: "room", "data-testid": `room-${tid}`, "data-status": status, "data-room": room.id },
      el("header", { class: "room-head" },
        el("span", { class: "status", "data-testid": `room-status-${tid}`, "data-status": status },
          el("span", { class: "dot", "aria-hidden": "true" }), roomStatusWord(status)),
        el("span", { class: "seen-label" }, t("room.last_seen"), " ", seen)),
      el("h3", {},
        el("button", { type: "button", class: "room-open", "data-testid": `room-open-${tid}`, onclick: () => this.actions.onOpen(room.id) },
          room.name || room.id)),
      el("p", { class: "id" }, room.id),
      // An offline room's devices are what it last said, not what they are now.
      status !== "online" && devices.length ? el("p", { class: "last-known" }, t("room.last_known")) : null,
      devices.length
        ? el("ul", { class: "devices", "aria-label": t("room.devices"), "data-stale": String(status !== "online") }, devices)
        : el("p", { class: "muted" }, t("room.no_devices")),
      el("footer", { class: "room-foot" },
        el("span", { class: "badge alerts", "data-testid": `room-alerts-${tid}`, "data-count": room.open_alerts || 0, hidden: !room.open_alerts },
          t("room.alerts", { n: room.open_alerts || 0 })),
        el("span", { class: "badge help", "data-testid": `room-help-${tid}`, "data-count": room.open_help_requests || 0, hidden: !room.open_help_requests },
          t("room.help", { n: room.open_help_requests || 0 })),
        this.canCommand
          ? el("button", {
              type: "button", class: "command small", "data-testid": `command-room-${tid}`,
              "aria-label": t("command.room_for", { room: room.name || room.id }),
              onclick: () => this.actions.onCommandRoom(room.id),
            }, t("command.room"))
          : null));
    this.cards.set(room.id, { card, seen, room, problem: hasProblem(room, this.thresholds) });
    return card;
  }

  renderDevice(tid, id, device) {
    const state = deviceState(device);
    const deviceTid = `${tid}-${id}`;
    const kind = kindWord(device.kind);
    return el("li", { class: "device", "data-testid": `device-${deviceTid}`, "data-state": state },
      el("span", { class: "device-name", title: device.name || id }, kind || id, kind && id !== device.kind ? el("span", { class: "id" }, ` ${id}`) : null),
      el("span", { class: "device-state", "data-state": state }, stateWord(state)),
      device.input !== undefined && device.input !== null
        ? el("span", { class: "device-input", title: t("device.input") }, String(device.input))
        : null,
      this.renderHours("lamp", deviceTid, device.lamp_hours, this.thresholds.lamp_hours),
      this.renderHours("filter", deviceTid, device.filter_hours, this.thresholds.filter_hours));
  }

  renderHours(kind, deviceTid, hours, threshold) {
    if (typeof hours !== "number") return null;
    const due = isDue(hours, threshold);
    const n = number(hours);
    const text = kind === "lamp" ? t("hours.lamp", { n }) : t("hours.filter", { n });
    const title = kind === "lamp" ? t("hours.lamp_threshold", { n: number(threshold) }) : t("hours.filter_threshold", { n: number(threshold) });
    return el("span", { class: "hours", "data-testid": `${kind}-${deviceTid}`, "data-due": String(due), title },
      text, due ? el("strong", { class: "due" }, t("hours.due")) : null);
  }
}

function roomSig(room) {
  return `${room.status}|${room.name}|${room.open_alerts}|${room.open_help_requests}|${room.last_seen === null}|${JSON.stringify(room.devices)}`;
}
