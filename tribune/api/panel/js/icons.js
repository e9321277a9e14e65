// Source tile icons (inline SVG: the panel loads nothing from anywhere but the service).
const PATHS = {
  pc: "M4 4h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1h-6v2h3v2H7v-2h3v-2H4a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1Zm1 2v8h14V6H5Z",
  laptop: "M5 5h14a1 1 0 0 1 1 1v9H4V6a1 1 0 0 1 1-1Zm1 2v6h12V7H6ZM2 17h20v1a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2v-1Z",
  camera: "M11 3h2v6.2a3 3 0 1 1-2 0V3Zm-7 15h16v3H4v-3Zm3-2 2.5-4h5l2.5 4H7Z",
  video: "M3 6h12a1 1 0 0 1 1 1v3.5l5-3v9l-5-3V17a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1Z",
  start: "M8 5v14l11-7L8 5Z",
  end: "M6 6h12v12H6z",
  source: "M4 5h16v11H4V5Zm6 13h4v2h-4v-2Z",
};

export function icon(name) {
  const path = PATHS[name] || PATHS.source;
  return `<svg viewBox="0 0 24 24" aria-hidden="true"><path d="${path}"/></svg>`;
}
