// The service's HTTP API, same origin only. Errors become ApiError with the problem's kind.
const BASE = "/api/v1";
let technicianToken = null;

export class ApiError extends Error {
  constructor(status, kind, detail, extra = {}) {
    super(detail || kind);
    this.status = status;
    this.kind = kind; // after urn:tribune:problem:, or "network"
    this.detail = detail || "";
    Object.assign(this, extra);
  }
}

export function setTechnicianToken(token) {
  technicianToken = token;
}

export function hasTechnicianToken() {
  return technicianToken !== null;
}

export async function call(method, path, body, { technician = false } = {}) {
  // Marks the request as the panel's in the audit, whatever authenticated it.
  const headers = { "X-Tribune-Origin": "panel" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (technician && technicianToken) headers.Authorization = `Bearer ${technicianToken}`;
  let response;
  try {
    response = await fetch(BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, "network", String(error));
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const kind = (data && typeof data.type === "string" ? data.type : "").replace("urn:tribune:problem:", "") || "http";
    const retry = Number(response.headers.get("Retry-After") || 0);
    // `problems`: what did not match, when a flash was refused (an RFC 9457 extension member).
    throw new ApiError(response.status, kind, data && data.detail, { retryAfter: retry, problems: data && data.problems });
  }
  return data;
}

export const get = (path, options) => call("GET", path, undefined, options);
export const post = (path, body, options) => call("POST", path, body, options);
export const patch = (path, body, options) => call("PATCH", path, body, options);
export const del = (path, options) => call("DELETE", path, undefined, options);
