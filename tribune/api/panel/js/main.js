// The panel's start: language, the live room, the home screen, help, the technician screen.
import * as api from "./api.js";
import { HomeScreen } from "./home.js";
import { label, language, locale, setLanguage, stored, t, translatePage } from "./i18n.js";
import { LiveRoom } from "./live.js";
import { TechScreen } from "./tech.js";

const $ = (id) => document.getElementById(id);
const store = { room: null, panel: null, scenes: [], sources: [], connected: false };
let lastToast = null;
const failuresShown = new Set(); // audit ids of device failures already said

function deviceName(id) {
  const device = store.room?.devices?.[id];
  return device ? label(device.label, device.name || id) : id;
}

// Failures in plain language, with what to do.
function explain(error) {
  const device = /^(?:device )?([a-z0-9-]+)[.:]/.exec(error.detail || "")?.[1];
  const name = device && store.room?.devices?.[device] ? deviceName(device) : t("error.the_device");
  switch (error.kind) {
    case "network": return t("error.network");
    case "device-unreachable": return t("error.unreachable", { device: name });
    case "device-refused": return t("error.refused", { device: name });
    case "not-supported":
    case "invalid-request": return t("error.not_supported", { detail: error.detail });
    default: return t("error.generic");
  }
}

function showToast(text) {
  lastToast = text;
  $("toast-text").textContent = text;
  $("toast").hidden = false;
}

function reportError(error) {
  showToast(explain(error));
}

const home = new HomeScreen(store, { onError: reportError });
const tech = new TechScreen(store, { onError: reportError, onClose: () => showHome() });

function showHome() {
  $("tech").hidden = true;
  $("home").hidden = false;
}

async function loadConfig() {
  const [panel, scenes, sources] = await Promise.all([api.get("/panel"), api.get("/scenes"), api.get("/sources")]);
  store.panel = panel;
  store.scenes = scenes;
  store.sources = sources;
}

function renderAll() {
  const room = store.room;
  $("room-name").textContent = room ? room.name || room.id : "…";
  document.title = room ? `${room.name || room.id} — tribune` : "tribune";
  home.build();
  tech.render();
}

// --- the live room -----------------------------------------------------------------------------

function applyEvent(message) {
  const room = store.room;
  if (!room) return;
  const data = message.data;
  if (message.kind === "device" && data && data.id) {
    room.devices[data.id] = data;
  } else if (message.kind === "status" && data) {
    for (const [id, caps] of Object.entries(data)) {
      const device = room.devices[id];
      if (!device) continue;
      device.status = {};
      device.reasons = {};
      for (const [cap, status] of Object.entries(caps)) {
        device.status[cap] = status.state;
        if (status.reason) device.reasons[cap] = status.reason;
      }
    }
  } else if (message.kind === "room" && data) {
    Object.assign(room, data);
  } else if (message.kind === "audit" && data) {
    tech.audit(data);
    sayDeviceFailure(data);
  }
  home.render();
  tech.renderDevices();
}

function sayDeviceFailure(entry) {
  if (entry.action !== "device.failed" || failuresShown.has(entry.id)) return;
  failuresShown.add(entry.id);
  const device = entry.detail?.device;
  const reason = String(entry.result || "").replace(/^failed:\s*/, "");
  showToast(t("error.device_failed", { device: deviceName(device), reason }));
}

let snapshots = 0;
const live = new LiveRoom({
  onSnapshot: (room) => {
    // A snapshot replaces everything the page knew, at once (events that follow build on it).
    store.room = room;
    snapshots += 1;
    renderAll();
    if (snapshots > 1) {
      // After a service restart the config may have changed too.
      loadConfig().then(renderAll, () => {});
    }
  },
  onEvent: applyEvent,
  onConnection: (connected) => {
    store.connected = connected;
    $("banner").hidden = connected;
    document.body.dataset.connected = String(connected);
    home.render();
  },
});

// --- help ------------------------------------------------------------------------------------

let helpReset = null;
async function callHelp() {
  const button = $("help");
  if (button.dataset.state === "sending") return;
  clearTimeout(helpReset);
  button.dataset.state = "sending";
  $("help-text").textContent = t("help.sending");
  try {
    const sent = await api.post("/help", {});
    const time = new Date(sent.at * 1000).toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
    button.dataset.state = "sent";
    button.dataset.at = time;
    $("help-text").textContent = t("help.sent", { time });
    helpReset = setTimeout(() => {
      button.dataset.state = "idle";
      $("help-text").textContent = t("help.button");
    }, 120000);
  } catch (error) {
    button.dataset.state = "idle";
    $("help-text").textContent = t("help.button");
    reportError(error);
  }
}

function repaintHelp() {
  const button = $("help");
  const key = { idle: "help.button", sending: "help.sending", sent: "help.sent" }[button.dataset.state];
  $("help-text").textContent = t(key, { time: button.dataset.at || "" });
}

// --- start -----------------------------------------------------------------------------------

async function changeLanguage(lang) {
  await setLanguage(lang, { remember: true });
  renderAll();
  repaintHelp();
  if (lastToast !== null) $("toast").hidden = true;
}

async function start() {
  await setLanguage(stored() || "az");
  for (;;) {
    try {
      await loadConfig();
      break;
    } catch {
      $("banner").hidden = false; // the service is not up yet: keep trying
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  const configured = store.panel?.language;
  if (!stored() && configured && configured !== language()) await setLanguage(configured);
  repaintHelp();
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => changeLanguage(button.dataset.lang));
  }
  $("help").addEventListener("click", callHelp);
  $("toast-close").addEventListener("click", () => { $("toast").hidden = true; lastToast = null; });
  $("tech-open").addEventListener("click", () => tech.askPin());
  tech.onOpen = () => {
    $("home").hidden = true;
    $("tech").hidden = false;
  };
  setInterval(() => home.render(), 1000); // countdowns, and pending marks that time out
  translatePage();
  live.start();
}

start();
