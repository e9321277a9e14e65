// A device's state for people: a machine value for data-state, the words for it, and a note
// (countdown, what is happening, what to do). Derived only from what the service reports.
const POWER_STATES = ["on", "off", "warming", "cooling"];
const warmingSince = new Map(); // device id -> ms when this page first saw it warming/cooling

export const STATE_WORDS = {
  on: "state.on",
  ready: "state.ready",
  off: "state.off",
  warming: "state.warming",
  cooling: "state.cooling",
  offline: "state.offline",
  fault: "state.fault",
  unknown: "state.unknown",
};

// -> { state, words, note, busy } where words/note are [key, vars] pairs (or null).
export function describeDevice(device, timing, now = Date.now()) {
  const health = device.health || {};
  const status = device.status || {};
  const reasons = device.reasons || {};
  const hasPower = (device.capabilities || []).includes("power");
  const power = device.reported && device.reported.power ? device.reported.power.value : undefined;
  const phase = hasPower && (power === "warming" || power === "cooling") ? power : null;
  if (phase) {
    const mark = warmingSince.get(device.id);
    if (!mark || mark.phase !== phase) warmingSince.set(device.id, { phase, at: now });
  } else {
    warmingSince.delete(device.id);
  }

  if (health.status === "offline") {
    return { state: "offline", words: ["state.offline"], note: ["advice.offline"], busy: false };
  }
  if (health.status === "error") {
    return { state: "fault", words: ["state.fault"], note: ["advice.fault", { reason: health.last_error || "" }], busy: false };
  }
  const failed = Object.keys(status).find((cap) => status[cap] === "failed");
  if (failed) {
    return { state: "fault", words: ["state.fault"], note: ["advice.failed", { reason: reasons[failed] || "" }], busy: false };
  }
  if (health.status !== "online") {
    return { state: "unknown", words: ["state.unknown"], note: null, busy: false };
  }
  if (!hasPower) {
    return { state: "on", words: ["state.ready"], note: pendingNote(device, null), busy: isBusy(status) };
  }
  if (power === undefined) return { state: "unknown", words: ["state.unknown"], note: null, busy: false };
  const state = POWER_STATES.includes(power) ? power : "off";
  let words = [STATE_WORDS[state]];
  if (phase) {
    const total = phase === "warming" ? timing?.warmup : timing?.cooldown;
    const elapsed = (now - warmingSince.get(device.id).at) / 1000;
    const left = total ? Math.ceil(total - elapsed) : 0;
    words = left > 0
      ? [phase === "warming" ? "state.warming_left" : "state.cooling_left", { n: left }]
      : [STATE_WORDS[state]];
  }
  return { state, words, note: pendingNote(device, state), busy: isBusy(status) };
}

function isBusy(status) {
  return Object.values(status).some((s) => s === "pending");
}

// Pending power means the reported state is not the desired one (yet): say where it is going,
// unless the state's own words already say it (warming up toward on, cooling down toward off).
function pendingNote(device, state) {
  const status = device.status || {};
  if (status.power === "pending") {
    const want = device.desired && device.desired.power;
    const goingOn = want ? want === "on" : state === "off" || state === "cooling";
    if (goingOn) return state === "warming" ? null : ["progress.turning_on"];
    return state === "cooling" ? null : ["progress.turning_off"];
  }
  return isBusy(status) ? ["progress.applying"] : null;
}

export function isOn(value) {
  return value === true || value === "on";
}
