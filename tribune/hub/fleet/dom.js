// Small DOM helpers: elements built from data (text only, never HTML), and keyed lists that
// keep the nodes whose data did not change, so 1000 rooms re-render only what moved.

// el("li", { class: "x", "data-testid": "y", onclick: fn }, "text", child, [more])
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const lists = new WeakMap(); // container -> Map(key -> { node, sig })

// Make `container`'s children one node per item, in order. A node is rendered again only when
// its signature changed; the others stay (and keep focus). Returns the Map key -> { node }.
export function syncList(container, items, { key, sig, render }) {
  const known = lists.get(container) || new Map();
  const next = new Map();
  for (const item of items) {
    const k = key(item);
    const s = sig(item);
    let entry = known.get(k);
    if (!entry || entry.sig !== s) {
      const node = render(item);
      if (entry) entry.node.replaceWith(node);
      entry = { node, sig: s };
    }
    next.set(k, entry);
  }
  for (const [k, entry] of known) if (!next.has(k)) entry.node.remove();
  let index = 0;
  for (const entry of next.values()) {
    const there = container.children[index];
    if (there !== entry.node) container.insertBefore(entry.node, there ?? null);
    index += 1;
  }
  lists.set(container, next);
  return next;
}

// Forget what syncList kept for `container` and empty it (after sign-out).
export function clearList(container) {
  lists.delete(container);
  container.replaceChildren();
}

// "baku/room-1" -> "baku-room-1": the form room ids take inside data-testid values.
export function testId(roomId) {
  return roomId.replace("/", "-");
}
