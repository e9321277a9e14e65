// The hub's API, same origin. The operator's bearer token lives in sessionStorage (gone when
// the tab closes); problems become ApiError; a 401 on the kept token calls onUnauthorized.
const BASE = "/api/v1";
const TOKEN_KEY = "tribune.fleet.token";

let unauthorized = () => {};
let skewMs = 0; // the hub's clock minus this browser's, when they differ by more than 5 s

export class ApiError extends Error {
  constructor(status, kind, detail) {
    super(detail || kind);
    this.status = status;
    this.kind = kind; // after urn:tribune:problem:, "network" or "http"
    this.detail = detail || "";
  }
}

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(value) {
  try { sessionStorage.setItem(TOKEN_KEY, value); } catch { /* kept for this page only */ }
}

export function clearToken() {
  try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* nothing kept */ }
}

export function onUnauthorized(handler) {
  unauthorized = handler;
}

// Now on the hub's clock, in Unix seconds: "last seen" is measured against it.
export function hubNow() {
  return (Date.now() + skewMs) / 1000;
}

function noteClock(response) {
  const date = Date.parse(response.headers.get("Date") || "");
  if (Number.isNaN(date)) return;
  const skew = date + 500 - Date.now(); // the header has whole seconds
  skewMs = Math.abs(skew) > 5000 ? skew : 0;
}

// `as`: try this token instead of the kept one (signing in); its 401 is the caller's to say.
export async function call(method, path, body, { as = null } = {}) {
  const bearer = as ?? token();
  const headers = { Accept: "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch (error) {
    throw new ApiError(0, "network", String(error));
  }
  noteClock(response);
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const type = data && typeof data.type === "string" ? data.type : "";
    const error = new ApiError(response.status, type.replace("urn:tribune:problem:", "") || "http", data && data.detail);
    if (response.status === 401 && as === null) {
      clearToken();
      unauthorized(error);
    }
    throw error;
  }
  return data;
}

export const get = (path, options) => call("GET", path, undefined, options);
export const post = (path, body, options) => call("POST", path, body, options);

// "baku/room-1" -> "/rooms/baku/room-1": ids are checked by the hub; encode each part anyway.
export function roomPath(roomId) {
  return roomId.split("/").map(encodeURIComponent).join("/");
}
