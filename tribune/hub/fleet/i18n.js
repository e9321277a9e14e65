// Translations from az.json, en.json, ru.json beside this module; the choice kept in
// localStorage. Times: Unix seconds (the hub's) or ISO text (the rooms'), said relative or local.
export const LANGUAGES = ["az", "en", "ru"];
const STORAGE_KEY = "tribune.fleet.lang";
const LOCALES = { az: "az-Latn-AZ", en: "en-GB", ru: "ru-RU" };

// Centres whose id is their city's name in Latin letters are shown by the city's name.
const SITES = {
  baku: "site.baku", ganja: "site.ganja", nakhchivan: "site.nakhchivan", sumgayit: "site.sumgayit",
  mingachevir: "site.mingachevir", barda: "site.barda", lankaran: "site.lankaran",
  gazakh: "site.gazakh", zagatala: "site.zagatala", imishli: "site.imishli", gabala: "site.gabala",
  goychay: "site.goychay", shirvan: "site.shirvan", shamakhi: "site.shamakhi", guba: "site.guba",
  shaki: "site.shaki",
};

let current = "az";
let words = {};

export function stored() {
  try {
    const lang = localStorage.getItem(STORAGE_KEY);
    return LANGUAGES.includes(lang) ? lang : null;
  } catch {
    return null;
  }
}

export async function setLanguage(lang, { remember = false } = {}) {
  if (!LANGUAGES.includes(lang)) lang = "az";
  const response = await fetch(new URL(`./${lang}.json`, import.meta.url), { cache: "no-cache" });
  if (!response.ok) throw new Error(`${lang}.json: ${response.status}`);
  words = await response.json();
  current = lang;
  document.documentElement.lang = lang;
  if (remember) {
    try { localStorage.setItem(STORAGE_KEY, lang); } catch { /* private mode: not kept */ }
  }
  translatePage();
}

export function language() {
  return current;
}

export function locale() {
  return LOCALES[current];
}

// t("room.online"), t("time.minutes_ago", { n: 5 }): a missing key shows itself, never blank.
export function t(key, vars = {}) {
  const text = words[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

export function translatePage(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of root.querySelectorAll("[data-i18n-aria]")) node.setAttribute("aria-label", t(node.dataset.i18nAria));
  for (const node of root.querySelectorAll("[data-i18n-placeholder]")) node.placeholder = t(node.dataset.i18nPlaceholder);
  for (const node of root.querySelectorAll("[data-lang]")) node.setAttribute("aria-pressed", String(node.dataset.lang === current));
}

// "baku" -> "Bakı"; "ganja-2" -> "Gəncə 2"; an id that is no known city stays as it is.
export function siteName(site) {
  if (SITES[site]) return t(SITES[site]);
  const numbered = /^([a-z]+)-(\d+)$/.exec(site);
  if (numbered && SITES[numbered[1]]) return `${t(SITES[numbered[1]])} ${numbered[2]}`;
  return site;
}

// A time as a Date: a number is Unix seconds, text is ISO 8601; null when there is none.
export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

// How long ago `value` was, seen from `now` (Unix seconds, the hub's clock).
export function ago(value, now) {
  const date = toDate(value);
  if (!date) return t("time.never");
  const seconds = Math.max(0, Math.round(now - date.getTime() / 1000));
  if (seconds < 5) return t("time.just_now");
  if (seconds < 60) return t("time.seconds_ago", { n: seconds });
  if (seconds < 3600) return t("time.minutes_ago", { n: Math.floor(seconds / 60) });
  if (seconds < 86400) return t("time.hours_ago", { n: Math.floor(seconds / 3600) });
  return t("time.days_ago", { n: Math.floor(seconds / 86400) });
}

// The local date and time, for a tooltip or a history row.
export function clock(value) {
  const date = toDate(value);
  if (!date) return "";
  try {
    return date.toLocaleString(locale(), { dateStyle: "short", timeStyle: "medium" });
  } catch {
    return date.toISOString();
  }
}

// Hours and counts: digits only, no grouping (Chromium has no Azerbaijani number format).
export function number(value) {
  const n = Number(value);
  return Number.isFinite(n) ? String(Math.round(n)) : String(value ?? "");
}
