// Commands: the dialog (one room or a whole centre, start or end class, confirmed), then the
// command followed room by room until every room has a final status; the recent commands.
import { get, hubNow, post, roomPath } from "./api.js";
import { clearList, el, syncList, testId } from "./dom.js";
import { language, number, siteName, t } from "./i18n.js";
import { agoTime, tickTimes } from "./lists.js";
import { siteOf } from "./rooms.js";

const FINAL = new Set(["done", "failed", "expired"]);
const STATUSES = ["queued", "delivered", "done", "failed", "expired"];
const STATUS_WORDS = {
  queued: "status.queued", delivered: "status.delivered", done: "status.done",
  failed: "status.failed", expired: "status.expired",
};
const SCENES = { "class-start": "scene.class_start", "class-end": "scene.class_end" };
const TTL_S = 300; // a room offline longer than this never runs it: it reports `expired`
const FOLLOW_MS = 1000;

export function commandWord(command) {
  if (command.action === "scene.activate") {
    const scene = command.args?.scene;
    return SCENES[scene] ? t(SCENES[scene]) : t("command.scene", { scene });
  }
  return command.action;
}

export function statusWord(status) {
  return STATUS_WORDS[status] ? t(STATUS_WORDS[status]) : status;
}

function tally(counts) {
  return STATUSES.filter((status) => counts[status]).map((status) => `${statusWord(status)}: ${number(counts[status])}`).join(" · ");
}

export class Commands {
  constructor({ dialog, title, target, note, error, confirm, cancel, follow, list, empty, fleet, onError, onSent }) {
    Object.assign(this, { dialog, title, target, note, error, confirm, follow, list, empty, fleet });
    this.onError = onError;
    this.onSent = onSent;
    this.aim = null; // { site } or { room }: what the open dialog will command
    this.followed = null; // the command id shown room by room
    this.shown = null; // the last GET /commands/{id}
    this.timer = null;
    this.busy = false;
    this.form = dialog.querySelector("form");
    this.form.addEventListener("change", () => this.describe());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault(); // stays open until the hub has taken it
      this.send();
    });
    cancel.addEventListener("click", () => dialog.close());
  }

  openForSite(site) {
    this.aim = { site };
    this.open(t("command.site_title", { site: siteName(site) }));
  }

  openForRoom(roomId) {
    this.aim = { room: roomId };
    this.open(t("command.room_title", { room: this.fleet.room(roomId)?.name || roomId }));
  }

  open(title) {
    this.form.reset();
    this.title.textContent = title;
    this.error.textContent = "";
    this.describe();
    this.dialog.showModal();
  }

  rooms() {
    if (this.aim?.site) return this.fleet.roomsOfSite(this.aim.site);
    const room = this.aim?.room && this.fleet.room(this.aim.room);
    return room ? [room] : [];
  }

  scene() {
    return new FormData(this.form).get("scene");
  }

  // The target, what the offline rooms will do, and the confirm button's words.
  describe() {
    const rooms = this.rooms();
    const offline = rooms.filter((room) => room.status !== "online").length;
    this.target.textContent = this.aim?.site
      ? t("command.site_target", { site: siteName(this.aim.site), n: rooms.length, offline })
      : `${rooms[0]?.name || this.aim?.room || ""} (${this.aim?.room || ""})`;
    this.note.textContent = offline ? t("command.offline_note", { n: offline, minutes: TTL_S / 60 }) : "";
    const scene = this.scene();
    this.confirm.disabled = !scene;
    const action = scene ? t(SCENES[scene]) : "…";
    this.confirm.textContent = this.aim?.site
      ? t("command.confirm_site", { action, n: rooms.length })
      : t("command.confirm_room", { action });
  }

  async send() {
    const scene = this.scene();
    if (!scene || !this.aim) return;
    const body = { action: "scene.activate", args: { scene }, ttl_s: TTL_S };
    this.confirm.disabled = true;
    this.error.textContent = "";
    try {
      const accepted = this.aim.site
        ? await post("/commands", { ...body, selector: { site: this.aim.site } })
        : await post(`/rooms/${roomPath(this.aim.room)}/commands`, body);
      this.dialog.close();
      this.onSent();
      await this.followCommand(accepted.id);
    } catch (error) {
      if (error.status === 401) return;
      this.error.textContent = this.onError(error, { quiet: true });
      this.confirm.disabled = false;
    }
  }

  async followCommand(id) {
    this.followed = id;
    this.shown = null;
    this.follow.dataset.key = "";
    this.follow.replaceChildren();
    await this.refreshFollowed();
  }

  stopFollowing() {
    this.followed = null;
    this.shown = null;
    clearTimeout(this.timer);
    this.timer = null;
    this.follow.dataset.key = "";
    this.follow.replaceChildren();
    this.markFollowed();
  }

  // Every second until each room has a final status; after that the page's poll keeps it
  // current (a room's late answer replaces an `expired` the hub concluded itself).
  async refreshFollowed() {
    clearTimeout(this.timer);
    this.timer = null;
    const id = this.followed;
    if (!id || this.busy) return;
    this.busy = true;
    let final = false;
    try {
      const command = await get(`/commands/${encodeURIComponent(id)}`);
      if (id === this.followed) {
        this.shown = command;
        final = this.renderFollowed(command);
      }
    } catch (error) {
      if (error.status === 404 && id === this.followed) this.stopFollowing();
      else if (error.status !== 401) this.onError(error);
    } finally {
      this.busy = false;
    }
    if (this.followed && this.followed !== id) this.refreshFollowed(); // another was picked meanwhile
    else if (this.followed && !final) this.timer = setTimeout(() => this.refreshFollowed(), FOLLOW_MS);
  }

  renderFollowed(command) {
    const entries = Object.entries(command.rooms).map(([room, state]) => ({ room, ...state }));
    const counts = {};
    for (const entry of entries) counts[entry.status] = (counts[entry.status] || 0) + 1;
    const finished = entries.filter((entry) => FINAL.has(entry.status)).length;
    const final = finished === entries.length;
    const key = `${command.id}|${language()}`;
    if (this.follow.dataset.key !== key) this.buildFollowed(command, entries, key);
    const box = this.follow.firstElementChild;
    box.dataset.final = String(final);
    box.querySelector(".tally").textContent = tally(counts);
    const progress = box.querySelector("progress");
    progress.max = entries.length;
    progress.value = finished;
    progress.textContent = `${finished}/${entries.length}`;
    const sites = new Set(entries.map((entry) => siteOf(entry.room)));
    syncList(box.querySelector(".chips"), entries, {
      key: (entry) => entry.room,
      sig: (entry) => `${entry.status}|${resultText(entry.result)}`,
      render: (entry) => el("li", {
        class: "chip", "data-testid": `command-room-status-${testId(entry.room)}`, "data-status": entry.status,
        title: resultText(entry.result) || null,
      },
        el("span", { class: "chip-room" }, sites.size === 1 ? entry.room.split("/")[1] : entry.room),
        el("span", { class: "chip-status" }, statusWord(entry.status))),
    });
    tickTimes(box, hubNow());
    return final;
  }

  buildFollowed(command, entries, key) {
    this.follow.dataset.key = key;
    const sites = [...new Set(entries.map((entry) => siteOf(entry.room)))];
    const where = entries.length === 1
      ? this.fleet.room(entries[0].room)?.name || entries[0].room
      : sites.length === 1
        ? t("command.site_rooms", { site: siteName(sites[0]), n: entries.length })
        : t("command.many_rooms", { n: entries.length, sites: sites.length });
    const box = el("div", { class: "follow", "data-testid": `command-status-${command.id}`, "data-command": command.id, "data-final": "false" },
      el("div", { class: "follow-head" },
        el("h3", {}, `${commandWord(command)} · ${where}`),
        el("button", { type: "button", class: "quiet", "data-testid": "command-follow-close", onclick: () => this.stopFollowing() }, t("common.close"))),
      el("p", { class: "meta" }, command.issued_by, " · ", agoTime(command.created, hubNow())),
      el("progress", { "aria-label": t("command.progress") }),
      el("p", { class: "tally", "aria-live": "polite" }),
      el("ul", { class: "chips", "aria-label": t("command.per_room") }));
    this.follow.replaceChildren(box);
    this.markFollowed();
  }

  // GET /commands: the recent list; also the followed one, when it is on screen.
  update(commands, { now }) {
    syncList(this.list, commands, {
      key: (command) => command.id,
      sig: (command) => `${language()}|${JSON.stringify(command.statuses)}`,
      render: (command) => {
        const total = Object.values(command.statuses).reduce((sum, n) => sum + n, 0);
        return el("li", { class: "item command", "data-testid": `recent-command-${command.id}`, "data-command": command.id },
          el("div", { class: "item-main" },
            el("button", {
              type: "button", class: "link", "aria-pressed": "false",
              onclick: () => this.followCommand(command.id),
            }, `${commandWord(command)} · ${t("command.rooms", { n: total })}`),
            el("p", { class: "where" }, command.issued_by, " · ", agoTime(command.created, now)),
            el("p", { class: "tally" }, tally(command.statuses))));
      },
    });
    this.empty.hidden = commands.length > 0;
    this.markFollowed();
    tickTimes(this.list, now);
    if (this.followed && this.timer === null) this.refreshFollowed();
  }

  // The language changed: draw the followed command again.
  redraw() {
    if (this.shown) this.renderFollowed(this.shown);
    else this.follow.dataset.key = "";
  }

  markFollowed() {
    for (const item of this.list.children) {
      item.querySelector("button").setAttribute("aria-pressed", String(item.dataset.command === this.followed));
    }
  }

  reset() {
    this.stopFollowing();
    clearList(this.list);
  }
}

function resultText(result) {
  if (!result) return "";
  const detail = result.detail;
  if (typeof detail === "string") return detail;
  if (detail && typeof detail === "object") return detail.reason || detail.error || detail.result || "";
  return "";
}
