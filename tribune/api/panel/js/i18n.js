// Translations from i18n/<lang>.json; the chosen language is kept in localStorage.
export const LANGUAGES = ["az", "en", "ru"];
const STORAGE_KEY = "tribune.lang";
const LOCALES = { az: "az-Latn-AZ", en: "en-GB", ru: "ru-RU" };

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
  const response = await fetch(`i18n/${lang}.json`, { cache: "no-cache" });
  if (!response.ok) throw new Error(`i18n/${lang}.json: ${response.status}`);
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

// t("state.warming"), t("help.sent", { time: "14:32" }): a missing key shows itself, never blank.
export function t(key, vars = {}) {
  const text = words[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

export function translatePage(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
  for (const el of root.querySelectorAll("[data-lang]")) el.setAttribute("aria-pressed", String(el.dataset.lang === current));
}

// A label object {az, en, ru} from the room config, in the current language.
export function label(value, fallback = "") {
  if (!value) return fallback;
  return value[current] || value.az || value.en || fallback;
}
