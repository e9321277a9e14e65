// The side lists: open help requests and open alerts, each with its acknowledge button for
// operators. Items are keyed, so a poll that changes nothing leaves focus where it was.
import { clearList, el, syncList, testId } from "./dom.js";
import { ago, clock, language, number, t } from "./i18n.js";

// A <time> whose text says how long ago; tickTimes() keeps it current between renders.
export function agoTime(value, now) {
  return el("time", { "data-at": value ?? "", title: clock(value) }, ago(value, now));
}

export function tickTimes(root, now) {
  for (const node of root.querySelectorAll("time[data-at]")) {
    const raw = node.dataset.at;
    const text = ago(/^[\d.]+$/.test(raw) ? Number(raw) : raw, now);
    if (node.textContent !== text) node.textContent = text;
  }
}

// What an alert says, in words; `device` is already a name for people.
export function alertText(alert, device) {
  const data = alert.data || {};
  switch (alert.code) {
    case "device.offline":
      return t("alert.device_offline", { device });
    case "device.error":
      return t("alert.device_error", { device, error: data.error ?? "" });
    case "lamp.hours":
      return t("alert.lamp_hours", { device, hours: number(data.hours), threshold: number(data.threshold) });
    case "outbox.dropped":
      return t("alert.outbox_dropped", { n: number(data.dropped) });
    default:
      return alert.code;
  }
}

export class SideLists {
  // names: { room(id) -> text, device(roomId, deviceId) -> text }; actions: ack and open.
  constructor({ helpList, helpEmpty, helpCount, alertList, alertsEmpty, alertsCount, names, onAckHelp, onAckAlert, onOpen }) {
    Object.assign(this, { helpList, helpEmpty, helpCount, alertList, alertsEmpty, alertsCount, names });
    this.actions = { onAckHelp, onAckAlert, onOpen };
  }

  update({ help, alerts }, { canAck, now }) {
    const common = `${language()}|${canAck}`;
    syncList(this.helpList, help, {
      key: (item) => `${item.room}#${item.id}`,
      sig: (item) => `${common}|${JSON.stringify(item)}|${this.names.room(item.room)}`,
      render: (item) => this.renderHelp(item, canAck, now),
    });
    this.helpEmpty.hidden = help.length > 0;
    this.helpCount.textContent = String(help.length);
    this.helpCount.dataset.count = String(help.length);
    syncList(this.alertList, alerts, {
      key: (alert) => String(alert.id),
      sig: (alert) => `${common}|${JSON.stringify(alert)}|${this.names.room(alert.room)}`,
      render: (alert) => this.renderAlert(alert, canAck, now),
    });
    this.alertsEmpty.hidden = alerts.length > 0;
    this.alertsCount.textContent = String(alerts.length);
    this.alertsCount.dataset.count = String(alerts.length);
    this.tick(now);
  }

  tick(now) {
    tickTimes(this.helpList, now);
    tickTimes(this.alertList, now);
  }

  reset() {
    for (const list of [this.helpList, this.alertList]) clearList(list);
  }

  roomLink(roomId) {
    return el("button", { type: "button", class: "link", onclick: () => this.actions.onOpen(roomId) }, this.names.room(roomId));
  }

  renderHelp(item, canAck, now) {
    const tid = `${testId(item.room)}-${item.id}`;
    const who = item.actor || item.who;
    return el("li", { class: "item help", "data-testid": `help-${tid}` },
      el("div", { class: "item-main" },
        el("p", { class: "what" }, item.note ? item.note : t("help.no_note")),
        el("p", { class: "where" }, this.roomLink(item.room), " · ", agoTime(item.at, now), who ? ` · ${who}` : "")),
      canAck
        ? el("button", {
            type: "button", class: "ack", "data-testid": `help-ack-${tid}`,
            "aria-label": t("help.ack_for", { room: this.names.room(item.room) }),
            onclick: (event) => this.actions.onAckHelp(item, event.currentTarget),
          }, t("help.ack"))
        : null);
  }

  renderAlert(alert, canAck, now) {
    const device = alert.device ? this.names.device(alert.room, alert.device) : "";
    const severity = alert.code === "lamp.hours" || alert.code === "outbox.dropped" ? "warning" : "danger";
    return el("li", { class: "item alert", "data-testid": `alert-${alert.id}`, "data-code": alert.code, "data-severity": severity },
      el("div", { class: "item-main" },
        el("p", { class: "what" }, alertText(alert, device)),
        el("p", { class: "where" }, this.roomLink(alert.room), " · ", agoTime(alert.raised_at, now))),
      canAck
        ? el("button", {
            type: "button", class: "ack", "data-testid": `alert-ack-${alert.id}`,
            "aria-label": t("alerts.ack_for", { what: alertText(alert, device) }),
            onclick: (event) => this.actions.onAckAlert(alert, event.currentTarget),
          }, t("alerts.ack"))
        : null);
  }
}
