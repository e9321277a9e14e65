// The technician's profile tools for one device: what it runs, its history, flash a file, roll back.
import * as api from "./api.js";
import { locale, t } from "./i18n.js";

const $ = (id) => document.getElementById(id);
const ORIGINS = { installed: "tech.origin.installed", shipped: "tech.origin.shipped", file: "tech.origin.file" };
const ARM_MS = 4000; // a roll-back tap must be confirmed by a second one within this time

function short(sha) {
  return sha && sha !== "shipped" ? sha.slice(0, 12) : "—";
}

function when(at) {
  return new Date(at * 1000).toLocaleString(locale(), {
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  });
}

export class ProfileTools {
  constructor({ onChange, onAuthLost }) {
    this.onChange = onChange; // the device table shows what changed
    this.onAuthLost = onAuthLost;
    this.states = {}; // device id -> GET /technician/devices entry
    this.device = null; // the device whose panel is open
    this.history = [];
    this.result = null; // { state: ok|refused|error|pending, text, problems }
    this.pending = null; // a refused file, kept for "install anyway": { text, name }
    this.armed = null;
    $("flash-pick").addEventListener("click", () => $("flash-file").click());
    $("flash-file").addEventListener("change", () => this.pick());
    $("flash-force").addEventListener("click", () => this.force());
    $("rollback").addEventListener("click", () => this.rollback());
    $("profile-close").addEventListener("click", () => this.close());
  }

  // The table's profile cell: "epson-escvp21 v2 · 814a898b6da0 (installed)".
  describe(device) {
    const state = this.states[device.id];
    const version = device.profile_version ? ` v${device.profile_version}` : "";
    if (!state) return `${device.profile}${version}`;
    const origin = state.origin ? ` (${t(ORIGINS[state.origin] || "tech.origin.file")})` : "";
    return `${state.profile} v${state.version} · ${short(state.sha256)}${origin}`;
  }

  async refresh() {
    const states = await api.get("/technician/devices", { technician: true });
    this.states = Object.fromEntries(states.map((s) => [s.device, s]));
    if (this.device) await this.loadHistory();
    this.render();
  }

  async open(deviceId) {
    this.device = deviceId;
    this.result = null;
    this.pending = null;
    $("tech-profile").hidden = false;
    try {
      await this.refresh();
    } catch (error) {
      this.fail(error);
    }
    $("tech-profile").scrollIntoView({ block: "nearest" });
  }

  close() {
    this.device = null;
    $("tech-profile").hidden = true;
  }

  async loadHistory() {
    const state = this.states[this.device];
    this.history = state ? (await api.get(`/technician/profiles/${encodeURIComponent(state.profile)}/history`, { technician: true })).entries : [];
  }

  async pick() {
    const input = $("flash-file");
    const file = input.files && input.files[0];
    input.value = "";
    if (!file || !this.device) return;
    this.pending = { text: await file.text(), name: file.name };
    await this.flash(false);
  }

  force() {
    if (this.pending) this.flash(true);
  }

  async flash(force) {
    const device = this.device;
    const { text, name } = this.pending;
    this.result = { state: "pending", text: t("tech.flashing") };
    this.render();
    try {
      const done = await api.post(
        `/technician/devices/${encodeURIComponent(device)}/flash`,
        { profile: text, filename: name, force },
        { technician: true },
      );
      this.pending = null;
      this.result = {
        state: "ok",
        text: t("tech.flash_done", { profile: done.profile, version: done.version }),
        problems: done.warnings,
      };
    } catch (error) {
      if (error.kind === "probe-mismatch") {
        this.result = { state: "refused", text: t("tech.flash_refused"), problems: error.problems || [error.detail] };
      } else {
        this.pending = null;
        this.fail(error);
      }
    }
    await this.after();
  }

  async rollback() {
    const button = $("rollback");
    if (this.armed !== this.device) {
      this.armed = this.device;
      button.dataset.armed = "true";
      button.textContent = t("tech.rollback_confirm");
      setTimeout(() => {
        if (button.dataset.armed === "true") this.disarm();
      }, ARM_MS);
      return;
    }
    this.disarm();
    this.pending = null;
    this.result = { state: "pending", text: t("tech.rolling_back") };
    this.render();
    try {
      const done = await api.post(`/technician/devices/${encodeURIComponent(this.device)}/rollback`, {}, { technician: true });
      this.result = { state: "ok", text: t("tech.rollback_done", { profile: done.profile, version: done.version || "—" }) };
    } catch (error) {
      this.fail(error);
    }
    await this.after();
  }

  disarm() {
    this.armed = null;
    const button = $("rollback");
    button.dataset.armed = "false";
    button.textContent = t("tech.rollback");
  }

  fail(error) {
    if (error.status === 401) this.onAuthLost();
    const key = error.kind === "invalid-profile" ? "tech.flash_invalid" : "tech.flash_failed";
    this.result = { state: "error", text: t(key, { detail: error.detail || error.kind }) };
  }

  async after() {
    try {
      await this.refresh();
    } catch (error) {
      if (error.status === 401) this.onAuthLost();
    }
    this.render();
    this.onChange();
  }

  render() {
    if (!this.device) return;
    const state = this.states[this.device];
    $("profile-title").textContent = state ? `${this.device}: ${state.profile} v${state.version}` : this.device;
    const facts = [];
    if (state) {
      facts.push(`sha256 ${short(state.sha256)} · ${t(ORIGINS[state.origin] || "tech.origin.file")}`);
      if (state.stale) facts.push(t("tech.stale"));
      if (state.broken) facts.push(state.broken);
    }
    $("profile-facts").textContent = facts.join(" · ");
    const busy = this.result?.state === "pending";
    $("flash-pick").disabled = busy;
    $("rollback").disabled = busy || !state?.can_roll_back;
    $("flash-force").hidden = !(this.result?.state === "refused" && this.pending);
    const box = $("profile-result");
    box.dataset.state = this.result?.state || "none";
    box.replaceChildren();
    if (this.result) {
      const line = document.createElement("div");
      line.textContent = this.result.text;
      box.append(line);
      if (this.result.problems?.length) {
        const list = document.createElement("ul");
        list.dataset.testid = "profile-problems";
        for (const problem of this.result.problems) {
          const item = document.createElement("li");
          item.textContent = problem;
          list.append(item);
        }
        box.append(list);
      }
    }
    this.renderHistory();
  }

  renderHistory() {
    const rows = this.history.map((entry) => {
      const tr = document.createElement("tr");
      tr.dataset.testid = "profile-history-row";
      tr.dataset.current = String(entry.current);
      const what = entry.sha256 === "shipped" ? t("tech.origin.shipped") : `v${entry.version} ${short(entry.sha256)}`;
      for (const [text, className] of [
        [entry.current ? "●" : "", "ok"],
        [when(entry.installed_at), "mono"],
        [entry.action, "mono"],
        [what, "mono"],
        [entry.installed_by, ""],
      ]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (className) td.className = className;
        tr.append(td);
      }
      return tr;
    });
    const box = $("profile-history");
    if (!rows.length) {
      box.textContent = t("tech.history_empty");
      return;
    }
    const table = document.createElement("table");
    const head = document.createElement("tr");
    for (const key of ["tech.col.current", "tech.col.time", "tech.col.action", "tech.col.version", "tech.col.who"]) {
      const th = document.createElement("th");
      th.textContent = t(key);
      head.append(th);
    }
    const thead = document.createElement("thead");
    thead.append(head);
    const tbody = document.createElement("tbody");
    tbody.append(...rows);
    table.append(thead, tbody);
    box.replaceChildren(table);
  }
}
