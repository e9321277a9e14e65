// The instructor's home screen: scenes, sources, sound and picture, device states.
import * as api from "./api.js";
import { describeDevice, isOn } from "./devices.js";
import { label, t } from "./i18n.js";
import { icon } from "./icons.js";

const TOGGLE_WAIT_MS = 10000; // a toggle shows "pending" at most this long without news
const $ = (id) => document.getElementById(id);

export class HomeScreen {
  constructor(store, { onError }) {
    this.store = store; // { room, panel, scenes, sources, connected }
    this.onError = onError;
    this.pendingScene = null; // { id, until }
    this.pendingSource = null; // { id, until }
    this.pendingToggle = {}; // name -> { want, until }
    this.volumeHeld = 0; // ms until which the slider belongs to the finger, not the service
    this.volumeTimer = null;
    this.volumeWanted = null;
    this.bind();
  }

  bind() {
    $("mute").addEventListener("click", () => this.toggle("mute"));
    $("blank").addEventListener("click", () => this.toggle("blank"));
    $("freeze").addEventListener("click", () => this.toggle("freeze"));
    const slider = $("volume");
    slider.addEventListener("input", () => {
      this.volumeHeld = Date.now() + 1500;
      this.volumeWanted = Number(slider.value);
      this.paintVolume(this.volumeWanted, true);
      if (this.volumeTimer === null) {
        this.volumeTimer = setTimeout(() => this.sendVolume(), 150);
      }
    });
    slider.addEventListener("change", () => {
      this.volumeHeld = Date.now() + 1500;
      clearTimeout(this.volumeTimer);
      this.sendVolume();
    });
  }

  // --- building (on snapshot and language change) -------------------------------------------

  build() {
    const scenes = $("scenes");
    scenes.replaceChildren();
    for (const scene of this.store.scenes) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "scene";
      button.dataset.testid = `scene-${scene.id}`;
      button.dataset.sceneId = scene.id;
      button.dataset.kind = /end|off|stop/.test(scene.id) ? "end" : /start|on/.test(scene.id) ? "start" : "other";
      button.innerHTML = `${icon(button.dataset.kind === "end" ? "end" : "start")}<span></span>`;
      button.querySelector("span").textContent = label(scene.label, scene.id);
      button.addEventListener("click", () => this.activateScene(scene.id));
      scenes.append(button);
    }
    const sources = $("sources");
    sources.replaceChildren();
    for (const source of this.store.sources) {
      const tile = document.createElement("button");
      tile.type = "button";
      tile.className = "tile";
      tile.dataset.testid = `source-${source.id}`;
      tile.dataset.sourceId = source.id;
      tile.innerHTML = `${icon(source.icon)}<span class="tile-label"></span><span class="tile-note"></span>`;
      tile.querySelector(".tile-label").textContent = label(source.label, source.id);
      tile.addEventListener("click", () => this.selectSource(source.id));
      sources.append(tile);
    }
    const panel = this.store.panel || {};
    $("volume-box").hidden = !panel.volume;
    $("mute").hidden = !panel.mute;
    $("blank").hidden = !(panel.blank && panel.blank.length);
    $("freeze").hidden = !(panel.freeze && panel.freeze.length);
    $("av-block").hidden = !panel.volume && !panel.mute && !(panel.blank || []).length && !(panel.freeze || []).length;
    const list = $("devices");
    list.replaceChildren();
    const room = this.store.room;
    if (!room) return;
    const ids = [...Object.keys(room.devices || {}), ...Object.keys(room.broken || {})];
    for (const id of ids) {
      const card = document.createElement("div");
      card.className = "device";
      card.dataset.testid = `device-${id}`;
      card.dataset.deviceId = id;
      card.innerHTML = '<span class="dot"></span><div class="dev-name"></div><div class="dev-state"></div><div class="dev-note"></div>';
      list.append(card);
    }
    this.render();
  }

  // --- painting (on every event, and each second for countdowns) ------------------------------

  render() {
    const room = this.store.room;
    if (!room) return;
    const connected = this.store.connected;
    const now = Date.now();
    this.renderDevices(room, connected, now);
    this.renderScenes(room, connected, now);
    this.renderSources(room, connected, now);
    this.renderControls(room, connected, now);
    this.renderRoomStatus(room, connected);
  }

  renderDevices(room, connected, now) {
    const timing = (this.store.panel && this.store.panel.timing) || {};
    for (const card of document.querySelectorAll("#devices .device")) {
      const id = card.dataset.deviceId;
      const device = room.devices[id];
      const name = card.querySelector(".dev-name");
      const stateEl = card.querySelector(".dev-state");
      const note = card.querySelector(".dev-note");
      if (!device) {
        // Configured but not started (bad profile, missing port): the technician must look.
        name.textContent = id;
        card.dataset.state = "fault";
        stateEl.textContent = t("state.fault");
        note.textContent = t("advice.not_started");
        continue;
      }
      name.textContent = label(device.label, device.name || id);
      const view = describeDevice(device, timing[id], now);
      if (!connected) {
        // No live link: the last known state is not shown as the current one.
        card.dataset.state = "unknown";
        card.dataset.stale = "true";
        stateEl.textContent = t("state.unknown");
        note.textContent = t("conn.last_known", { state: t(...view.words) });
        continue;
      }
      card.dataset.stale = "false";
      card.dataset.state = view.state;
      card.dataset.busy = String(view.busy);
      stateEl.textContent = t(...view.words);
      note.textContent = view.note ? t(...view.note) : "";
    }
  }

  renderScenes(room, connected, now) {
    // Pending until the room has worked on it and converged (or plainly had nothing to do).
    const scene = this.pendingScene;
    if (scene && scene.sent && !room.converged) scene.working = true;
    if (scene && (now > scene.until || (scene.sent && room.converged && (scene.working || now - scene.sent > 2000)))) {
      this.pendingScene = null;
    }
    for (const button of document.querySelectorAll("#scenes .scene")) {
      button.dataset.pending = String(this.pendingScene?.id === button.dataset.sceneId);
      button.disabled = !connected;
    }
  }

  renderSources(room, connected, now) {
    if (this.pendingSource && (now > this.pendingSource.until || (this.pendingSource.sent && room.source === this.pendingSource.id))) {
      this.pendingSource = null;
    }
    const routing = Object.values(room.devices).some((d) => ["route", "input"].some((c) => (d.status || {})[c] === "pending"));
    for (const tile of document.querySelectorAll("#sources .tile")) {
      const id = tile.dataset.sourceId;
      const pending = this.pendingSource?.id === id;
      const active = connected && room.source === id;
      tile.dataset.pending = String(pending);
      tile.dataset.state = pending ? "pending" : active ? "active" : "idle";
      tile.setAttribute("aria-pressed", String(active));
      tile.disabled = !connected;
      const note = tile.querySelector(".tile-note");
      note.textContent = pending || (active && routing) ? t("progress.switching") : active ? t("sources.on_screen") : "";
    }
  }

  renderControls(room, connected, now) {
    const panel = this.store.panel || {};
    const reported = (id, cap) => room.devices[id]?.reported?.[cap]?.value;
    const online = (id) => room.devices[id]?.online === true;
    // Volume: the service's value unless a finger is on the slider.
    const slider = $("volume");
    if (panel.volume) {
      const value = reported(panel.volume, "volume");
      slider.disabled = !connected || !online(panel.volume);
      const held = now < this.volumeHeld;
      if (!connected) {
        this.paintVolume(null, false); // no live link: no number that may be stale
      } else if (!held) {
        if (typeof value === "number") {
          slider.value = String(value);
          this.paintVolume(value, this.volumeWanted !== null && this.volumeWanted !== value && now < this.volumeHeld + 3000);
        } else {
          this.paintVolume(null, false);
        }
      }
    }
    const toggles = {
      mute: panel.mute ? [panel.mute] : [],
      blank: panel.blank || [],
      freeze: panel.freeze || [],
    };
    const capability = { mute: "mute", blank: "video_mute", freeze: "freeze" };
    for (const [name, devices] of Object.entries(toggles)) {
      const button = $(name);
      if (!devices.length) continue;
      const values = devices.map((id) => reported(id, capability[name]));
      const on = values.some(isOn);
      const known = values.some((v) => v !== undefined);
      const pending = this.pendingToggle[name];
      if (pending && (now > pending.until || (pending.sent && on === pending.want))) delete this.pendingToggle[name];
      const waiting = Boolean(this.pendingToggle[name]);
      button.setAttribute("aria-pressed", String(connected && on));
      button.dataset.state = !connected || !known ? "unknown" : on ? "on" : "off";
      button.dataset.pending = String(waiting);
      button.disabled = !connected || !devices.some(online);
    }
  }

  renderRoomStatus(room, connected) {
    const el = $("room-status");
    const devices = Object.values(room.devices);
    const trouble = Object.keys(room.broken || {}).length > 0 || devices.some((d) => d.health?.status === "offline" || Object.values(d.status || {}).includes("failed"));
    let state = "ready";
    if (!connected) state = "unknown";
    else if (trouble) state = "trouble";
    else if (!room.converged) state = "working";
    el.dataset.state = state;
    el.textContent = t({ ready: "room.ready", working: "room.working", trouble: "room.trouble", unknown: "conn.lost" }[state]);
  }

  paintVolume(value, pending) {
    const slider = $("volume");
    const shown = value === null ? Number(slider.value) : value;
    slider.style.setProperty("--fill", `${shown}%`);
    $("volume-value").textContent = value === null ? "–" : `${value}%`;
    $("volume-box").dataset.pending = String(pending);
  }

  // --- intents -------------------------------------------------------------------------------

  async activateScene(id) {
    this.pendingScene = { id, until: Date.now() + this.longestWarmup() + 15000, sent: 0, working: false };
    this.render();
    try {
      await api.post(`/scenes/${encodeURIComponent(id)}/activate`);
      if (this.pendingScene?.id === id) this.pendingScene.sent = Date.now();
    } catch (error) {
      this.pendingScene = null;
      this.onError(error);
    }
    this.render();
  }

  async selectSource(id) {
    this.pendingSource = { id, until: Date.now() + 10000, sent: false };
    this.render();
    try {
      await api.post(`/sources/${encodeURIComponent(id)}/select`);
      if (this.pendingSource?.id === id) this.pendingSource.sent = true;
    } catch (error) {
      this.pendingSource = null;
      this.onError(error);
    }
    this.render();
  }

  async toggle(name) {
    const panel = this.store.panel || {};
    const room = this.store.room;
    const devices = name === "mute" ? [panel.mute] : panel[name] || [];
    const capability = { mute: "mute", blank: "video_mute", freeze: "freeze" }[name];
    const on = devices.some((id) => isOn(room.devices[id]?.reported?.[capability]?.value));
    const want = !on;
    this.pendingToggle[name] = { want, until: Date.now() + TOGGLE_WAIT_MS, sent: false };
    this.render();
    const patch = {};
    for (const id of devices) {
      if (room.devices[id]?.online) patch[id] = { [capability]: want };
    }
    try {
      await api.patch("/room/desired", patch);
      if (this.pendingToggle[name]) this.pendingToggle[name].sent = true;
    } catch (error) {
      delete this.pendingToggle[name];
      this.onError(error);
    }
    this.render();
  }

  async sendVolume() {
    this.volumeTimer = null;
    const device = this.store.panel?.volume;
    const value = this.volumeWanted;
    if (!device || value === null) return;
    try {
      await api.patch("/room/desired", { [device]: { volume: value } });
    } catch (error) {
      this.onError(error);
    }
  }

  longestWarmup() {
    const timing = this.store.panel?.timing || {};
    return 1000 * Math.max(0, ...Object.values(timing).map((x) => x.warmup || 0));
  }
}
