// The fleet page's start: language, sign-in (a pasted token, or #token=… once), then every 3 s
// the rooms, alerts, help requests and recent commands; and what the buttons do.
import * as api from "./api.js";
import { Commands } from "./commands.js";
import { RoomDetail } from "./detail.js";
import { setLanguage, siteName, stored, t } from "./i18n.js";
import { SideLists } from "./lists.js";
import { FleetView, kindWord, siteOf } from "./rooms.js";

const POLL_MS = 3000;
const HIDDEN_POLL_MS = 15000; // a tab nobody looks at asks less often
const TOAST_MS = 10000;
const ROLES = { viewer: "role.viewer", operator: "role.operator", admin: "role.admin" };
const $ = (id) => document.getElementById(id);

const session = { me: null, signedIn: false };
let last = null; // the latest answers, drawn again when the language changes
let timer = null;
let polling = null;
let pollAgain = false;
let polls = 0;
let toastTimer = null;

const canCommand = () => session.me !== null && (session.me.role === "operator" || session.me.role === "admin");

function roomName(roomId) {
  const room = fleet.room(roomId);
  return `${room?.name || roomId} · ${siteName(siteOf(roomId))}`;
}

function deviceName(roomId, deviceId) {
  const device = fleet.room(roomId)?.devices?.[deviceId];
  const kind = device ? kindWord(device.kind) : "";
  return kind && device.kind !== deviceId ? `${kind} (${deviceId})` : kind || deviceId;
}

// An API error in words; shown in the toast unless `quiet` (then the caller shows it).
function explain(error, { quiet = false } = {}) {
  let text;
  if (error.status === 0) text = t("error.network");
  else if (error.status === 403) text = t("error.forbidden");
  else if (error.status === 404) text = t("error.not_found", { detail: error.detail });
  else if (error.status === 422) text = t("error.invalid", { detail: error.detail });
  else text = t("error.generic", { detail: error.detail || error.status });
  if (!quiet) showToast(text);
  return text;
}

function showToast(text) {
  $("toast-text").textContent = text;
  $("toast").hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { $("toast").hidden = true; }, TOAST_MS);
}

const fleet = new FleetView({
  container: $("sites"),
  empty: $("sites-empty"),
  summary: $("summary"),
  onOpen: (roomId) => detail.open(roomId),
  onCommandRoom: (roomId) => commands.openForRoom(roomId),
  onCommandSite: (site) => commands.openForSite(site),
});

const lists = new SideLists({
  helpList: $("help-list"), helpEmpty: $("help-empty"), helpCount: $("help-count"),
  alertList: $("alert-list"), alertsEmpty: $("alerts-empty"), alertsCount: $("alerts-count"),
  names: { room: roomName, device: deviceName },
  onAckHelp: ackHelp,
  onAckAlert: ackAlert,
  onOpen: (roomId) => detail.open(roomId),
});

const commands = new Commands({
  dialog: $("command-dialog"), title: $("command-title"), target: $("command-target"),
  note: $("command-note"), error: $("command-error"), confirm: $("command-confirm"),
  cancel: $("command-cancel"), follow: $("command-follow"), list: $("command-list"),
  empty: $("commands-empty"), fleet,
  onError: explain,
  onSent: () => poll(),
});

const detail = new RoomDetail({
  dialog: $("room-dialog"), title: $("room-title"), facts: $("room-facts"),
  devices: $("room-devices"), events: $("room-events"), audit: $("room-audit"),
  more: $("room-audit-more"), command: $("room-command"), refresh: $("room-refresh"),
  close: $("room-close"),
  canCommand,
  thresholds: () => fleet.thresholds,
  onCommand: (roomId) => commands.openForRoom(roomId),
  onError: explain,
});

async function ackAlert(alert, button) {
  button.disabled = true;
  try {
    await api.post(`/alerts/${encodeURIComponent(alert.id)}/ack`);
  } catch (error) {
    button.disabled = false;
    if (error.status !== 401) explain(error);
    return;
  }
  poll();
}

async function ackHelp(item, button) {
  button.disabled = true;
  try {
    await api.post(`/help-requests/${api.roomPath(item.room)}/${encodeURIComponent(item.id)}/ack`);
  } catch (error) {
    // 404: someone else acknowledged it first; the next poll shows that.
    if (error.status !== 404) {
      button.disabled = false;
      if (error.status !== 401) explain(error);
      return;
    }
  }
  poll();
}

// --- the poll ------------------------------------------------------------------------------

async function poll() {
  clearTimeout(timer);
  timer = null;
  if (!session.me) return;
  if (polling) {
    pollAgain = true; // an acknowledgement during a poll: look once more right after it
    return;
  }
  polling = fetchAll();
  await polling;
  polling = null;
  if (!session.me) return;
  if (pollAgain) {
    pollAgain = false;
    poll();
    return;
  }
  timer = setTimeout(poll, document.hidden ? HIDDEN_POLL_MS : POLL_MS);
}

async function fetchAll() {
  try {
    const [rooms, alerts, help, recent] = await Promise.all([
      api.get("/rooms"), api.get("/alerts"), api.get("/help-requests"), api.get("/commands?limit=20"),
    ]);
    if (!session.me) return;
    last = { rooms, alerts: alerts.alerts, help: help.help_requests, commands: recent.commands };
    render();
    setConnected(true);
  } catch (error) {
    if (error.status === 401 || !session.me) return;
    setConnected(false, error);
  }
}

function render() {
  if (!last) return;
  const started = performance.now();
  const now = api.hubNow();
  fleet.update(last.rooms, { canCommand: canCommand(), now });
  lists.update({ help: last.help, alerts: last.alerts }, { canAck: canCommand(), now });
  commands.update(last.commands, { now });
  polls += 1;
  document.body.dataset.polls = String(polls); // tests wait on these two
  document.body.dataset.renderMs = String(Math.round(performance.now() - started));
}

function setConnected(connected, error = null) {
  document.body.dataset.connected = String(connected);
  $("offline").hidden = connected;
  $("offline-detail").textContent = connected ? "" : error.status === 0 ? t("conn.retrying") : explain(error, { quiet: true });
}

// --- signing in and out --------------------------------------------------------------------

function say(key) {
  const box = $("signin-error");
  if (key) {
    box.dataset.i18n = key; // said again in a newly chosen language
    box.textContent = t(key);
  } else {
    delete box.dataset.i18n;
    box.textContent = "";
  }
}

function showSignIn(messageKey = null) {
  session.me = null;
  clearTimeout(timer);
  timer = null;
  last = null;
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  fleet.reset();
  lists.reset();
  commands.reset();
  document.body.dataset.view = "signin";
  delete document.body.dataset.role;
  $("app").hidden = true;
  $("me").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  say(messageKey);
  $("token").value = "";
  $("token").focus();
}

function enter(me) {
  session.me = me;
  session.signedIn = true;
  document.body.dataset.view = "fleet";
  document.body.dataset.role = me.role;
  $("signin").hidden = true;
  say(null);
  $("app").hidden = false;
  $("me-name").textContent = me.name;
  $("me-role").dataset.i18n = ROLES[me.role] || "role.viewer";
  $("me-role").textContent = t($("me-role").dataset.i18n);
  $("me").hidden = false;
  $("signout").hidden = false;
  poll();
}

async function signIn(event) {
  event.preventDefault();
  const candidate = $("token").value.trim();
  if (!candidate) {
    say("signin.empty");
    return;
  }
  const button = $("signin-form").querySelector("button[type=submit]");
  button.disabled = true;
  say("signin.checking");
  try {
    const me = await api.get("/me", { as: candidate });
    api.setToken(candidate);
    enter(me);
  } catch (error) {
    say(error.status === 401 ? "signin.wrong" : error.status === 0 ? "signin.network" : "signin.failed");
  } finally {
    button.disabled = false;
  }
}

function signOut() {
  api.clearToken();
  session.signedIn = false;
  showSignIn("signin.signed_out");
}

// A link to the page ending in #token=thub_… signs in once; the token leaves the address bar.
function takeTokenFromAddress() {
  const match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  if (!match) return false;
  api.setToken(decodeURIComponent(match[1]));
  history.replaceState(null, "", window.location.pathname + window.location.search);
  return true;
}

async function enterWithKeptToken() {
  try {
    enter(await api.get("/me"));
  } catch (error) {
    if (error.status !== 401) showSignIn(error.status === 0 ? "signin.network" : "signin.failed");
  }
}

// --- start ---------------------------------------------------------------------------------

async function chooseLanguage(lang) {
  await setLanguage(lang, { remember: true });
  render();
  commands.redraw();
  if ($("command-dialog").open) commands.describe();
  detail.redraw();
}

async function start() {
  await setLanguage(stored() || "az");
  for (const button of document.querySelectorAll("[data-lang]")) {
    button.addEventListener("click", () => chooseLanguage(button.dataset.lang));
  }
  $("signin-form").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("toast-close").addEventListener("click", () => { $("toast").hidden = true; });
  let typing = null;
  $("filter").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => fleet.setFilter($("filter").value), 120);
  });
  $("problems").addEventListener("change", () => fleet.setProblemsOnly($("problems").checked));
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && session.me) poll();
  });
  api.onUnauthorized(() => showSignIn(session.signedIn ? "signin.expired" : "signin.wrong"));

  window.addEventListener("hashchange", () => {
    // The link pasted into a tab that already shows the page: the same sign-in, as someone new.
    if (takeTokenFromAddress()) {
      session.signedIn = false;
      enterWithKeptToken();
    }
  });

  takeTokenFromAddress();
  if (api.token()) await enterWithKeptToken();
  else showSignIn();
}

start();
